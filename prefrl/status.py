"""``RUN_DIR/status.json``: the live state of a preference run, as one type.

The run's monitor writes it (:meth:`prefrl.runtime.monitor.Monitor.write_status`: at
every report of a role, and at least once a second as a heartbeat), the labelling window
reads it (:mod:`prefrl.ui.run_info`), and :func:`prefrl.rundir.mark_stopped_if_dead`
rewrites it for a run whose process is gone. This module is on the ground floor: it
imports nothing from prefrl.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class RunStatus:
    """What ``status.json`` says. A field the file does not have (an older prefrl, a
    hand-written file) or holds with a wrong type is None.

    Attributes:
        running: the run was running when the file was written (a run that died without
            saying so still says True: see ``updated_at`` and ``pid``).
        agent_step, total_steps: the agent's env steps so far, and its budget.
        labels_answered, labels_wanted, labels_total: answers the run has seen, answers
            its schedule wants by now, and the label budget.
        reward_version: version of the newest reward model (0: not trained yet).
        agent_waiting: the agent has stopped to wait for answers: the first ones, which
            train the first reward model, or (``--pace wait``) answers that lag behind the
            label schedule. The person is who it waits for.
        updated_at: Unix time (s) of the write.
        pid: the process that runs the run (the backend's).
        role_pids: the roles' process ids (multiprocess backend).
        stopped: why a run that said running is not (set by
            :func:`prefrl.rundir.mark_stopped_if_dead`).
        extra: fields this prefrl does not know, kept so a rewrite loses nothing.
    """

    running: bool = False
    agent_step: int | None = None
    total_steps: int | None = None
    labels_answered: int | None = None
    labels_wanted: int | None = None
    labels_total: int | None = None
    reward_version: int | None = None
    agent_waiting: bool | None = None
    updated_at: float | None = None
    pid: int | None = None
    role_pids: dict[str, int] | None = None
    stopped: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object to write: every field that is not None, then ``extra``."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                data[f.name] = dict(value) if isinstance(value, dict) else value
        return {**data, **{k: v for k, v in self.extra.items() if k not in data}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        """Read a ``status.json`` object; never raises (a missing or mistyped field is None)."""
        role_pids = data.get("role_pids")
        stopped = data.get("stopped")
        status = cls(
            running=bool(data.get("running", False)),
            agent_step=_int(data.get("agent_step")),
            total_steps=_int(data.get("total_steps")),
            labels_answered=_int(data.get("labels_answered")),
            labels_wanted=_int(data.get("labels_wanted")),
            labels_total=_int(data.get("labels_total")),
            reward_version=_int(data.get("reward_version")),
            agent_waiting=data["agent_waiting"] if isinstance(data.get("agent_waiting"), bool) else None,
            updated_at=_float(data.get("updated_at")),
            pid=data["pid"] if _is_pid(data.get("pid")) else None,
            role_pids=(
                {str(k): v for k, v in role_pids.items() if _is_pid(v)}
                if isinstance(role_pids, dict)
                else None
            ),
            stopped=stopped if isinstance(stopped, str) else None,
        )
        # unknown fields, and known ones this prefrl cannot read, are kept as they were
        known = {f.name for f in fields(cls)} - {"extra"}
        status.extra.update((k, v) for k, v in data.items() if k not in known or getattr(status, k) is None)
        return status


def _is_pid(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
