"""``prefrl fit-reward``: a reward model fitted offline on a stored label set alone.

Labels outlive their run: the answered pairs of a run directory, a store file or an
export (``prefrl export``) are copied into a new run directory, and the reward model is
trained on them for a fixed number of rounds, as the reward trainer of a run would
(bootstrap resamples, the held-out labels of each member as its validation set, L2
adapted after each round). The result is a run directory with ``checkpoints/
reward_model.pt``: train PPO on it with ``prefrl baseline ENV --reward RUN_DIR``, load it
anywhere with :func:`prefrl.load_reward_model`, or reuse its labels with ``prefrl train
--labels-from RUN_DIR``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl import __version__
from prefrl.envs.make import make_env, tuned_for
from prefrl.errors import ConfigError
from prefrl.metrics import MetricsLogger
from prefrl.prefs.clips import Answer
from prefrl.prefs.exchange import gather_labels
from prefrl.prefs.schema import STORE_NAME, remove_store
from prefrl.prefs.store import PreferenceStore
from prefrl.reward.model import RewardModel, RewardModelConfig
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.rundir import RunDir
from prefrl.runtime.config import PREFERENCE_DEFAULTS, SEEDS_BELOW
from prefrl.runtime.multiprocess import sigterm_as_ctrl_c
from prefrl.runtime.run import label_warnings
from prefrl.tasks import (  # importing it registers the built-in tasks' env ids (prefrl/...)
    Task,
    locate_run_task,
    open_named_task,
    open_run_task,
    portable_task_name,
)

DEFAULT_ROUNDS = 50
"""training rounds of an offline fit (a 25-label Pendulum run's trainer makes about as many)"""


def fit_reward(
    source: str | Path,
    run_dir: str | Path | None = None,
    *,
    seed: int = 0,
    rounds: int = DEFAULT_ROUNDS,
    reward_model: dict[str, Any] | None = None,
    task: str | None = None,
    trust_task_file: bool = False,
) -> dict[str, Any]:
    """Fit a reward model on the labels of ``source`` and write it to a new run directory.

    ``reward_model``: setting overrides (``--reward-model KEY=VALUE``) on top of the
    source run's own settings (when ``source`` is a run directory), else the env's defaults.
    The labels of a behaviour task's env need the task loaded (its env id registered): a
    run directory's own task, whose file is loaded only if trusted (``trust_task_file``, or
    named again as ``task``); for a store or an export, the task named by ``task``. The
    new run's ``config.json`` names the task, as a preference run's does.

    Returns the summary (also written to ``summary.json``): the labels trained on, the
    ensemble's accuracy on its held-out labels and on all of them, and, as a diagnostic
    that training never sees, the correlation of predicted and true clip returns. Stopped
    by Ctrl-C or SIGTERM after a round or more, it keeps the model of the rounds done, and
    the summary says ``complete: false`` and why; stopped before, it leaves no run and the
    run directory can be used again.

    Raises:
        ConfigError: a bad setting, no label to train on, or a task whose env is not the
            labels'; StoreError: ``source`` holds no labels or cannot be read;
            UntrustedTaskFile: the source run's task file is not trusted. Nothing is
            written then.
    """
    if rounds < 1:
        raise ConfigError(f"--rounds {rounds}: must be at least 1")
    if not 0 <= seed < SEEDS_BELOW:
        raise ConfigError(f"--seed {seed}: must be in [0, {SEEDS_BELOW})")
    torch.set_num_threads(1)
    source_config = _run_config(Path(source))
    behaviour, task = _open_labels_task(source, source_config, task, trust_task_file)
    with sigterm_as_ctrl_c():  # a scheduler's SIGTERM stops it as Ctrl-C does
        with tempfile.TemporaryDirectory(prefix="prefrl-") as scratch:
            gathered = gather_labels(source, Path(scratch) / "prefs.sqlite")
            if gathered.trainable == 0:
                raise ConfigError(
                    f"{source}: none of its {gathered.answered} answers can be trained on (a reward model "
                    "learns from left, right and equally-good answers)"
                )
            env_id = gathered.env_id
            if behaviour is not None and behaviour.gym_id != env_id:
                raise ConfigError(
                    f"--task {task}: the task runs on {behaviour.gym_id}, the labels of {source} on {env_id}"
                )
            settings = {
                **(tuned_for(PREFERENCE_DEFAULTS, env_id) or {}).get("reward_model", {}),
                **source_config.get("reward_model", {}),
                **(reward_model or {}),
            }
            config = RewardModelConfig().override(settings)
            env = make_env(env_id)
            obs_shape, action_space = env.observation_space.shape, env.action_space
            env.close()
            assert obs_shape is not None
            made = run_dir is None or not Path(run_dir).exists()
            if run_dir is not None and not (Path(run_dir) / "config.json").exists():  # a run: create says so
                for name in (STORE_NAME, "metrics.csv"):  # not this run's to replace, nor to remove
                    if (Path(run_dir) / name).exists():
                        raise ConfigError(f"--run-dir {run_dir}: it holds a {name}; choose another --run-dir")
            run = RunDir.create(run_dir, "fit-reward", env_id, seed)
            shutil.move(Path(scratch) / "prefs.sqlite", run.store_path)
        try:
            run.write_config(
                {
                    "kind": "fit-reward",
                    "env_id": env_id,
                    "seed": seed,
                    "source": str(Path(source).resolve()),
                    "rounds": rounds,
                    "task": task,
                    "reward_model": settings,
                    # what the labels were given on: `prefrl baseline --reward` trains with the same
                    "fixed_length": source_config.get("fixed_length"),
                    "prefrl_version": __version__,
                }
            )
            model = RewardModel(obs_shape, action_space, config, seed=seed)
            trainer = PreferenceTrainer(model, seed=seed)
            with PreferenceStore(run.store_path, env_id=env_id) as store:
                labels = store.trainable_labels()
                trainer.add_labels(labels, store.clips_of(labels))
                counts = store.answer_counts()
            ties = counts[Answer.EQUAL]
            metrics_log = MetricsLogger(run.metrics_path)
            metrics: dict[str, float] = {}
            started = time.perf_counter()
            stopped = None
            try:
                for _ in range(rounds):
                    metrics = trainer.train_round()
                    metrics_log.log(trainer.rounds, metrics)
            except KeyboardInterrupt:  # the rounds done are kept, as the model they made
                if not metrics:
                    raise
                stopped = f"interrupted after {trainer.rounds} of {rounds} rounds; the model of those rounds is saved"
        except KeyboardInterrupt:  # before a round was done: no run, and the directory free again
            if made:
                shutil.rmtree(run.path, ignore_errors=True)
            else:
                for path in (run.config_path, run.metrics_path):
                    path.unlink(missing_ok=True)
                remove_store(run.store_path)
                for folder in (run.checkpoints, run.videos):
                    with contextlib.suppress(OSError):  # not empty: not this run's
                        folder.rmdir()
            raise
    model.fit_output_normalization(trainer.recent_features(num_pairs=len(labels)))
    model.version = trainer.rounds
    model.save(run.reward_checkpoint)
    trainer.save(run.trainer_checkpoint)
    summary = {
        "env_id": env_id,
        "source": str(Path(source).resolve()),
        "labels": len(labels),
        "answered": gathered.answered,
        "tie_share": round(ties / gathered.answered, 4),
        "rounds": trainer.rounds,
        "reward_val_accuracy": metrics["reward/val_accuracy"],
        "reward_train_accuracy": metrics["reward/train_accuracy"],
        "reward_val_loss": metrics["reward/val_loss"],
        "reward_train_loss": metrics["reward/train_loss"],
        "reward_clip_return_corr": trainer.recent_return_correlation(num_pairs=len(labels)),
        "reward_model": dataclasses.asdict(config),
        "fit_time_s": round(time.perf_counter() - started, 2),
    }
    if stopped is not None:
        summary.update(complete=False, incomplete_reason=stopped)
    summary["warnings"] = warnings = label_warnings({answer.value: n for answer, n in counts.items()})
    for warning in warnings:  # on stderr: stdout is the summary
        print(f"prefrl: warning: {warning}", file=sys.stderr, flush=True)
    run.write_summary({k: _plain(v) for k, v in summary.items()})
    return {"run_dir": str(run.path), **summary}


def _open_labels_task(
    source: str | Path, source_config: dict[str, Any], task: str | None, trust_task_file: bool
) -> tuple[Task | None, str | None]:
    """The behaviour task of ``source``'s labels, loaded, and its portable name (both None
    for labels of a plain env): a run's own task, else the one ``task`` names."""
    run_task = locate_run_task(source_config.get("task") or None, task)
    if run_task:
        return open_run_task(run_task, named=task, trust=trust_task_file, run_dir=source), run_task
    if task is None:
        return None, None
    return open_named_task(task), portable_task_name(task)


def _run_config(source: Path) -> dict[str, Any]:
    """The ``config.json`` of a source that is a run directory ({} for a store or an export)."""
    run = RunDir(source)
    if source.is_dir() and run.config_path.exists():
        return run.read_config()
    return {}


def _plain(value: Any) -> Any:
    """JSON-ready: NaN (no held-out label with a strict answer) as None."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
