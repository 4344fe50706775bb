"""``prefrl play RUN_DIR``: videos of a run's current policy (and progress videos)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.render.video import record_policy
from prefrl.rundir import RunDir


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
    task's measure (e.g. backflips per episode).

    Raises:
        prefrl.tasks.UntrustedTaskFile: the run's task file is not trusted.
        prefrl.utils.checkpoint.CheckpointError: a checkpoint that cannot be loaded safely.
    """
    run = RunDir(run_dir)
    config = run.read_config()
    if config.get("task") or task is not None:
        from prefrl.tasks import UntrustedTaskFile, get_task, trust_run_task

        run_task = str(config["task"]) if config.get("task") else None
        trust_run_task(run_task, named=task, trust=trust_task_file, run_dir=run.path)
        try:
            get_task(str(run_task))  # a task from the user's file: loading it registers its env
        except UntrustedTaskFile as err:
            raise err.for_run(run.path) from None
    env_id, fixed_length = config["env_id"], config.get("fixed_length") or False
    env = make_env(env_id, fixed_length=fixed_length)
    policy = load_policy(run.path, env)
    env.close()
    path = Path(out) if out else run.videos / "play.mp4"
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
    result: dict[str, Any] = {"video": str(path), "true_returns": returns}
    if gif:
        result["gif"] = str(path.with_suffix(".gif"))
    from prefrl.tasks import measure_behaviour, task_for_env

    behaviour = task_for_env(env_id)
    if behaviour is not None:
        result[behaviour.measure_name] = measure_behaviour(
            policy.act, behaviour, episodes=max(episodes, 5), seed=seed
        )
    return result


def record_progress_video(run_dir: str | Path, env_step: int, max_frames: int = 300) -> Path:
    """A short video of the run's policy now: ``videos/progress_<env_step>.mp4``."""
    run = RunDir(run_dir)
    path = run.videos / f"progress_{env_step:09d}.mp4"
    play(run.path, out=path, max_frames=max_frames)
    return path
