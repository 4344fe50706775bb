"""Starting, resuming and finishing a preference run (``prefrl train`` / ``prefrl resume``)."""

from __future__ import annotations

import contextlib
import csv
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from prefrl import __version__
from prefrl.agent.evaluate import evaluation_warning
from prefrl.envs.errors import EnvError
from prefrl.envs.make import check_first_step, episode_horizon, make_env, split_env_kwargs
from prefrl.envs.snapshot import NO_VIDEO_ORACLE, snapshotter_for
from prefrl.errors import ConfigError, MissingFileError, RunKindError
from prefrl.metrics import column, read_metrics
from prefrl.oracles import Oracle
from prefrl.plotting import plot_learning_curve
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.errors import StoreError
from prefrl.prefs.exchange import gather_labels
from prefrl.prefs.schema import REUSED_STORE_NAME
from prefrl.prefs.selection import unasked_pairs
from prefrl.prefs.store import PreferenceStore
from prefrl.render.video import final_video
from prefrl.rundir import RunDir, mark_stopped_if_dead, read_run_status, resume_command, window_open
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.ending import RunEnd
from prefrl.runtime.errors import RunInterrupted
from prefrl.runtime.inprocess import run_inprocess
from prefrl.runtime.labeler import pairs_not_to_ask, reused_trainable_labels
from prefrl.runtime.monitor import Monitor
from prefrl.runtime.multiprocess import run_multiprocess, sigterm_as_ctrl_c
from prefrl.runtime.ray_backend import run_ray
from prefrl.runtime.videos import record_run_policy
from prefrl.utils.ray_cluster import check_ready


class WindowLauncher(Protocol):
    """Opens a person's labelling window on a run with a human oracle. The command layer
    passes one (:class:`prefrl.ui.LabelingWindowProcess`); the runtime never imports the ui.
    Without one, a human run opens no window: its person labels with ``prefrl label RUN_DIR``."""

    def check(self) -> None:
        """Raise now, before anything is written, if the window cannot open (no display)."""

    def start(self, run_dir: Path) -> subprocess.Popen[bytes]:
        """Open the window on ``run_dir`` (it holds its ``config.json``); the window closes
        by itself when the run stops."""
        ...


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    progress: bool = True,
    video: bool = True,
    oracle: Oracle | None = None,
    labeling_window: WindowLauncher | None = None,
) -> dict[str, Any]:
    """Start a preference run; returns its summary (also in ``summary.json``).

    ``oracle`` overrides the configured one (in-process backend only: an oracle object
    cannot be sent to another process; the multiprocess backend builds its own).
    ``labeling_window``: what opens the person's window on a run with a human oracle
    (once the agent has taken all its steps, a run with labels still due and no window
    open ends short, saying how to give the rest).
    """
    horizon = _check(config)
    _check_human(config, labeling_window)
    ppo = config.ppo_config()
    rollout = ppo.num_envs * ppo.num_steps
    warning = evaluation_warning(config.steps, rollout, config.num_evals, config.eval_episodes, horizon)
    if warning is not None:
        print(f"prefrl: warning: {warning}", file=sys.stderr, flush=True)
    if oracle is not None and config.backend != "inprocess":
        raise ValueError("an oracle object can only be passed to the inprocess backend")
    with contextlib.ExitStack() as claimed:
        with tempfile.TemporaryDirectory(prefix="prefrl-") as scratch:
            reused = _gather_reused_labels(config, Path(scratch))  # checked before the run is made
            run = RunDir.create(run_dir, "train", config.env_id, config.seed)
            claimed.enter_context(run.claim())  # held until the run ends: no other process runs it
            RunDir.create(run.path, "train", config.env_id, config.seed)  # none made one there meanwhile
            if reused is not None:
                shutil.move(reused, run.reused_store_path)
        run.write_config({"kind": "train", **config.to_dict(), "prefrl_version": __version__})
        return _execute(config, run, progress=progress, video=video, oracle=oracle, window=labeling_window)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    labels: int | None = None,
    progress: bool = True,
    video: bool = True,
    labeling_window: WindowLauncher | None = None,
) -> dict[str, Any]:
    """Continue a stopped or crashed run with every stored label and the latest checkpoints.

    ``steps`` / ``labels``: a larger env-step budget / label budget for the whole run, to
    train a run (finished or not) further; written to its ``config.json``.
    ``labeling_window``: as for :func:`train`.

    Raises:
        ValueError: not a preference run, or a budget smaller than the run's.
        RunBusyError: another process is running it (holds its ``run.lock``).
        RunDirError: the run directory cannot be written (read-only, disk full, ...).
        MissingFileError: its preference store is gone, though the run had answers; or
            the labels it reuses (``reused.sqlite``) are gone, and their source too.
    """
    run = RunDir(run_dir)
    kind = run.read_config().get("kind")
    if kind != "train":
        raise RunKindError(f"{run.path} is a {kind} run; only preference runs (prefrl train) can be resumed")
    run.check_writable()  # before any process starts
    with run.claim():  # held until the run ends: no other process runs it
        mark_stopped_if_dead(run.path)  # killed, or the machine restarted: its status.json said running
        return _resume(run, steps, labels, progress, video, labeling_window)


def _resume(
    run: RunDir,
    steps: int | None,
    labels: int | None,
    progress: bool,
    video: bool,
    labeling_window: WindowLauncher | None,
) -> dict[str, Any]:
    """:func:`resume`, in the process that holds the run's lock."""
    data = run.read_config()  # again: another resume may have grown it before this one held the run
    config = TrainConfig.from_dict(data)
    answered, steps_taken = _progress_so_far(run)
    emptied = run.store_path.exists() and run.store_path.stat().st_size == 0
    if emptied and not answered:  # stopped as the labeler made it: nothing in it to keep
        run.store_path.unlink()
    if answered and (emptied or not run.store_path.exists()):  # a new store would ask every label again
        raise MissingFileError(
            f"{run.store_path} is {'empty' if emptied else 'missing'}, but the run had {answered} answers (as its status.json or "
            "metrics.csv records): resuming would ask every label again. Put the file back (with its "
            f"-wal file, if any), or restore the labels with `prefrl import {run.path} EXPORT_DIR|COPY.sqlite` "
            "(an export written by `prefrl export`, or a copy of the store); to go on without them, "
            "start a new run (prefrl train)"
        )
    for name, new, old in (("steps", steps, config.steps), ("labels", labels, config.labels)):
        if new is not None and new < old:
            raise ConfigError(f"--{name} {new}: below the run's budget of {old}; a budget can only grow")
    if config.labels_from is not None and not run.reused_store_path.exists():
        _gather_reused_again(config, run)
    agent_done = run.agent_checkpoint.exists() and (steps or config.steps) <= steps_taken
    if (labels or 0) > config.labels and agent_done:
        _check_pairs_left(run, labels or 0, config)
    grows = (steps or config.steps) > config.steps or (labels or config.labels) > config.labels
    changed = None
    if not grows and run.summary_path.exists() and run.read_summary().get("complete"):
        summary = run.read_summary()
        changed = _short_of_budgets(config, run, summary) or _labels_changed(config, run, summary)
        if changed is None:
            print(f"prefrl: {run.path} is complete; --steps / --labels above its budgets train it further")
            return {"run_dir": str(run.path), **run.read_summary()}  # nothing left to do: not an error
    _check_human(config, labeling_window)
    if config.backend == "ray":
        check_ready(config.ray_address)
    if changed is not None:
        print(f"prefrl: {changed}", flush=True)
    if grows or changed is not None:
        # not finished any more; removed first: a kill before the budgets grow leaves a run to
        # resume, never a summary that says complete beside budgets it never reached
        run.summary_path.unlink(missing_ok=True)
    if grows:
        config.steps, config.labels = steps or config.steps, labels or config.labels
        run.write_config({**data, "steps": config.steps, "labels": config.labels})
    if steps_taken and not run.agent_checkpoint.exists():
        print(
            f"prefrl: warning: no agent checkpoint ({run.agent_checkpoint}), though the agent had reached "
            f"step {steps_taken} (stopped before its first checkpoint, or the file was removed): it starts "
            "again from step 0; every label is kept",
            flush=True,
        )
    return _execute(config, run, progress=progress, video=video, oracle=None, window=labeling_window)


def _check_pairs_left(run: RunDir, labels: int, config: TrainConfig) -> None:
    """More labels for a run whose agent has taken all its steps: no new clip comes, so
    they pair the clips its store holds (of the labeler's pool, as many as it keeps) that
    were never asked, reused pairs included. Refused when there is none, said otherwise.

    Raises:
        ConfigError: not one pair is left to ask.
    """
    clips: list[Clip] = []
    left = 0
    if run.store_path.exists():
        with PreferenceStore(run.store_path) as store:
            clips = store.recent_clips(config.pool_size)  # the labeler's pool, as it starts
            left = len(unasked_pairs(clips, pairs_not_to_ask(store, run)))
    more = f"{resume_command(run.path)} --labels {labels} --steps {2 * config.steps}"
    if not left:
        raise ConfigError(
            f"--labels {labels}: the agent has taken all its {config.steps} steps, so no new clip will "
            f"come, and no pair of the {len(clips)} clips the store holds is left to ask; give it more "
            f"steps too, e.g. {more}"
        )
    print(
        f"prefrl: the agent has taken all its {config.steps} steps: the new labels pair the clips the "
        f"store holds (of its earlier behaviour), {left} pairs not asked yet; for clips of it acting on, "
        f"give it more steps too, e.g. {more}",
        flush=True,
    )


def _short_of_budgets(config: TrainConfig, run: RunDir, summary: dict[str, Any]) -> str | None:
    """Why a run whose ``summary.json`` says complete is not, in one line, or None: the
    summary's env steps or label budget are below the budgets in its ``config.json`` (a
    ``prefrl resume --steps / --labels`` stopped between writing the larger budget and
    removing the summary, as an older prefrl wrote them)."""

    def number(key: str) -> int | None:
        value = summary.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    short = []
    steps, labels = number("env_steps"), number("labels_budget")
    if steps is not None and steps < config.steps:
        short.append(f"{steps} env steps (budget {config.steps})")
    if labels is not None and labels < config.labels:
        short.append(f"a label budget of {labels} (budget {config.labels})")
    if not short:
        return None
    return (
        f"{run.path}: its summary.json says complete at {' and '.join(short)}: the budgets grew after "
        "it was written; training on to them"
    )


def _labels_changed(config: TrainConfig, run: RunDir, summary: dict[str, Any]) -> str | None:
    """Why a run whose ``summary.json`` says complete is not (any more), in one line, or
    None while it is: its store no longer holds the whole budget (``prefrl repair`` set
    answers aside), or holds other answers than the summary counted (``prefrl import``
    added some, which the reward model has not trained on)."""
    counts = {answer.value: 0 for answer in Answer}
    if run.store_path.exists():
        with PreferenceStore(run.store_path, env_id=config.env_id) as store:
            counts = {answer.value: n for answer, n in store.answer_counts().items()}
    answered = sum(counts.values())
    used = summary.get("labels_used", answered)
    if answered < config.labels:
        return (
            f"{run.path}: the store now holds {answered} of {config.labels} answers (changed since the "
            "run ended); asking the rest"
        )
    if answered == used and counts == summary.get("answers", counts):
        return None
    trainable = sum(n for value, n in counts.items() if Answer(value).mu is not None)
    return (
        f"{run.path}: the store now holds {answered} answers, {trainable} to train on ({used} answers when "
        "the run ended); training the reward model on them"
    )


def _gather_reused_again(config: TrainConfig, run: RunDir) -> None:
    """Put back a run's lost ``reused.sqlite`` (``--labels-from``), gathered again from its
    source as :func:`train` gathered it; without them the reward model would train on
    the run's own labels alone, in silence.

    Raises:
        MissingFileError: the source is gone too, or can no longer be gathered.
    """
    lost = f"{run.reused_store_path} is missing (the labels the run reuses, from --labels-from {config.labels_from})"
    if not Path(str(config.labels_from)).exists():
        raise MissingFileError(
            f"{lost}, and so is that source: put back either of them and resume again; to go on "
            "without those labels, start a new run (prefrl train)"
        )
    with tempfile.TemporaryDirectory(prefix="prefrl-") as scratch:
        try:
            gathered = _gather_reused_labels(config, Path(scratch))
        except ConfigError as err:
            raise MissingFileError(f"{lost}, and cannot be gathered again: {err}") from None
        assert gathered is not None
        shutil.move(gathered, run.reused_store_path)
    print(
        f"prefrl: {lost}: gathered again from that source, {reused_trainable_labels(run)} labels to train on",
        flush=True,
    )


def _progress_so_far(run: RunDir) -> tuple[int, int]:
    """``(answers, agent steps)`` the run had reached, as its status.json and metrics.csv
    record them (0 where neither does)."""
    status = read_run_status(run.status_path)
    answered, steps = (status.labels_answered or 0, status.agent_step or 0) if status else (0, 0)
    try:
        rows = read_metrics(run.metrics_path) if run.metrics_path.exists() else []
    except (OSError, ValueError, csv.Error):  # unreadable: status.json alone tells
        rows = []
    logged_answers, logged_steps = column(rows, "labels/answered")[1], column(rows, "global_step")[1]
    return int(max([answered, *logged_answers])), int(max([steps, *logged_steps]))


def _check(config: TrainConfig) -> int | None:
    """Fail before anything is written: an env that cannot be built or fails its first
    step, clips longer than an episode, clips to be seen of an env whose steps cannot be
    re-rendered (the config checked everything else when it was made). Returns the
    longest an episode can be (None: as long as the game, e.g. Atari's without a fixed
    length)."""
    if config.backend == "ray":
        check_ready(config.ray_address)
    env = make_env(config.env_id, fixed_length=config.fixed_length or False)
    horizon = episode_horizon(env)
    shown = (
        "--oracle human" if config.oracle == "human" else "--query-videos" if config.query_videos else None
    )
    try:
        check_first_step(env, config.env_id)
        if shown:
            try:
                snapshotter_for(env)
            except EnvError as err:
                why = str(err)
                if config.oracle != "human":  # a synthetic oracle already: the videos are the trouble
                    why = why.replace(NO_VIDEO_ORACLE, "Leave out --query-videos")
                raise ConfigError(f"{shown}: clips must be shown, and {why}") from None
    finally:
        env.close()
    if horizon is not None and config.clip_length > horizon:
        raise ConfigError(
            f"--clip-length {config.clip_length}: longer than an episode of {config.env_id} ({horizon} steps), "
            f"so no clip could ever be cut; give at most {horizon}"
        )
    return horizon


def _gather_reused_labels(config: TrainConfig, scratch: Path) -> Path | None:
    """The labels of ``--labels-from``, copied into a store file under ``scratch``; None
    without the flag.

    Raises:
        ConfigError: the source cannot be read, is of another env, or (with ``--labels 0``)
            holds nothing to train on.
    """
    if config.labels_from is None:
        return None
    flag = f"--labels-from {config.labels_from}"
    target = scratch / REUSED_STORE_NAME
    try:
        gathered = gather_labels(config.labels_from, target)
    except StoreError as err:
        raise ConfigError(f"{flag}: {err}") from None
    if gathered.env_id != config.env_id:
        same = split_env_kwargs(gathered.env_id) == split_env_kwargs(config.env_id)
        raise ConfigError(
            f"{flag}: its labels are of {gathered.env_id}, this run is of {config.env_id}"
            + ("; a run's env id is compared as written: write it as that run did" if same else "")
        )
    if gathered.trainable == 0 and config.labels == 0:
        raise ConfigError(
            f"{flag}: none of its {gathered.answered} answers can be trained on (a reward model learns "
            "from left, right and equally-good answers), and --labels 0 asks for no more"
        )
    return target


def _check_human(config: TrainConfig, window: WindowLauncher | None) -> None:
    if config.oracle != "human":
        return
    if config.backend == "inprocess":
        raise ConfigError(
            "--backend inprocess: --oracle human needs the multiprocess or ray backend (the agent "
            "must keep running while you label)"
        )
    if window is not None:
        window.check()  # no display: fail now, with how to run it, before anything is written


def _execute(
    config: TrainConfig,
    run: RunDir,
    *,
    progress: bool,
    video: bool,
    oracle: Oracle | None,
    window: WindowLauncher | None,
) -> dict[str, Any]:
    monitor = Monitor(run, config.steps, config.labels, progress, progress_videos=video)
    monitor.write_status(running=True)
    process = None
    if config.oracle == "human" and window is not None and not all_labels_given(run, config):
        process = window.start(run.path)  # closes by itself when the run stops
    try:
        if config.backend == "inprocess":
            with sigterm_as_ctrl_c():  # the other backends stop on SIGTERM by themselves
                end = run_inprocess(config, run.path, monitor, oracle=oracle)
        else:
            present = None if process is None else PersonWatch(process, run, config)
            backend = run_ray if config.backend == "ray" else run_multiprocess
            end = backend(config, run.path, monitor, person_present=present)
    except KeyboardInterrupt as err:
        raise RunInterrupted(
            f"stopped; every label is saved. Continue with: {resume_command(run.path)}"
        ) from err
    finally:
        monitor.close()
        if process is not None:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.terminate()
    summary = summarize(config, run, monitor, end)
    plot_learning_curve(
        run.metrics_path,
        run.plot_path,
        f"prefrl: {config.env_id}, {config.labels} labels ({config.teacher if config.oracle == 'synthetic' else 'a person'})",
    )
    if video:
        final_video(lambda: record_run_policy(run.path, run.videos / "final_policy.mp4"))
    summary["wall_time_s"] = round(monitor.metrics.wall_time, 2)
    run.write_summary(summary)
    if not end.complete:
        print(f"prefrl: the run ended short of its budget: {end.reason}", flush=True)
    for warning in summary["warnings"]:
        print(f"prefrl: warning: {warning}", flush=True)
    return {"run_dir": str(run.path), **summary}


FEW_INFORMATIVE = 0.1
"""below this share of answers that say one clip is better, a run's summary warns"""


def label_warnings(counts: dict[str, int]) -> list[str]:
    """What a run's answers (``counts`` per :class:`~prefrl.prefs.clips.Answer` value) say
    is wrong with its labels: almost none of them said one clip was better, so the reward
    model had (almost) nothing to learn from."""
    answered = sum(counts.values())
    informative = counts.get("left", 0) + counts.get("right", 0)
    if answered < 10 or informative >= FEW_INFORMATIVE * answered:
        return []
    return [
        f"only {informative} of {answered} answers said one clip was better than the other (the rest: "
        f"{counts.get('equal', 0)} equally good, {counts.get('cant_tell', 0)} can't tell, "
        f"{counts.get('skipped', 0)} skipped), so the reward model had almost nothing to learn from. "
        "If the clips rarely show what is wanted (a sparse task), explore first "
        "(--explore-labels N and --selection diverse: docs/benchmarks/sparse.md), or give more labels"
    ]


def all_labels_given(run: RunDir, config: TrainConfig) -> bool:
    """Whether the run's store holds an answer for every label of the budget (a store that
    cannot be read now counts as not)."""
    if not run.store_path.exists():
        return False
    try:
        with PreferenceStore(run.store_path) as store:
            return store.num_answered() >= config.labels
    except (StoreError, OSError, sqlite3.Error):
        return False


class PersonWatch:
    """Whether the person labelling is still there: the window ``prefrl train`` opened is
    alive, or a window opened later (``prefrl label RUN_DIR``) keeps its heartbeat
    (``window.json``). Says so, with how to come back, when the last window closes."""

    def __init__(self, process: subprocess.Popen[bytes] | Any, run: RunDir, config: TrainConfig):
        self.process, self.run, self.config = process, run, config
        self.present = True

    def __call__(self) -> bool:
        present = self.process.poll() is None or window_open(self.run.path)
        if not self.present and present:
            print("prefrl: a labelling window is open again", flush=True)
        if self.present and not present and all_labels_given(self.run, self.config):
            print(
                f"prefrl: the labelling window is closed after the last of the run's {self.config.labels} "
                "labels; the run goes on to its end",
                flush=True,
            )
        elif self.present and not present:
            # the agent waits for answers: at its pace, or for the first reward model, which
            # the first answers train (unless it explores meanwhile)
            first = not self.config.explore_labels and not self.run.reward_checkpoint.exists()
            then = "waits for your labels" if self.config.pace == "wait" or first else "goes on"
            print(
                f"prefrl: the labelling window is closed; the run {then}. Reopen it with: prefrl label {self.run.path}",
                flush=True,
            )
        self.present = present
        return present


def summarize(config: TrainConfig, run: RunDir, monitor: Monitor, end: RunEnd) -> dict[str, Any]:
    """The numbers a run ends with (``summary.json``).

    ``complete``: the run got its whole label budget, trained on it and took all its
    steps; when not, ``incomplete_reason`` says why, in one line.
    """
    with PreferenceStore(run.store_path, env_id=config.env_id) as store:
        labels_used = store.num_answered()
        counts = {answer.value: n for answer, n in store.answer_counts().items()}
    agent, trainer = monitor.latest["agent"], monitor.latest["reward_trainer"]
    done = monitor.done or {}
    try:
        logged = read_metrics(run.metrics_path) if run.metrics_path.exists() else []
    except (OSError, ValueError, csv.Error):
        logged = []

    def latest(values: dict[str, Any], key: str) -> Any:
        # this session's last report, else the last one logged: a role that restarted or
        # resumed at its end may not report again
        if values.get(key) is not None:
            return values[key]
        ys = column(logged, key)[1]
        return ys[-1] if ys else None

    version = latest(trainer, "reward/version")
    return {
        "complete": end.complete,
        "incomplete_reason": end.reason,
        "labels_used": labels_used,
        "labels_budget": config.labels,
        "labels_reused": reused_trainable_labels(run),
        "tie_share": round(counts["equal"] / labels_used, 4) if labels_used else None,
        "agent_wait_share": done.get("wait_share"),
        "env_id": config.env_id,
        "task": config.task,
        "oracle": config.oracle,
        "teacher": config.teacher if config.oracle == "synthetic" else None,
        "selection": config.selection,
        "seed": config.seed,
        "backend": config.backend,
        "answers": counts,
        "warnings": label_warnings(counts),
        "env_steps": monitor.agent_step,
        "final_train_return": done.get("final_train_return"),
        "final_eval_return": done.get("final_eval_return"),
        "eval_returns": done.get("eval_returns"),
        "final_eval_return_stochastic": done.get("final_eval_return_stochastic"),
        "eval_returns_stochastic": done.get("eval_returns_stochastic"),
        "reward_val_accuracy": latest(trainer, "reward/val_accuracy"),
        "reward_train_accuracy": latest(trainer, "reward/train_accuracy"),
        "reward_recent_clip_return_corr": latest(trainer, "reward/recent_clip_return_corr"),
        "reward_rollout_true_corr": latest(agent, "reward/rollout_true_corr"),
        "reward_model_version": None if version is None else int(version),
        "env_steps_per_sec": latest(agent, "charts/SPS"),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
