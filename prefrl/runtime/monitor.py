"""What the backends do with the roles' reports: metrics.csv, the progress display, and
the latest numbers of each role for the summary."""

from __future__ import annotations

from typing import Any

from prefrl.rundir import MetricsLogger, RunDir
from prefrl.runtime.channels import Status
from prefrl.utils.progress import Progress


class Monitor:
    """Consumes :class:`Status` reports from every role."""

    def __init__(
        self,
        run: RunDir,
        total_steps: int,
        total_labels: int,
        progress: bool = True,
        wall_time_offset: float = 0.0,
    ):
        self.metrics = MetricsLogger(run.metrics_path, wall_time_offset)
        self.total_labels = total_labels
        self.latest: dict[str, dict[str, Any]] = {"agent": {}, "labeler": {}, "reward_trainer": {}}
        self.done: dict[str, Any] | None = None
        self.errors: dict[str, str] = {}
        self.agent_step = 0
        self.bar = Progress(total_steps, "train", enabled=progress)

    def consume(self, statuses: list[Status]) -> None:
        for status in statuses:
            self.agent_step = max(self.agent_step, status.agent_step)
            if status.kind == "error":
                self.errors[status.role] = str(status.values.get("error", "unknown error"))
                continue
            if status.kind == "done":
                self.done = dict(status.values)
                continue
            self.latest.setdefault(status.role, {}).update(status.values)
            self.metrics.log(status.agent_step, status.values)
        if statuses:
            self._show()

    def _show(self) -> None:
        agent, labeler, trainer = self.latest["agent"], self.latest["labeler"], self.latest["reward_trainer"]
        self.bar.update(
            self.agent_step,
            labels=f"{labeler.get('labels/answered', 0)}/{self.total_labels}",
            rm_acc=trainer.get("reward/val_accuracy"),
            ret=agent.get("charts/episodic_return"),
        )

    def close(self) -> None:
        self.bar.close()
