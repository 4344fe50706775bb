"""The multiprocess backend (the default): agent, labeler and reward trainer each in
their own process (spawn), all running at the same time.

- clips flow agent -> labeler through a bounded queue (a full queue drops the batch:
  the agent never waits for a slow human);
- reward weights flow trainer -> agent and labeler through one queue per subscriber,
  drained to the newest on every read (latest wins);
- every child reports to this process, which writes the metrics and the progress bar.

A child that dies is noticed within a fraction of a second: it is restarted from its
checkpoints (the store keeps every label) up to ``max_restarts`` times, after which the
run stops with a message naming the role and its error. Ctrl-C stops every child
cleanly; the run can then be continued with ``prefrl resume RUN_DIR``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from prefrl.runtime.channels import ClipBatch, Status, drain_queue
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunFailed
from prefrl.runtime.monitor import Monitor

ROLES = ("agent", "labeler", "reward_trainer")


# ----------------------------------------------------------------- channels
class ProcessClipQueue:
    """Bounded clip queue between processes; ``put`` never blocks."""

    def __init__(self, ctx: Any, maxsize: int = 64):
        self.q = ctx.Queue(maxsize=maxsize)

    def put(self, batch: ClipBatch) -> bool:
        try:
            self.q.put_nowait(batch)
            return True
        except queue.Full:
            return False

    def get_all(self, timeout: float = 0.0) -> list[ClipBatch]:
        return drain_queue(self.q, timeout)


class ProcessWeights:
    """One subscriber's weight queue; reading drains it and keeps only the newest."""

    def __init__(self, ctx: Any):
        self.q = ctx.Queue()

    def publish(self, state: dict[str, Any]) -> None:
        self.q.put(state)

    def latest(self) -> dict[str, Any] | None:
        items = drain_queue(self.q)
        return items[-1] if items else None


class ProcessStatus:
    def __init__(self, ctx: Any):
        self.q = ctx.Queue()

    def put(self, status: Status) -> None:
        self.q.put(status)


class _WeightFanout:
    def __init__(self, *subscribers: ProcessWeights):
        self.subscribers = subscribers

    def publish(self, state: dict[str, Any]) -> None:
        for s in self.subscribers:
            s.publish(state)


# -------------------------------------------------------------------- child
class _StopOrOrphaned:
    """Set when the parent asks to stop, or when the parent is gone (killed outright): a
    child never outlives the run it belongs to."""

    def __init__(self, stop: Any, parent_pid: int):
        self.stop, self.parent_pid = stop, parent_pid

    def is_set(self) -> bool:
        return bool(self.stop.is_set()) or os.getppid() != self.parent_pid


def _child_main(
    role: str, config: dict[str, Any], run_dir: str, channels: dict[str, Any], stop: Any, parent_pid: int
) -> None:
    """Entry point of a role's process: build the role here (nothing unpicklable crosses)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    status: ProcessStatus = channels["status"]
    for name in ("clips", "agent_weights", "labeler_weights"):
        # never hang at exit on clips or weights nobody will read (statuses must arrive)
        channels[name].q.cancel_join_thread()
    try:
        cfg = TrainConfig.from_dict(config)
        path = Path(run_dir)
        role_obj: Any
        if role == "agent":
            from prefrl.runtime.agent import AgentRole

            role_obj = AgentRole(cfg, path, channels["clips"], channels["agent_weights"], status)
        elif role == "labeler":
            from prefrl.runtime.labeler import LabelerRole

            # a human answers through the store (the labelling window), not through an oracle object
            role_obj = LabelerRole(cfg, path, channels["clips"], channels["labeler_weights"], status)
        else:
            from prefrl.runtime.reward_trainer import RewardTrainerRole

            weights = _WeightFanout(channels["agent_weights"], channels["labeler_weights"])
            role_obj = RewardTrainerRole(cfg, path, weights, status)
        role_obj.run(_StopOrOrphaned(stop, parent_pid))
    except BaseException as err:
        status.put(
            Status(
                role,
                "error",
                0,
                {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()},
            )
        )
        time.sleep(0.2)  # let the report reach the parent before the process ends
        raise SystemExit(1) from err


# ------------------------------------------------------------------- parent
def run_multiprocess(
    config: TrainConfig, run_dir: Path, monitor: Monitor, max_restarts: int = 3, join_timeout: float = 30.0
) -> None:
    """Run the three roles in parallel until the agent is done (or Ctrl-C, or a failure)."""
    ctx = mp.get_context("spawn")
    channels: dict[str, Any] = {
        "clips": ProcessClipQueue(ctx),
        "agent_weights": ProcessWeights(ctx),
        "labeler_weights": ProcessWeights(ctx),
        "status": ProcessStatus(ctx),
    }
    stop = ctx.Event()
    cfg = config.to_dict()
    procs: dict[str, Any] = {}
    restarts = dict.fromkeys(ROLES, 0)

    def start(role: str) -> None:
        p = ctx.Process(
            target=_child_main,
            args=(role, cfg, str(run_dir), channels, stop, os.getpid()),
            name=f"prefrl-{role}",
            daemon=True,
        )
        p.start()
        procs[role] = p

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # a scheduler's SIGTERM stops the run as cleanly as Ctrl-C

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    for role in ROLES:
        start(role)
    try:
        while monitor.done is None:
            monitor.consume(drain_queue(channels["status"].q, timeout=0.2))
            if monitor.done is not None:
                break
            for role, p in list(procs.items()):
                if p.exitcode is None or (p.exitcode == 0 and role != "agent"):
                    continue  # alive, or finished its job (the labeler stops at the budget)
                monitor.consume(drain_queue(channels["status"].q))
                if monitor.done is not None:
                    break
                error = monitor.errors.get(role, f"exit code {p.exitcode}")
                if restarts[role] >= max_restarts:
                    raise RunFailed(
                        f"the {role} process died {restarts[role] + 1} times; last error: {error}. "
                        f"Every label is in the store; after fixing the cause, continue with: prefrl resume {run_dir}"
                    )
                restarts[role] += 1
                print(
                    f"prefrl: the {role} process died ({error}); restarting it ({restarts[role]}/{max_restarts})",
                    flush=True,
                )
                monitor.errors.pop(role, None)
                start(role)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        stop.set()
        deadline = time.monotonic() + join_timeout
        for p in procs.values():
            p.join(timeout=max(0.1, deadline - time.monotonic()))
        for p in procs.values():
            if p.is_alive():
                p.terminate()
                p.join(5)
        monitor.consume(drain_queue(channels["status"].q))
