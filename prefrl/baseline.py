"""``prefrl baseline``: PPO on the true reward (or a constant one), in one process.

This is the reference a preference run is measured against: same env, same PPO,
same step budget, but the agent learns from the env's own reward.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

import prefrl.tasks  # noqa: F401 - registers the behaviour tasks' env ids (prefrl/...)
from prefrl import __version__
from prefrl.agent.evaluate import evaluate_both
from prefrl.agent.hyperparams import default_steps, resolve_ppo_config
from prefrl.agent.ppo import PPOAgent, Rollout
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.errors import ConfigError
from prefrl.plotting import plot_learning_curve
from prefrl.render.video import record_policy
from prefrl.reward.sources import ConstantReward, RewardSource, TrueReward
from prefrl.rundir import MetricsLogger, RunDir
from prefrl.utils.progress import Progress
from prefrl.utils.settings import check_settings

RewardKind = Literal["true", "constant"]
REWARDS: dict[str, type[RewardSource]] = {"true": TrueReward, "constant": ConstantReward}
"""the rewards a baseline learns from (``--reward``; the keys are ``get_args(RewardKind)``)"""

BASELINE_FLAGS = {
    "env_id": "ENV_ID",
    "steps": "--steps",
    "seed": "--seed",
    "reward": "--reward",
    "fixed_length": "--fixed-length",
}
"""the flags of ``prefrl baseline`` that set a field: errors name a setting as it was typed"""


@dataclass
class BaselineSettings:
    """The settings of a baseline run, checked on construction (ConfigError names the flag)."""

    env_id: str
    steps: int | None = field(default=None, metadata={"min": 1})
    """env steps (None: the env's default budget, see prefrl/agent/hyperparams.py)"""
    seed: int = field(default=0, metadata={"min": 0})
    reward: RewardKind = "true"
    fixed_length: bool | int = field(default=False, metadata={"min": 1})
    eval_episodes: int = field(default=10, metadata={"min": 1})
    num_evals: int = field(default=10, metadata={"min": 1})

    def __post_init__(self) -> None:
        check_settings(self, flags=BASELINE_FLAGS)


def run_baseline(
    env_id: str,
    steps: int | None = None,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    reward: str = "true",
    fixed_length: bool | int = False,
    ppo_overrides: dict[str, Any] | None = None,
    eval_episodes: int = 10,
    num_evals: int = 10,
    video: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train PPO on ``reward`` (``"true"`` or ``"constant"``) and write a run directory.

    ``steps``: None for the env's default budget. Every setting is checked before any
    file is written: a bad one raises a ConfigError naming its flag.

    Returns the summary (also written to ``summary.json``).
    """
    settings = BaselineSettings(
        env_id=env_id,
        steps=steps,
        seed=seed,
        reward=reward,  # type: ignore[arg-type]  # checked against RewardKind here
        fixed_length=fixed_length,
        eval_episodes=eval_episodes,
        num_evals=num_evals,
    )
    steps = settings.steps if settings.steps is not None else default_steps(env_id)
    torch.set_num_threads(1)
    config = resolve_ppo_config(env_id, ppo_overrides)
    make = lambda: make_env(env_id, fixed_length=fixed_length)  # noqa: E731
    envs = VecEnv([make] * config.num_envs)  # builds (and checks) the env before any file is written
    rollout = config.num_envs * config.num_steps
    if steps < rollout:
        envs.close()
        raise ConfigError(
            f"--steps {steps}: one PPO rollout of {env_id} is {rollout} steps (num_envs {config.num_envs} "
            f"x num_steps {config.num_steps}); give at least {rollout}, or make a rollout shorter with "
            "--ppo num_steps=N (or --ppo num_envs=N)"
        )
    run = RunDir.create(run_dir, f"baseline-{reward}", env_id, seed)
    run.write_config(
        {
            "kind": "baseline",
            "env_id": env_id,
            "steps": steps,
            "seed": seed,
            "reward": reward,
            "fixed_length": fixed_length,
            "ppo": dataclasses.asdict(config),
            "prefrl_version": __version__,
        }
    )
    source = REWARDS[reward]()
    agent = PPOAgent(envs, config, total_steps=steps, seed=seed)
    metrics = MetricsLogger(run.metrics_path)
    eval_every = max(1, steps // max(1, num_evals))
    next_eval = eval_every
    train_time = 0.0
    last_eval: list[float] = []  # deterministic policy
    last_eval_stochastic: list[float] = []
    bar = Progress(steps, f"baseline {env_id}", enabled=progress)
    tick = time.perf_counter()

    def on_update(rollout: Rollout, stats: dict[str, float]) -> None:
        nonlocal next_eval, train_time, tick, last_eval, last_eval_stochastic
        train_time += time.perf_counter() - tick
        row: dict[str, Any] = dict(stats)
        recent = agent.recent_returns(10)
        row["charts/episodic_return"] = float(np.mean(recent)) if recent else None
        row["charts/episodes"] = len(agent.episodes)
        row["charts/SPS"] = agent.env_steps / max(train_time, 1e-9)
        if agent.env_steps >= next_eval or agent.env_steps >= steps:
            last_eval, last_eval_stochastic = evaluate_both(
                agent, env_id, eval_episodes, seed=10_000, fixed_length=fixed_length
            )
            row["eval/mean_return"] = float(np.mean(last_eval))
            row["eval/mean_return_stochastic"] = float(np.mean(last_eval_stochastic))
            next_eval += eval_every
            agent.save(run.checkpoints / "agent.pt")
        metrics.log(agent.env_steps, row)
        bar.update(agent.env_steps, episodes=len(agent.episodes), ret=row["charts/episodic_return"])
        tick = time.perf_counter()

    agent.learn(steps, source, on_update)
    bar.close()
    agent.save(run.checkpoints / "agent.pt")
    if not last_eval:
        last_eval, last_eval_stochastic = evaluate_both(
            agent, env_id, eval_episodes, seed=10_000, fixed_length=fixed_length
        )
    recent = agent.recent_returns(10)
    summary = {
        "env_id": env_id,
        "reward": reward,
        "seed": seed,
        "env_steps": agent.env_steps,
        "episodes": len(agent.episodes),
        "final_train_return": float(np.mean(recent)) if recent else None,
        "final_eval_return": float(np.mean(last_eval)),
        "eval_returns": last_eval,
        "final_eval_return_stochastic": float(np.mean(last_eval_stochastic)),
        "eval_returns_stochastic": last_eval_stochastic,
        "train_time_s": round(train_time, 2),
        "env_steps_per_sec": round(agent.env_steps / max(train_time, 1e-9), 1),
        "wall_time_s": round(metrics.wall_time, 2),
    }
    plot_learning_curve(run.metrics_path, run.plot_path, f"PPO on the {reward} reward: {env_id}")
    if video:
        record_policy(agent.act, env_id, run.videos / "final_policy.mp4", fixed_length=fixed_length)
    summary["wall_time_s"] = round(metrics.wall_time, 2)
    run.write_summary(summary)
    envs.close()
    return {"run_dir": str(run.path), **summary}
