"""What the backends do with the roles' reports: metrics.csv, the progress display, and
the latest numbers of each role for the summary."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefrl.metrics import MetricsLogger, read_metrics
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir, write_json
from prefrl.runtime.channels import Status
from prefrl.runtime.videos import record_progress_video
from prefrl.status import RunStatus
from prefrl.utils.progress import Progress

SHOWN_ONLY = ("pace/waiting", "eval/episodes_running")
"""what the agent says it is doing, for the status line and status.json, not for metrics.csv"""


class Monitor:
    """Consumes :class:`Status` reports from every role."""

    def __init__(
        self,
        run: RunDir,
        total_steps: int,
        total_labels: int,
        progress: bool = True,
        progress_videos: bool = False,
    ):
        self.progress_videos = progress_videos
        self._videos: ProgressVideos | None = None
        self._status_written = 0.0
        self.run = run
        self.total_steps = total_steps
        self.total_labels = total_labels
        self.latest: dict[str, dict[str, Any]] = {"agent": {}, "labeler": {}, "reward_trainer": {}}
        self.finished: dict[str, dict[str, Any]] = {}
        """each role's "done" report (the agent's: final returns; the labeler's: complete or why not)"""
        self.errors: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        """the roles' process ids (multiprocess backend), written to ``status.json``"""
        # A resumed run goes on from what it has on disk: its clock, its last logged step and
        # its stored answers (its labeler may have nothing left to report: every label given).
        rows = read_metrics(run.metrics_path) if run.metrics_path.exists() else []
        self.metrics = MetricsLogger(run.metrics_path, float(rows[-1]["wall_time"]) if rows else 0.0)
        self.agent_step = max(
            (int(float(row["global_step"])) for row in rows if row.get("global_step")), default=0
        )
        if run.store_path.exists():
            with PreferenceStore(run.store_path) as store:
                self.latest["labeler"]["labels/answered"] = store.num_answered()
        self.bar = Progress(total_steps, "train", enabled=progress)

    def _error(self, status: Status) -> str:
        """A role's error in one line; its traceback, if sent, is appended to the run's
        ``errors.log`` (a bug of prefrl's or of the user's task code needs its file and line)."""
        error = str(status.values.get("error", "unknown error"))
        trace = status.values.get("traceback")
        if not trace:
            return error
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with self.run.errors_path.open("a") as log:
                log.write(
                    f"--- {stamp}: the {status.role} failed near agent step {self.agent_step}\n{trace}\n"
                )
        except OSError:  # e.g. the disk is full: the one line is all there is
            return error
        return f"{error}; its traceback is in {self.run.errors_path}"

    def consume(self, statuses: list[Status]) -> None:
        for status in statuses:
            self.agent_step = max(self.agent_step, status.agent_step)
            if status.kind == "error":
                self.errors[status.role] = self._error(status)
                continue
            if status.kind == "done":
                self.finished[status.role] = dict(status.values)
                continue
            self.latest.setdefault(status.role, {}).update(status.values)
            logged = {k: v for k, v in status.values.items() if k not in SHOWN_ONLY}
            if logged:
                self.metrics.log(status.agent_step, logged)
            if self.progress_videos and status.role == "agent" and "eval/mean_return" in status.values:
                self._progress_video(status.agent_step)
        if statuses:
            self._show()
        if statuses or time.monotonic() - self._status_written > 1.0:
            self.write_status(running=True)  # also a heartbeat while the roles are quiet

    @property
    def done(self) -> dict[str, Any] | None:
        """The agent's final report (None until it has taken all its steps)."""
        return self.finished.get("agent")

    def write_status(self, running: bool) -> None:
        """``RUN_DIR/status.json``: what a labelling window attached to the run shows."""
        self._status_written = time.monotonic()
        labeler, trainer = self.latest["labeler"], self.latest["reward_trainer"]
        status = RunStatus(
            running=running,
            agent_step=self.agent_step,
            total_steps=self.total_steps,
            labels_answered=int(labeler.get("labels/answered", 0)),
            labels_wanted=int(labeler.get("labels/wanted", 0)),
            labels_total=self.total_labels,
            reward_version=int(trainer.get("reward/version", 0)),
            agent_waiting=running and self.agent_waiting,
            updated_at=time.time(),
            pid=os.getpid(),
            role_pids=dict(self.pids),
        )
        write_json(self.run.status_path, status.to_dict(), durable=False)  # a heartbeat

    def _progress_video(self, env_step: int) -> None:
        """A short video at each evaluation (the agent checkpoints right before it reports
        one), recorded on a thread of its own: the supervising loop and the status.json
        heartbeat never wait for a video."""
        if self._videos is None:
            self._videos = ProgressVideos(self.run.path)
        self._videos.request(env_step)

    def _show(self) -> None:
        agent, labeler, trainer = self.latest["agent"], self.latest["labeler"], self.latest["reward_trainer"]
        self.bar.update(
            self.agent_step,
            labels=f"{labeler.get('labels/answered', 0)}/{self.total_labels}",
            rm_acc=trainer.get("reward/val_accuracy"),
            ret=agent.get("charts/episodic_return"),
            agent=self._agent_doing(),
        )

    def _agent_doing(self) -> str | None:
        """What holds the agent, if anything: answers it waits for, or an evaluation."""
        if self.agent_waiting:
            return "waiting for labels"
        episodes = self.latest["agent"].get("eval/episodes_running")
        return f"evaluating ({episodes} episodes)" if episodes and self.done is None else None

    @property
    def agent_waiting(self) -> bool:
        """The agent is waiting for answers: the first ones, or (``--pace wait``) answers
        that lag behind the schedule."""
        return bool(self.latest["agent"].get("pace/waiting")) and self.done is None

    def close(self) -> None:
        if self._videos is not None:
            self._videos.close()
        self.bar.close()
        self.write_status(running=False)


class ProgressVideos:
    """Records progress videos one at a time on a background thread. A video asked for
    while another is being recorded waits; a newer request replaces an older waiting one
    (the policy on disk is the newest anyway)."""

    def __init__(self, run_dir: Path, record: Callable[[Path, int], Any] | None = None):
        self.run_dir = run_dir
        self.record = record if record is not None else record_progress_video
        self._waiting: int | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="prefrl-progress-videos", daemon=True)
        self._thread.start()

    def request(self, env_step: int) -> None:
        with self._cond:
            self._waiting = env_step
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._waiting is None and not self._closing:
                    self._cond.wait()
                if self._waiting is None:
                    return
                env_step, self._waiting = self._waiting, None
            try:
                self.record(self.run_dir, env_step)
            except Exception as err:  # a video must never stop a run
                print(f"prefrl: no progress video at step {env_step}: {err}", flush=True)

    def close(self, timeout: float = 120.0) -> None:
        """Finish the videos asked for (waiting up to ``timeout`` seconds)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
