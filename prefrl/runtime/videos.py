"""Videos of a run's current policy: progress videos during a run, the final policy's
video at its end, and what ``prefrl play`` records."""

from __future__ import annotations

from pathlib import Path

from prefrl.agent.checkpoint import TrainedPolicy, load_policy
from prefrl.envs.make import make_env
from prefrl.render.video import record_policy
from prefrl.rundir import RunDir, RunFileError


def record_run_policy(
    run_dir: str | Path,
    path: str | Path,
    *,
    episodes: int = 1,
    seed: int = 0,
    max_frames: int = 1500,
    gif: bool = False,
) -> tuple[list[float], TrainedPolicy]:
    """Record ``episodes`` episodes of the run's latest policy (deterministic) to the mp4
    ``path`` (and a gif beside it with ``gif``); returns each episode's true return and
    the policy.

    The run's env id must be known in this process (a behaviour task: its task loaded).

    Raises:
        RunFileError: the run's config.json names no env.
    """
    run = RunDir(run_dir)
    config = run.read_config()
    env_id, fixed_length = config.get("env_id"), config.get("fixed_length") or False
    if not env_id:
        raise RunFileError(f'{run.config_path}: no "env_id" (the env the run was made on): repair it')
    env = make_env(env_id, fixed_length=fixed_length)
    policy = load_policy(run.path, env)
    env.close()
    returns = record_policy(
        policy.act,
        env_id,
        path,
        episodes=episodes,
        fixed_length=fixed_length,
        seed=seed,
        max_frames=max_frames,
        gif=gif,
    )
    return returns, policy


def record_progress_video(run_dir: str | Path, env_step: int, max_frames: int = 300) -> Path:
    """A short video of the run's policy now: ``videos/progress_<env_step>.mp4``."""
    run = RunDir(run_dir)
    path = run.videos / f"progress_{env_step:09d}.mp4"
    record_run_policy(run.path, path, max_frames=max_frames)
    return path
