"""``prefrl play RUN_DIR``: videos of a run's current policy (progress videos: :mod:`prefrl.runtime.videos`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefrl.errors import ConfigError, os_refusal
from prefrl.rundir import RunDir, RunDirError, mkdir_refusal
from prefrl.runtime.config import SEEDS_BELOW
from prefrl.runtime.videos import record_run_policy
from prefrl.tasks import measure_all, open_run_task, task_for_env


def play(
    run_dir: str | Path,
    *,
    episodes: int = 1,
    out: str | Path | None = None,
    gif: bool = False,
    seed: int = 0,
    max_frames: int = 1500,
    trust_task_file: bool = False,
    task: str | None = None,
) -> dict[str, Any]:
    """Record ``episodes`` episodes of the run's latest policy (deterministic) to an mp4.

    A task file the run's config.json names is loaded (run) only if trusted: by
    ``trust_task_file``, by naming the same task again as ``task``, or earlier in this
    process (:func:`prefrl.tasks.trust_task_file`).

    Returns the video's path, each episode's true return and, for behaviour tasks, the
    task's measures (e.g. backward turns and clean flips per episode), by name.

    Raises:
        ConfigError: a seed outside [0, :data:`~prefrl.runtime.config.SEEDS_BELOW`).
        prefrl.tasks.UntrustedTaskFile: the run's task file is not trusted.
        prefrl.utils.checkpoint.CheckpointError: a checkpoint that cannot be loaded safely.
    """
    if not 0 <= seed < SEEDS_BELOW:
        raise ConfigError(f"--seed {seed}: must be in [0, {SEEDS_BELOW})")
    run = RunDir(run_dir)
    config = run.read_config()
    # a task from the user's file: loading it registers its env
    open_run_task(config.get("task") or None, named=task, trust=trust_task_file, run_dir=run.path)
    path = Path(out) if out else run.videos / "play.mp4"
    _check_writable(path)
    gif = gif and path.suffix.lower() != ".gif"  # --out X.gif: the video is the gif
    returns, policy = record_run_policy(
        run.path, path, episodes=episodes, seed=seed, max_frames=max_frames, gif=gif
    )
    result: dict[str, Any] = {"video": str(path), "true_returns": returns}
    if gif:
        result["gif"] = str(path.with_suffix(".gif"))
    behaviour = task_for_env(config["env_id"])
    if behaviour is not None:
        result.update(measure_all(policy.act, behaviour, episodes=max(episodes, 5), seed=seed))
    return result


def _check_writable(path: Path) -> None:
    """Fail before any episode is played when the video cannot be written where asked (a
    run on a read-only disk, a name without a video format).

    Raises:
        ConfigError: ``path`` names no video format.
        RunDirError: the OS refused; the message says to pass ``--out``.
    """
    if not path.suffix:
        raise ConfigError(f"--out {path}: name a video file, ending in .mp4 or .gif")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(path, err, mkdir_refusal(err)) from None
    try:
        path.open("ab").close()
    except OSError as err:
        raise _unwritable(path, err, os_refusal(err)) from None
    if not existed:
        path.unlink()


def _unwritable(path: Path, err: OSError, words: str | None) -> OSError:
    """``err`` in one line (the OS's refusal ``words``), or ``err`` itself: a bug."""
    if words is None:
        return err
    return RunDirError(
        f"cannot write the video {path}: {words}; pass --out with a path on a writable disk", err.errno, path
    )
