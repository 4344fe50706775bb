"""What the labelling window knows about the run it labels: its settings (``config.json``)
and its live state (``status.json``, a :class:`~prefrl.status.RunStatus` the run writes
while it runs).

Nothing here needs a display, so the checks can run (and fail clearly) before a window
is opened.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefrl.errors import MissingFileError, PrefrlError, RunKindError
from prefrl.prefs.store import PreferenceStore, Query
from prefrl.rundir import RunDir, read_run_status, resume_command
from prefrl.status import RunStatus
from prefrl.tasks import instruction_for, locate_run_task, open_run_task
from prefrl.utils.locking import lock_held

STATUS_STALE_S = 30.0
"""a ``status.json`` saying ``running`` but older than this is from a run that died
(sooner where the run's lock tells: :func:`runner_gone`)"""
GONE_AFTER_S = 5.0
"""a ``status.json`` saying ``running``, older than this (a running run rewrites it every
second), whose run's lock nobody holds, is from a run whose process is gone"""
START_GRACE_S = 120.0
"""a run without ``status.json`` whose ``config.json`` is younger than this is starting"""
HUMAN = "human"
"""the oracle name of queries meant for a person (and of their answers)"""


class NothingToLabelError(PrefrlError, ValueError):
    """The run asks no question now and will ask none later (it has stopped, or its label
    budget is spent); the message says how to go on."""


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
        task: the run's behaviour task (``--task``), None for a run without one.
    """

    path: Path
    env_id: str
    fixed_length: bool | int
    budget: int
    total_steps: int
    instruction: str
    task: str | None = None

    @property
    def store_path(self) -> Path:
        return RunDir(self.path).store_path

    @property
    def status_path(self) -> Path:
        return RunDir(self.path).status_path


@dataclass(frozen=True)
class RunState:
    """The run's live state: its ``status.json`` and what the window makes of it.

    Attributes:
        live: the run is running (``running`` and updated within :data:`STATUS_STALE_S`),
            or is starting (no ``status.json`` yet, ``config.json`` written within
            :data:`START_GRACE_S`): more questions may come.
        known: ``status.json`` was read; ``status``'s counts are None when it was not.
        stale: ``status.json`` says running but has not been updated for
            :data:`STATUS_STALE_S`, or is gone (the run died without saying so).
        gone: the run's process ended without stopping the run: ``status.json`` says
            running, has not been updated for :data:`GONE_AFTER_S`, and nobody holds
            the run's lock (:func:`runner_gone`), or says why it stopped as
            :func:`prefrl.rundir.mark_stopped_if_dead` found it so.
        age_s: seconds since ``status.json`` was last written (None when not known).
        status: what ``status.json`` says (all None when it was not read).
    """

    live: bool
    known: bool
    stale: bool = False
    gone: bool = False
    age_s: float | None = field(default=None, compare=False)
    status: RunStatus = field(default_factory=RunStatus)

    @property
    def finished(self) -> bool:
        """``status.json`` says the agent has taken all its steps."""
        agent_step, total_steps = self.status.agent_step, self.status.total_steps
        return agent_step is not None and agent_step >= (total_steps or 1)


def open_run(run_dir: str | Path, *, trust_task_file: bool = False, task: str | None = None) -> LabelingRun:
    """Check that ``run_dir`` is a preference run a person labels, and read its settings.

    The task file its ``config.json`` names is loaded (run) only if trusted: by
    ``trust_task_file``, by naming the same task again as ``task``, or earlier in this
    process or its parent (``prefrl train --task FILE.py:NAME --oracle human``).

    Raises:
        FileNotFoundError: ``run_dir`` does not exist, or holds no ``config.json``.
        ValueError: it is not a preference run (e.g. a ``prefrl baseline`` run), or its
            labels come from a synthetic oracle, or its ``config.json`` is not readable.
        prefrl.tasks.UntrustedTaskFile, prefrl.tasks.TaskMismatch, ConfigError: the run's
            task file is not trusted, ``task`` is another task, the task is not known.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise MissingFileError(
            f"there is no run directory {path}. Pass the directory of a run started with "
            "`prefrl train ENV --oracle human` (its --run-dir, or the runs/train-... folder it printed)."
        )
    try:
        config = RunDir(path).read_config()
    except json.JSONDecodeError as err:
        raise ValueError(f"{path / 'config.json'} is not readable JSON ({err})") from None
    kind = config.get("kind")
    if kind != "train":
        raise RunKindError(
            f"{path} is a {kind or 'unknown'} run, not a preference run: only runs started with "
            "`prefrl train ENV --oracle human` have questions to label"
        )
    oracle = config.get("oracle", "synthetic")
    if oracle != HUMAN:
        raise RunKindError(
            f"{path} is labelled by a synthetic oracle ({config.get('teacher', oracle)}), not by a person. "
            "Start a run you label yourself with `prefrl train ENV --oracle human`."
        )
    env_id = str(config["env_id"])
    run_task = locate_run_task(str(config["task"]) if config.get("task") else None, task)
    # the clips of a task's env are rendered in this process and its renderer's: its env
    # id must be registered, so an untrusted task file is refused before the window opens
    behaviour = open_run_task(run_task, named=task, trust=trust_task_file, run_dir=path)
    instruction = behaviour.instruction if behaviour else instruction_for(env_id)
    return LabelingRun(
        path=path,
        env_id=env_id,
        fixed_length=config.get("fixed_length") or False,
        budget=int(config.get("labels", 0)),
        total_steps=int(config.get("steps", 0)),
        instruction=instruction,
        task=run_task,
    )


def read_state(run: LabelingRun, now: float | None = None) -> RunState:
    """The run's live state now (``now``: Unix time in s, default ``time.time()``).

    A missing, half-written or unreadable ``status.json`` reads as not known; it never
    raises.
    """
    now = time.time() if now is None else now
    status = read_run_status(run.status_path)
    if status is None:
        try:
            age = now - (run.path / "config.json").stat().st_mtime
        except OSError:
            age = float("inf")
        return RunState(live=age < START_GRACE_S, known=False)
    age = now - (status.updated_at or 0.0)
    gone = status.stopped is not None or (status.running and age > GONE_AFTER_S and runner_gone(run, status))
    stale = status.running and (age > STATUS_STALE_S or gone)
    return RunState(
        live=status.running and not stale,
        known=True,
        stale=stale,
        gone=gone,
        age_s=max(0.0, age),
        status=status,
    )


def runner_gone(run: LabelingRun, status: RunStatus) -> bool:
    """Whether the run that ``status.json`` says is running has no process any more: its
    ``run.lock`` is there and nobody holds it (a ``kill -9``, a crash). False where that
    cannot be told: no lock file (a run of an older prefrl), no ``flock``, or the run
    runs in this very process."""
    lock = RunDir(run.path).lock_path
    try:
        if status.pid == os.getpid() or not lock.exists():
            return False
        return lock_held(lock) is False
    except OSError:  # unreadable, or a file system that fails the lock test: the time tells
        return False


def check_something_to_label(run: LabelingRun) -> None:
    """Refuse a run that has no question for a person now and will ask none later.

    Raises:
        NothingToLabelError: the run is not running and no query waits for an answer, its
            label budget is spent, or this user may not write its store.
    """
    state = read_state(run)
    pending: list[Query] = []
    answered = 0
    where = run.store_path if run.store_path.exists() else run.path
    if not (os.access(where, os.W_OK) and os.access(run.path, os.W_OK)):
        raise NothingToLabelError(
            f"cannot label {run.path}: this user may not write {where} (the run's answers and "
            "its store's journal are written there), so no answer could be saved. Label it as "
            "the run's owner, or give this user write access to the run directory"
        )
    if run.store_path.exists():
        with PreferenceStore(run.store_path) as store:
            pending = store.pending_queries()  # a person's run: every one is theirs
            answered = store.num_answered()
    if answered >= run.budget:  # open questions past it (an import's) are not asked
        raise NothingToLabelError(
            f"nothing to label in {run.path}: all {run.budget} labels of its budget are given"
        )
    if pending:
        return
    if state.live:
        return
    given = f"{answered} of {run.budget} labels given"
    if state.known and not state.stale and state.finished:
        why = "has finished"  # short of its budget (or answers were set aside since): resume asks the rest
    elif state.gone:
        why = "stopped without finishing (its process is gone)"
    elif state.stale:
        why = "stopped without finishing (its status.json has not changed for a while)"
    elif state.known:
        why = "is not running"
    else:
        why = "has not started (no status.json)"
    raise NothingToLabelError(
        f"nothing to label in {run.path}: the run {why} and no question waits for an answer ({given}). "
        f"Continue it with `{resume_command(run.path)}`, then label it with `prefrl label {run.path}`."
    )
