"""The multiprocess backend (the default): agent, labeler and reward trainer each in
their own process (spawn), all running at the same time, with this process in the middle.

Every message goes through this (the parent) process: the agent's clips to the labeler,
the trainer's weights to the agent and the labeler, every role's statuses here. Each
incarnation of a role gets fresh pipes of its own, made here when it starts:

- parent -> role: a pipe fed by a thread of the parent, so the parent never waits for
  a role (clip batches beyond ``max_clip_batches`` waiting are dropped: the agent never
  waits for a slow labeler; only the newest weights wait, older ones are replaced);
- role -> parent: a pipe fed by a thread of the role, so a role never waits for the
  parent (same rules);
- a control pipe: a byte on it asks the role to stop; its end closing means the parent is gone.

The channel contract, what each end sees when the other dies:

- **a role dies** (an exception, ``kill -9``, at any moment): its pipes die with it and
  nobody else ever touches them, so no lock is left held and no half-written message
  reaches anyone (the parent reads end-of-file after the last whole message). The parent
  notices within a fraction of a second and starts a new incarnation with new pipes,
  from the role's checkpoints and the store (which keeps every answer), and sends it
  what the run knows: the newest weights, and to a labeler the recent clips (up to
  ``pool_size``) and whether the agent has finished. Messages on their way to the dead
  incarnation are lost; the agent's clips keep coming, the trainer republishes. A role
  that dies ``max_restarts + 1`` times ends the run with its last error.
- **a role hangs** (stopped by SIGSTOP, deadlocked, blocked on a file system that
  no longer answers): once it has neither sent a message nor used the CPU for
  ``HANG_S`` seconds (:mod:`prefrl.runtime.hangs`), it is ended (SIGKILL) and started
  again as a dead one is, and the run says so.
- **the parent dies** (``kill -9``): every role sees its control pipe close, stops
  within a step and exits; one that has not exited 3 s later ends itself.
- **Ctrl-C / SIGTERM**: the parent asks every role to stop; each saves its checkpoint.

No role process creates a semaphore or shared memory, so nothing is left behind.
The run ends as :mod:`prefrl.runtime.ending` decides.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir, resume_command
from prefrl.runtime.channels import ClipBatch, RunMemory, Status, StopFlag
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.ending import RunEnd, end_of_run
from prefrl.runtime.errors import RunFailed
from prefrl.runtime.hangs import Beating, HangWatch, cpu_seconds, hung_message
from prefrl.runtime.monitor import Monitor

ROLES = ("agent", "labeler", "reward_trainer")
YIELDING_ROLES = ("agent", "reward_trainer")
YIELD_NICENESS = 10
"""when a person labels, these roles run this much nicer, so that on a small machine the
labelling window and the renderer drawing the next pairs are not starved by training"""
ORPHAN_EXIT_S = 3.0
"""seconds a role whose parent is gone has to stop by itself before it ends itself"""


# --------------------------------------------------------------------- pipes
def encode(message: tuple[str, Any]) -> bytes:
    """A message as bytes, by the standard pickle: tensors travel as their data. (The
    multiprocessing pickler would move them to shared memory and send file descriptors,
    which the receiving process keeps open: thousands over a long run.)"""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> tuple[str, Any]:
    """The message :func:`encode` made (from a role of this run: trusted like the run's own code)."""
    kind, payload = pickle.loads(data)
    return kind, payload


class Outbox:
    """Sends ``(kind, payload)`` messages over a pipe from a background thread: ``put``
    never waits for the reader. Weights are coalesced (only the newest waits); at most
    ``max_clip_batches`` batches of kind ``clips`` wait (``put`` drops more and returns
    False); every other kind always waits its turn. When the reader is gone, sending
    stops and ``put`` returns False."""

    def __init__(self, conn: Connection, max_clip_batches: int = 64):
        self.conn = conn
        self.max_clip_batches = max_clip_batches
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._clip_batches = 0
        self._cond = threading.Condition()
        self._closing = False
        self.broken = False
        self._thread = threading.Thread(target=self._send_loop, name="prefrl-outbox", daemon=True)
        self._thread.start()

    def put(self, kind: str, payload: Any) -> bool:
        with self._cond:
            if self.broken or self._closing:
                return False
            if kind == "weights":
                self._items = collections.deque(item for item in self._items if item[0] != "weights")
            elif kind == "clips":
                if self._clip_batches >= self.max_clip_batches:
                    return False
                self._clip_batches += 1
            self._items.append((kind, payload))
            self._cond.notify()
        return True

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                self._clip_batches -= item[0] == "clips"
            try:
                self.conn.send_bytes(encode(item))
            except (OSError, ValueError):  # the reader is gone (or the pipe was closed)
                with self._cond:
                    self.broken = True
                    self._items.clear()
                return

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits (for up to ``timeout`` seconds), then close the pipe."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if not self._thread.is_alive():  # else it is stuck writing to a reader that stopped reading
            self.conn.close()


class Inbox:
    """What a role receives from the parent, sorted by kind as it is read."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.clips: list[ClipBatch] = []
        self.weights: dict[str, Any] | None = None
        self.closed = False

    def pump(self, timeout: float = 0.0) -> None:
        """Read every waiting message; wait up to ``timeout`` seconds for the first."""
        if self.closed:
            return
        try:
            ready = self.conn.poll(timeout)
            while ready:
                kind, payload = decode(self.conn.recv_bytes())
                if kind == "weights":
                    self.weights = payload
                else:
                    self.clips.append(payload)
                ready = self.conn.poll(0)
        except (EOFError, OSError):
            self.closed = True


# A role's ends of its channels, in the shapes the roles expect (see channels.py).
class _ClipsIn:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def get_all(self, timeout: float = 0.0) -> list[ClipBatch]:
        self.inbox.pump(0.0 if self.inbox.clips else timeout)
        out, self.inbox.clips = self.inbox.clips, []
        return out


class _WeightsIn:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def latest(self) -> dict[str, Any] | None:
        self.inbox.pump()
        state, self.inbox.weights = self.inbox.weights, None
        return state


class _ClipsOut:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def put(self, batch: ClipBatch) -> bool:
        return self.outbox.put("clips", batch)


class _StatusOut:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def put(self, status: Status) -> None:
        self.outbox.put("status", status)


class _WeightsOut:
    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def publish(self, state: dict[str, Any]) -> None:
        self.outbox.put("weights", state)


class _StopSignal:
    """Set when the parent asks to stop (a byte on the control pipe) or is gone (the
    pipe's far end closed): a role never outlives the run it belongs to."""

    def __init__(self, control: Connection, parent_pid: int):
        self.control, self.parent_pid = control, parent_pid
        self._set = False

    def is_set(self) -> bool:
        if not self._set:
            try:
                self._set = self.control.poll(0) or self.orphaned()
            except (EOFError, OSError):
                self._set = True
        return self._set

    def orphaned(self) -> bool:
        return os.getppid() != self.parent_pid


def _end_when_orphaned(stop: _StopSignal) -> None:
    """A watchdog thread: once the parent is gone, give the role ORPHAN_EXIT_S to stop,
    then end the process (checkpoints and the store are written atomically)."""
    while not stop.orphaned():
        time.sleep(0.5)
    time.sleep(ORPHAN_EXIT_S)
    os._exit(1)


# --------------------------------------------------------------------- child
def _child_main(
    role: str,
    config: dict[str, Any],
    run_dir: str,
    inbox_conn: Connection,
    outbox_conn: Connection,
    control: Connection,
    parent_pid: int,
) -> None:
    """Entry point of a role's process: build the role here (nothing unpicklable crosses)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    stop = _StopSignal(control, parent_pid)
    threading.Thread(target=_end_when_orphaned, args=(stop,), daemon=True).start()
    outbox = Outbox(outbox_conn)
    if not run_role(role, config, run_dir, Inbox(inbox_conn), outbox, Beating(stop, outbox)):
        raise SystemExit(1)


def run_role(
    role: str, config: dict[str, Any], run_dir: str, inbox: Inbox, outbox: Outbox, stop: StopFlag
) -> bool:
    """Build ``role`` on its ends of the channels and run it until stopped or done; False
    if it failed (its error, with the traceback, is then the last status it sends)."""
    status = _StatusOut(outbox)
    try:
        cfg = TrainConfig.from_dict(config)
        if cfg.oracle == "human" and role in YIELDING_ROLES:
            os.nice(YIELD_NICENESS)  # the person's window and its renderer come first
        path = Path(run_dir)
        role_obj: Any
        # each role's process imports only its own role's module
        if role == "agent":
            from prefrl.runtime.agent import AgentRole

            role_obj = AgentRole(cfg, path, _ClipsOut(outbox), _WeightsIn(inbox), status)
        elif role == "labeler":
            from prefrl.runtime.labeler import LabelerRole

            # a human answers through the store (the labelling window), not through an oracle object
            role_obj = LabelerRole(cfg, path, _ClipsIn(inbox), _WeightsIn(inbox), status)
        else:
            from prefrl.runtime.reward_trainer import RewardTrainerRole

            role_obj = RewardTrainerRole(cfg, path, _WeightsOut(outbox), status)
        role_obj.run(stop)
    except BaseException as err:
        error = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        status.put(Status(role, "error", 0, error))
        outbox.close(timeout=2.0)
        return False
    outbox.close()  # the last statuses ("done") must reach the parent
    return True


# -------------------------------------------------------------------- parent
@dataclass
class _Incarnation:
    """One start of a role: its process and the parent's ends of its fresh pipes."""

    process: Any
    to_role: Outbox
    from_role: Connection
    control: Connection
    reading: bool = True  # False once its pipe to the parent reached end-of-file
    hung_for: float = 0.0  # seconds of silence for which it was ended, 0 if it was not


class _Supervisor:
    """Starts the roles, carries their messages, restarts the ones that die."""

    def __init__(self, config: TrainConfig, run_dir: Path, monitor: Monitor, max_restarts: int):
        self.ctx = mp.get_context("spawn")
        self.config, self.run_dir, self.monitor = config, run_dir, monitor
        self.cfg = config.to_dict()
        self.max_restarts = max_restarts
        self.restarts = dict.fromkeys(ROLES, 0)
        self.roles: dict[str, _Incarnation] = {}
        self.memory = RunMemory(config.pool_size)  # for a role that starts again
        self.watch = HangWatch()

    def start(self, role: str) -> None:
        to_role_r, to_role_w = self.ctx.Pipe(duplex=False)
        from_role_r, from_role_w = self.ctx.Pipe(duplex=False)
        control_r, control_w = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=_child_main,
            args=(role, self.cfg, str(self.run_dir), to_role_r, from_role_w, control_r, os.getpid()),
            name=f"prefrl-{role}",
            daemon=True,
        )
        process.start()
        for end in (to_role_r, from_role_w, control_r):
            end.close()  # the role holds these now: when it dies they close, and we read end-of-file
        incarnation = _Incarnation(process, Outbox(to_role_w), from_role_r, control_w)
        self.watch.sign(role)
        self.roles[role] = incarnation
        self.monitor.pids[role] = int(process.pid or 0)
        for kind, payload in self.memory.for_new(role):
            incarnation.to_role.put(kind, payload)

    def receive(self, timeout: float) -> None:
        """Carry every message that arrives within ``timeout`` seconds."""
        readers = {inc.from_role: role for role, inc in self.roles.items() if inc.reading}
        statuses: list[Status] = []
        for conn in wait(list(readers), timeout=timeout):
            role = readers[conn]  # type: ignore[index]
            self._read(role, statuses)
        self.monitor.consume(statuses)

    def _read(self, role: str, statuses: list[Status]) -> None:
        incarnation = self.roles[role]
        try:
            while incarnation.from_role.poll(0):
                kind, payload = decode(incarnation.from_role.recv_bytes())
                self.watch.sign(role)
                if kind == "status":
                    statuses.append(payload)
                    if payload.kind == "done" and role == "agent":
                        self.memory.final = ClipBatch([], payload.agent_step, final=True)
                        self.roles["labeler"].to_role.put("final", self.memory.final)
                elif kind == "clips":
                    self.memory.keep_clips(payload)
                    self.roles["labeler"].to_role.put("clips", payload)
                elif kind == "weights":
                    self.memory.weights = payload
                    for subscriber in ("agent", "labeler"):
                        self.roles[subscriber].to_role.put("weights", payload)
        except (EOFError, OSError):
            incarnation.reading = False

    def _read_last_words(self, role: str, timeout: float = 2.0) -> None:
        """Everything an exited role sent before it ended (its pipe then reads end-of-file)."""
        incarnation, statuses = self.roles[role], list[Status]()
        deadline = time.monotonic() + timeout
        while incarnation.reading and time.monotonic() < deadline:
            if incarnation.from_role.poll(0.05):
                self._read(role, statuses)
        self.monitor.consume(statuses)

    def end_the_hung(self) -> None:
        """End (SIGKILL) every role hung for ``HANG_S`` (:mod:`prefrl.runtime.hangs`);
        :meth:`restart_the_dead` then starts it again."""
        self.watch.look()
        for role, incarnation in self.roles.items():
            if role in self.monitor.finished or incarnation.hung_for or not incarnation.process.is_alive():
                continue
            silent = self.watch.silent_for(role, cpu_seconds(incarnation.process.pid))
            if silent:
                incarnation.hung_for = silent
                incarnation.process.kill()  # not waited for here: restart_the_dead sees it gone

    def restart_the_dead(self) -> None:
        for role, incarnation in list(self.roles.items()):
            exitcode = incarnation.process.exitcode
            if exitcode is None or (exitcode == 0 and role in self.monitor.finished):
                continue  # alive, or finished its job
            self._read_last_words(role)  # e.g. its error report
            if role in self.monitor.finished and exitcode == 0:
                continue
            error = self.monitor.errors.pop(role, "")
            if not error and incarnation.hung_for:
                error = what = hung_message(incarnation.hung_for)
            else:
                error = error or f"exit code {exitcode}"
                what = f"died ({error})"
            if self.restarts[role] >= self.max_restarts:
                raise RunFailed(
                    f"the {role} process died {self.restarts[role] + 1} times; last error: {error}. "
                    f"Every label is in the store; after fixing the cause, continue with: {resume_command(self.run_dir)}"
                )
            self.restarts[role] += 1
            print(
                f"prefrl: the {role} process {what}; restarting it ({self.restarts[role]}/{self.max_restarts})",
                flush=True,
            )
            self._discard(incarnation)
            self.start(role)

    def _discard(self, incarnation: _Incarnation) -> None:
        incarnation.to_role.close(timeout=0.0)
        incarnation.from_role.close()
        incarnation.control.close()

    def stop(self, join_timeout: float) -> None:
        """Ask every role to stop, wait for them (their last reports are read), end the rest."""
        for incarnation in self.roles.values():
            try:
                incarnation.control.send_bytes(b"stop")
            except OSError:
                pass  # already gone
            with contextlib.suppress(OSError, TypeError):  # a stopped one (SIGSTOP) goes on, to save
                os.kill(incarnation.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + join_timeout
        while time.monotonic() < deadline and any(i.process.is_alive() for i in self.roles.values()):
            self.receive(timeout=0.1)
        for incarnation in self.roles.values():
            if incarnation.process.is_alive():
                incarnation.process.terminate()
                incarnation.process.join(5)
            if incarnation.process.is_alive():  # stopped (SIGSTOP): SIGTERM waits for a SIGCONT
                incarnation.process.kill()
                incarnation.process.join(5)
        for role, incarnation in self.roles.items():
            self._read_last_words(role)
            self._discard(incarnation)


def run_end(
    config: TrainConfig, run_dir: Path, monitor: Monitor, person_present: Callable[[], bool] | None
) -> RunEnd | None:
    """How the run ends, once it does (:func:`prefrl.runtime.ending.end_of_run`), from
    the roles' latest reports, and from the store once the person labelling has gone
    after the agent finished (the labeler's last report may not count their last answers)."""
    present = person_present() if person_present is not None else True
    answered = trainable = 0
    if not present and monitor.done is not None and "labeler" not in monitor.finished:
        with PreferenceStore(RunDir(run_dir).store_path) as store:
            answered, trainable = store.num_answered(), store.num_trainable()
    return end_of_run(
        agent_done=monitor.done is not None,
        labeler_done=monitor.finished.get("labeler"),
        labels_trained=int(monitor.latest["reward_trainer"].get("reward/labels", 0)),
        person_present=present,
        labels_answered=answered,
        labels_trainable=trainable,
        labels_budget=config.labels,
        run_dir=str(run_dir),
    )


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """A scheduler's SIGTERM stops the run as cleanly as Ctrl-C (in the main thread)."""

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_multiprocess(
    config: TrainConfig,
    run_dir: Path,
    monitor: Monitor,
    max_restarts: int = 3,
    join_timeout: float = 30.0,
    person_present: Callable[[], bool] | None = None,
) -> RunEnd:
    """Run the three roles in parallel until the run is over (see
    :mod:`prefrl.runtime.ending`), Ctrl-C, or a role that keeps dying.

    ``person_present``: for a human oracle, whether their labelling window is still open.
    """
    supervisor = _Supervisor(config, run_dir, monitor, max_restarts)
    with sigterm_as_ctrl_c():
        try:
            for role in ROLES:
                supervisor.start(role)
            while True:
                supervisor.receive(timeout=0.2)
                supervisor.end_the_hung()
                supervisor.restart_the_dead()
                end = run_end(config, run_dir, monitor, person_present)
                if end is not None:
                    return end
        finally:
            supervisor.stop(join_timeout)
