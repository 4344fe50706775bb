"""The ray backend (``prefrl train --backend ray``): the three roles as Ray actors.

The same role code as the multiprocess backend, under the same channel contract
(:mod:`prefrl.runtime.multiprocess`), carried by Ray:

- each role runs in a thread of its own actor (:class:`RoleHost`), on its ends of the
  same bounded, latest-wins pipes as a role process; the driver (this process) calls each
  actor's ``exchange`` in turn, one call in flight per actor, which delivers what waits
  for the role and returns what the role sent: a few messages per call, never one call
  per message;
- the reward trainer's newest weights are published once with ``ray.put``; the agent
  and the labeler get the reference and read it (latest wins, older ones are dropped);
- the agent's clips go to the labeler through the driver, at most ``MAX_CLIP_BATCHES``
  waiting (the agent never waits: more are dropped, as between processes).

**Where things run.** The preference store and the checkpoints stay on the driver's disk:
all three roles (each reads or writes the store) are pinned to the driver's node, and so
is the person's labelling window. What spreads over the cluster is the agent's env
stepping (``--workers N``: :mod:`prefrl.runtime.rollout_workers`).

**Faults.** An actor whose process dies (or whose role fails, or hangs:
:mod:`prefrl.runtime.hangs`, its process is then killed) is restarted by Ray
(``max_restarts``) from the role's checkpoints and the store, which keeps every answer;
the driver then sends it what the run knows (the newest weights; to a labeler the recent
clips and whether the agent has finished), as the multiprocess backend does. A role that
dies ``max_restarts + 1`` times ends the run with its last error. Ctrl-C asks every role
to stop and save. If the driver dies, its actors die with it; ``prefrl resume`` goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefrl.rundir import resume_command
from prefrl.runtime.channels import ClipBatch, RunMemory, Status
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.ending import RunEnd
from prefrl.runtime.errors import RunFailed
from prefrl.runtime.hangs import Beating, HangWatch, cpu_seconds, hung_message
from prefrl.runtime.monitor import Monitor
from prefrl.runtime.multiprocess import ROLES, Inbox, Outbox, decode, run_end, run_role, sigterm_as_ctrl_c
from prefrl.utils.ray_cluster import connect

MAX_CLIP_BATCHES = 64
"""clip batches waiting for the labeler at the driver; more are dropped"""
EXCHANGE_WAIT_S = 0.1
"""how long an actor's ``exchange`` waits for its role to send something"""
RETRY_S = 0.2
"""pause before asking an actor that Ray is restarting again"""
START_NOTICE_S = 60.0
"""seconds after which a run whose actors have not all answered says what it waits for"""


class RoleHost:
    """A Ray actor's body: one role, running in a thread on its ends of two pipes."""

    def __init__(self, role: str, config: dict[str, Any], run_dir: str, trusted: list[str]):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        from prefrl.tasks import trust_task_file

        trust_task_file(*trusted)  # a cluster started elsewhere: its workers have not our environment

        torch.set_num_threads(1)
        self.incarnation = uuid.uuid4().hex
        to_role_r, to_role_w = mp.Pipe(duplex=False)
        self.from_role, from_role_w = mp.Pipe(duplex=False)
        self.to_role = Outbox(to_role_w)
        self.stop_event = threading.Event()
        outbox = Outbox(from_role_w)
        self.thread = threading.Thread(
            target=run_role,
            args=(role, config, run_dir, Inbox(to_role_r), outbox, Beating(self.stop_event, outbox)),
            name=f"prefrl-{role}",
            daemon=True,
        )
        self.thread.start()

    def exchange(self, inbound: list[tuple[str, Any]], wait_s: float = EXCHANGE_WAIT_S) -> dict[str, Any]:
        """Deliver ``inbound`` to the role; return what it sent within ``wait_s`` seconds.

        Returns ``incarnation`` (new after each restart), ``pid``, ``tid`` (the role's
        thread), ``messages`` and ``ended`` (the role's thread has ended: done, or failed
        with an error status).
        """
        import ray

        for kind, payload in inbound:
            if kind == "weights":  # a reference, published once by the driver
                payload = ray.get(payload[0])
            self.to_role.put(kind, payload)
        messages: list[tuple[str, Any]] = []
        ended = not self.thread.is_alive()
        try:
            ready = self.from_role.poll(0 if ended else wait_s)
            while ready:
                messages.append(decode(self.from_role.recv_bytes()))
                ready = self.from_role.poll(0)
        except (EOFError, OSError):
            pass  # the role's thread has closed its end: everything it sent is read
        return {
            "incarnation": self.incarnation,
            "pid": os.getpid(),
            "tid": self.thread.native_id,
            "messages": messages,
            "ended": ended,
        }

    def stop(self, timeout: float) -> list[tuple[str, Any]]:
        """Ask the role to stop (it saves its checkpoint); return its last messages."""
        self.stop_event.set()
        self.thread.join(timeout)
        return self.exchange([], wait_s=0.0)["messages"]


class _Hub:
    """The driver's side: starts the actors, carries their messages, counts restarts."""

    def __init__(self, ray: Any, config: TrainConfig, run_dir: Path, monitor: Monitor, max_restarts: int):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray, self.config, self.run_dir, self.monitor = ray, config, run_dir, monitor
        self.max_restarts = max_restarts
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self.actor_class = ray.remote(RoleHost).options(
            num_cpus=0, max_restarts=max_restarts, max_task_retries=0, scheduling_strategy=here
        )
        self.actors: dict[str, Any] = {}
        self.calls: dict[Any, tuple[str, list[tuple[str, Any]]]] = {}  # in flight -> role, what it carries
        self.call_after = dict.fromkeys(ROLES, 0.0)  # a restarting actor is asked again after a pause
        self.inbound: dict[str, list[tuple[str, Any]]] = {role: [] for role in ROLES}
        self.incarnation: dict[str, str | None] = dict.fromkeys(ROLES)
        self.restarts = dict.fromkeys(ROLES, 0)
        self.ended: set[str] = set()  # roles whose job is done
        self.memory = RunMemory(config.pool_size)  # its weights: [a reference to the newest]
        self.killed: dict[str, str | None] = dict.fromkeys(ROLES)  # the incarnation last killed
        self.started = time.monotonic()
        self.start_notice_given = False
        self.watch = HangWatch()
        self.threads: dict[str, tuple[int, int]] = {}  # role -> the pid and thread id running it

    def start(self) -> None:
        from prefrl.tasks import trusted_task_files

        cfg, trusted = self.config.to_dict(), trusted_task_files()
        for role in ROLES:
            self.actors[role] = self.actor_class.remote(role, cfg, str(self.run_dir), trusted)

    def receive(self, timeout: float) -> None:
        """Handle every exchange that returns within ``timeout`` seconds; call again."""
        self._call_idle()
        ready, _ = self.ray.wait(list(self.calls), num_returns=len(self.calls), timeout=timeout)
        statuses: list[Status] = []
        for ref in ready:
            role, inbound = self.calls.pop(ref)
            try:
                reply = self.ray.get(ref)
            except self.ray.exceptions.ActorUnavailableError:  # Ray is restarting it
                self.inbound[role][:0] = inbound  # for the new incarnation
                self.call_after[role] = time.monotonic() + RETRY_S
            except self.ray.exceptions.RayActorError as err:  # dead for good
                self._failed(role, err)
            else:
                self._handle(role, reply, statuses)
        self.monitor.consume(statuses)
        self._end_the_hung()
        self._call_idle()
        self._notice_slow_start()

    def _end_the_hung(self) -> None:
        """Kill the process of every actor whose role is hung (:mod:`prefrl.runtime.hangs`;
        its thread's CPU time is read: the actors run on this node); Ray restarts it."""
        self.watch.look()
        for role, (pid, tid) in list(self.threads.items()):
            if role in self.ended:
                continue
            silent = self.watch.silent_for(role, cpu_seconds(pid, tid))
            if silent:
                self.monitor.errors[role] = hung_message(silent)
                del self.threads[role]  # until its next incarnation answers
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _notice_slow_start(self) -> None:
        """Say once, after :data:`START_NOTICE_S`, which actors have not answered yet (a busy
        cluster, or one short of CPUs, can keep them from starting for a long time)."""
        waiting = [role for role in ROLES if self.incarnation[role] is None]
        if not waiting or self.start_notice_given or time.monotonic() - self.started < START_NOTICE_S:
            return
        self.start_notice_given = True
        print(
            f"prefrl: after {START_NOTICE_S:.0f} s Ray has not started the run's {' and '.join(waiting)} "
            f"actor{'s' if len(waiting) > 1 else ''} yet: the cluster may be busy or short of CPUs (`ray status` shows it). The run goes on "
            "waiting; Ctrl-C stops it, every label kept",
            flush=True,
        )

    def _call_idle(self) -> None:
        busy = {role for role, _ in self.calls.values()}
        now = time.monotonic()
        for role in ROLES:
            if role not in busy and role not in self.ended and now >= self.call_after[role]:
                inbound, self.inbound[role] = self.inbound[role], []
                self.calls[self.actors[role].exchange.remote(inbound)] = (role, inbound)

    def _handle(self, role: str, reply: dict[str, Any], statuses: list[Status]) -> None:
        if reply["incarnation"] != self.incarnation[role]:
            if self.incarnation[role] is not None:
                self._restarted(role)
            self.incarnation[role] = reply["incarnation"]
            self.monitor.pids[role] = reply["pid"]
            self.threads[role] = (reply["pid"], reply["tid"])
            self.watch.sign(role)
        if reply["messages"]:
            self.watch.sign(role)
        for kind, payload in reply["messages"]:
            if kind == "status":
                statuses.append(payload)
                if payload.kind == "done" and role == "agent":
                    self.memory.final = ClipBatch([], payload.agent_step, final=True)
                    self.inbound["labeler"].append(("final", self.memory.final))
            elif kind == "clips":
                self.memory.keep_clips(payload)
                self._send_clips(payload)
            elif kind == "weights":
                self.memory.weights = [self.ray.put(payload)]  # once, read by reference by both
                for subscriber in ("agent", "labeler"):
                    box = self.inbound[subscriber]
                    box[:] = [m for m in box if m[0] != "weights"] + [("weights", self.memory.weights)]
        if reply["ended"]:
            self.monitor.consume(statuses)  # its error, if it failed
            statuses.clear()
            if role in self.monitor.finished and role not in self.monitor.errors:
                self.ended.add(role)
            elif self.killed[role] != reply["incarnation"]:  # failed: Ray starts a new one
                self.killed[role] = reply["incarnation"]
                self.ray.kill(self.actors[role], no_restart=False)

    def _send_clips(self, batch: ClipBatch) -> None:
        box = self.inbound["labeler"]
        if sum(kind == "clips" for kind, _ in box) < MAX_CLIP_BATCHES:
            box.append(("clips", batch))

    def _failed(self, role: str, err: Exception) -> None:
        """Ray gave up on the actor: it died ``max_restarts + 1`` times, or cannot start."""
        error = self.monitor.errors.pop(role, None) or _first_line(err)
        raise RunFailed(
            f"the {role} actor died and Ray restarts it no more ({self.restarts[role]} restarts "
            f"so far, {self.max_restarts} at most); last error: {error}. Every label is in the store; "
            f"after fixing the cause, continue with: {resume_command(self.run_dir)}"
        )

    def _restarted(self, role: str) -> None:
        """A new incarnation answered: say why the last one died, tell it what the run knows."""
        self.restarts[role] += 1
        error = self.monitor.errors.pop(role, "its process ended")
        print(
            f"prefrl: the {role} actor died ({error}); Ray restarted it ({self.restarts[role]}/{self.max_restarts})",
            flush=True,
        )
        self.inbound[role][:0] = self.memory.for_new(role)

    def stop(self, timeout: float) -> None:
        """Ask every role to stop and save, read their last reports, end the actors."""
        calls = {actor.stop.remote(timeout): role for role, actor in self.actors.items()}
        ready, _ = self.ray.wait(list(calls), num_returns=len(calls), timeout=timeout + 5)
        statuses: list[Status] = []
        for ref in ready:
            try:
                statuses += [payload for kind, payload in self.ray.get(ref) if kind == "status"]
            except self.ray.exceptions.RayError:
                pass  # that actor is gone; its checkpoints are what it last saved
        self.monitor.consume(statuses)
        for actor in self.actors.values():
            self.ray.kill(actor, no_restart=True)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def run_ray(
    config: TrainConfig,
    run_dir: Path,
    monitor: Monitor,
    max_restarts: int = 3,
    join_timeout: float = 30.0,
    person_present: Callable[[], bool] | None = None,
) -> RunEnd:
    """Run the three roles as Ray actors until the run is over (see
    :mod:`prefrl.runtime.ending`), Ctrl-C, or a role that keeps dying.

    Joins ``config.ray_address``, or starts a private cluster on this machine.
    ``person_present``: for a human oracle, whether their labelling window is still open.
    """
    with connect(config.ray_address) as ray, sigterm_as_ctrl_c():
        hub = _Hub(ray, config, run_dir, monitor, max_restarts)
        try:
            hub.start()
            while True:
                hub.receive(timeout=0.2)
                end = run_end(config, run_dir, monitor, person_present)
                if end is not None:
                    return end
        finally:
            hub.stop(join_timeout)
