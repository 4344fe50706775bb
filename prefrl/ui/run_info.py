"""What the labelling window knows about the run it labels: its settings (``config.json``)
and its live state (``status.json``, written by the run while it runs).

Nothing here needs a display, so the checks can run (and fail clearly) before a window
is opened.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefrl.prefs.store import PreferenceStore, Query
from prefrl.rundir import RunDir
from prefrl.tasks import UntrustedTaskFile, get_task, instruction_for

STATUS_STALE_S = 30.0
"""a ``status.json`` saying ``running`` but older than this is from a run that died"""
START_GRACE_S = 120.0
"""a run without ``status.json`` whose ``config.json`` is younger than this is starting"""
HUMAN = "human"
"""the oracle name of queries meant for a person (and of their answers)"""


class NothingToLabelError(ValueError):
    """The run asks no question now and will ask none later (it has stopped, or its label
    budget is spent)."""


@dataclass(frozen=True)
class LabelingRun:
    """A preference run with a human oracle, as the labelling window needs it.

    Attributes:
        path: the run directory.
        env_id: the env its clips come from (a behaviour task's id for ``--task`` runs).
        fixed_length: the run's ``fixed_length`` setting (clips re-render with it).
        budget: the label budget (``labels`` in ``config.json``).
        total_steps: the agent's env-step budget.
        instruction: the question shown above the clips.
    """

    path: Path
    env_id: str
    fixed_length: bool | int
    budget: int
    total_steps: int
    instruction: str

    @property
    def store_path(self) -> Path:
        return RunDir(self.path).store_path

    @property
    def status_path(self) -> Path:
        return RunDir(self.path).status_path


@dataclass(frozen=True)
class RunStatus:
    """The run's live state, from ``status.json``.

    Attributes:
        live: the run is running (``running`` and updated within :data:`STATUS_STALE_S`),
            or is starting (no ``status.json`` yet, ``config.json`` written within
            :data:`START_GRACE_S`): more questions may come.
        known: ``status.json`` was read; the counts below are None when it was not.
        stale: ``status.json`` says running but has not been updated for
            :data:`STATUS_STALE_S` (the run died without saying so).
        agent_step, total_steps: the agent's env steps so far, and its budget.
        labels_answered, labels_wanted, labels_total: answers the run has seen, answers
            its schedule wants by now, and the label budget.
        reward_version: version of the newest reward model (0: not trained yet).
        age_s: seconds since ``status.json`` was last written (None when not known).
    """

    live: bool
    known: bool
    stale: bool = False
    age_s: float | None = field(default=None, compare=False)
    agent_step: int | None = None
    total_steps: int | None = None
    labels_answered: int | None = None
    labels_wanted: int | None = None
    labels_total: int | None = None
    reward_version: int | None = None


def open_run(run_dir: str | Path) -> LabelingRun:
    """Check that ``run_dir`` is a preference run a person labels, and read its settings.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist, or holds no ``config.json``.
        ValueError: it is not a preference run (e.g. a ``prefrl baseline`` run), or its
            labels come from a synthetic oracle, or its ``config.json`` is not readable.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"there is no run directory {path}. Pass the directory of a run started with "
            "`prefrl train ENV --oracle human` (its --run-dir, or the runs/train-... folder it printed)."
        )
    try:
        config = RunDir(path).read_config()
    except json.JSONDecodeError as err:
        raise ValueError(f"{path / 'config.json'} is not readable JSON ({err})") from None
    kind = config.get("kind")
    if kind != "train":
        raise ValueError(
            f"{path} is a {kind or 'unknown'} run, not a preference run: only runs started with "
            "`prefrl train ENV --oracle human` have questions to label"
        )
    oracle = config.get("oracle", "synthetic")
    if oracle != HUMAN:
        raise ValueError(
            f"{path} is labelled by a synthetic oracle ({config.get('teacher', oracle)}), not by a person. "
            "Start a run you label yourself with `prefrl train ENV --oracle human`."
        )
    env_id = str(config["env_id"])
    instruction = instruction_for(env_id)
    task = config.get("task")
    if task:
        try:
            instruction = get_task(str(task)).instruction
        except (ValueError, UntrustedTaskFile):
            pass  # a task this prefrl does not know, or an untrusted task file (never run
            # just to read its question): the env's default question still applies
    return LabelingRun(
        path=path,
        env_id=env_id,
        fixed_length=config.get("fixed_length") or False,
        budget=int(config.get("labels", 0)),
        total_steps=int(config.get("steps", 0)),
        instruction=instruction,
    )


def read_status(run: LabelingRun, now: float | None = None) -> RunStatus:
    """The run's live state now (``now``: Unix time in s, default ``time.time()``).

    A missing, half-written or unreadable ``status.json`` reads as not known; it never
    raises.
    """
    now = time.time() if now is None else now
    try:
        data: dict[str, Any] = json.loads(run.status_path.read_text())
    except (OSError, ValueError):
        try:
            age = now - (run.path / "config.json").stat().st_mtime
        except OSError:
            age = float("inf")
        return RunStatus(live=age < START_GRACE_S, known=False)
    updated = float(data.get("updated_at", 0.0))
    running = bool(data.get("running", False))
    stale = running and now - updated > STATUS_STALE_S
    return RunStatus(
        live=running and not stale,
        known=True,
        stale=stale,
        age_s=max(0.0, now - updated),
        agent_step=_int(data.get("agent_step")),
        total_steps=_int(data.get("total_steps")),
        labels_answered=_int(data.get("labels_answered")),
        labels_wanted=_int(data.get("labels_wanted")),
        labels_total=_int(data.get("labels_total")),
        reward_version=_int(data.get("reward_version")),
    )


def human_pending(store: PreferenceStore) -> list[Query]:
    """The store's unanswered queries meant for a person, oldest first."""
    return [q for q in store.pending_queries() if q.oracle == HUMAN]


def check_something_to_label(run: LabelingRun) -> None:
    """Refuse a run that has no question for a person now and will ask none later.

    Raises:
        NothingToLabelError: the run is not running and no query waits for an answer, or
            its label budget is spent.
    """
    status = read_status(run)
    pending: list[Query] = []
    answered = 0
    if run.store_path.exists():
        with PreferenceStore(run.store_path) as store:
            pending = human_pending(store)
            answered = store.num_answered()
    if pending:
        return
    if answered >= run.budget:
        raise NothingToLabelError(
            f"nothing to label in {run.path}: all {run.budget} labels of its budget are given"
        )
    if status.live:
        return
    given = f"{answered} of {run.budget} labels given"
    if status.known and not status.stale and (status.agent_step or 0) >= (status.total_steps or 1):
        raise NothingToLabelError(
            f"nothing to label in {run.path}: the run has finished and no question waits for an answer ({given})"
        )
    if status.stale:
        state = "stopped without finishing (its status.json has not changed for a while)"
    elif status.known:
        state = "is not running"
    else:
        state = "has not started (no status.json)"
    raise NothingToLabelError(
        f"nothing to label in {run.path}: the run {state} and no question waits for an answer ({given}). "
        f"Continue it with `prefrl resume {run.path}`, then label it with `prefrl label {run.path}`."
    )


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
