"""``prefrl baseline``: PPO from scratch on the true reward, a constant one, or a frozen
learned one, in one process.

On the true reward this is the reference a preference run is measured against: same
env, same PPO, same step budget, but the agent learns from the env's own reward. On a
run's learned reward (``--reward RUN_DIR``) it retrains a fresh agent on the run's
final reward model, which stays fixed, and reports the true return: whether the
learned reward teaches the task by itself, without the run's agent and labels.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from prefrl import __version__
from prefrl.agent.evaluate import evaluate_both, evaluation_warning
from prefrl.agent.hyperparams import default_steps, resolve_ppo_config
from prefrl.agent.ppo import PPOAgent, PPOConfig, Rollout
from prefrl.envs.make import check_first_step, episode_horizon, make_env
from prefrl.envs.vector import VecEnv
from prefrl.errors import ConfigError, MissingFileError
from prefrl.metrics import MetricsLogger
from prefrl.plotting import plot_learning_curve
from prefrl.render.video import final_video, record_policy
from prefrl.reward.model import RewardModel
from prefrl.reward.sources import (
    ConstantReward,
    LearnedReward,
    RewardSource,
    TrueReward,
    true_reward_correlation,
)
from prefrl.rundir import RunDir, RunFileError, RunFormatError
from prefrl.runtime.config import SEEDS_BELOW
from prefrl.tasks import (  # importing it registers the built-in tasks' env ids (prefrl/...)
    locate_run_task,
    open_named_task,
    open_run_task,
    portable_task_name,
    task_for_env,
)
from prefrl.utils.checkpoint import CheckpointError
from prefrl.utils.progress import Progress
from prefrl.utils.settings import check_settings

RewardKind = Literal["true", "constant"]
REWARDS: dict[str, type[RewardSource]] = {"true": TrueReward, "constant": ConstantReward}
"""the rewards a baseline learns from by name (``--reward``; the keys are ``get_args(RewardKind)``);
any other ``--reward`` is a run directory (or ``reward_model.pt``) with a learned reward"""

LEARNED = "learned"
"""the reward kind a baseline on a frozen learned reward records (``config.json``,
``summary.json``) and names its run directory by (``baseline-learned-...``)"""

LEARNED_MIN_GAMMA = 0.99
"""the shortest discount PPO retrains on a frozen learned reward with (a longer one in the
env's table or the run's ``--ppo`` stays). The reward was shaped only where the run's agent
went, and a fresh agent has to find that behaviour again: a short horizon (Pendulum's
0.95, tuned for its true reward) can leave it on another one the reward pays less for.
Measured in docs/learned_reward.md."""

BASELINE_FLAGS = {
    "env_id": "ENV_ID",
    "steps": "--steps",
    "seed": "--seed",
    "reward": "--reward",
    "fixed_length": "--fixed-length",
    "task": "--task",
}
"""the flags of ``prefrl baseline`` that set a field: errors name a setting as it was typed"""


@dataclass(frozen=True)
class LearnedRewardRun:
    """A frozen learned reward to train on, and the run it was learned in."""

    path: Path
    """absolute path of what ``--reward`` named: a run directory or a ``reward_model.pt``"""
    model: RewardModel
    config: dict[str, Any]
    """the run's ``config.json`` (empty for a bare ``reward_model.pt`` or a directory without one)"""


def open_learned_reward(reward: str) -> LearnedRewardRun:
    """The learned reward ``--reward`` names: a run directory or a ``reward_model.pt``.

    Raises:
        ConfigError: no such path, no reward model there, or an unreadable one; names
            ``--reward``.
    """
    head = f"--reward {reward}: "
    not_one = head + "not 'true', 'constant' or a run directory with a reward model: "
    path = Path(reward).expanduser().resolve()
    if not path.exists():
        raise ConfigError(not_one + "no such file or directory")
    config: dict[str, Any] = {}
    if path.is_dir():
        run = RunDir(path)
        if not run.reward_checkpoint.exists():
            raise ConfigError(
                not_one + f"{path} has no checkpoints/reward_model.pt (a `prefrl train` run writes "
                "it once its reward trainer has finished a round)"
            )
        try:
            config = run.read_config()
        except MissingFileError:
            config = {}  # a reward model without its run: nothing to check or carry over
        except (RunFileError, RunFormatError) as err:
            raise ConfigError(head + str(err)) from None
        file = run.reward_checkpoint
    else:
        file = path
    try:
        model = RewardModel.load(file)
    except CheckpointError as err:
        raise ConfigError(not_one + str(err)) from None
    return LearnedRewardRun(path, model, config)


@dataclass
class BaselineSettings:
    """The settings of a baseline run, checked on construction (ConfigError names the flag).

    With a learned reward (``reward`` a run directory), ``fixed_length`` left None is the
    run's, and PPO takes the run's ``ppo`` overrides, with reward scaling and a discount of
    at least :data:`LEARNED_MIN_GAMMA` (see :meth:`ppo_config`).
    """

    env_id: str = ""
    """gymnasium env id (empty: the task's, else the learned reward's run's)"""
    steps: int | None = field(default=None, metadata={"min": 1})
    """env steps (None: the env's default budget, see prefrl/agent/hyperparams.py)"""
    seed: int = field(default=0, metadata={"min": 0, "below": SEEDS_BELOW})
    reward: str = "true"
    """true, constant, or a run directory (or reward_model.pt) whose learned reward PPO learns from"""
    fixed_length: bool | int | None = field(default=None, metadata={"min": 1})
    """hide termination (None: the learned reward's run's setting, else true for a task, else False)"""
    eval_episodes: int = field(default=10, metadata={"min": 1})
    num_evals: int = field(default=10, metadata={"min": 1})
    task: str | None = None
    """a behaviour task (``NAME`` or ``FILE.py:NAME``): PPO on its env, whose reward is the
    task's scripted person's; with a learned reward of a task's run, that task named again
    (which trusts its file). Becomes the portable name of the task the baseline runs on."""
    trust_task_file: bool = False
    """load the task file the learned reward's run names (it is Python: loading it runs it)"""

    def __post_init__(self) -> None:
        check_settings(self, flags=BASELINE_FLAGS)
        self.learned: LearnedRewardRun | None = None  # None for true and constant
        if self.reward not in REWARDS:
            self.learned = open_learned_reward(self.reward)
        self._open_task()
        run_env = self.learned.config.get("env_id") if self.learned else None
        if run_env is not None and self.env_id and run_env != self.env_id:
            raise ConfigError(
                f"--reward {self.reward}: its reward was learned on {run_env} (config.json), not on "
                f"{self.env_id}: pass {run_env} as ENV_ID, or a run of {self.env_id}"
            )
        self.env_id = self.env_id or str(run_env or "")
        if not self.env_id:
            raise ConfigError(
                "no env: give ENV_ID (a gymnasium env id, e.g. Hopper-v5), --task NAME, or --reward RUN_DIR of a run"
            )
        if self.fixed_length is None:
            run_fixed = self.learned.config.get("fixed_length") if self.learned else None
            # a task runs fixed-length episodes, as its preference runs do
            self.fixed_length = run_fixed if isinstance(run_fixed, (bool, int)) else self.task is not None
        if self.learned is not None:
            env = make_env(self.env_id, fixed_length=self.fixed_length)
            try:
                self.learned.model.check_spaces(env.observation_space, env.action_space)
            except ValueError as err:
                raise ConfigError(f"--reward {self.reward}: {err} ({self.env_id})") from None
            finally:
                env.close()
            self.ppo_config()  # the run's own ppo overrides, checked now

    def _open_task(self) -> None:
        """Load the task the baseline runs on (registering its env id): the learned
        reward's run's, if trusted (``trust_task_file``, or named again as ``task``), else
        ``task``; the env id becomes the task's."""
        run_task = (
            locate_run_task(self.learned.config.get("task") or None, self.task) if self.learned else None
        )
        if run_task:
            assert self.learned is not None
            task = open_run_task(
                run_task, named=self.task, trust=self.trust_task_file, run_dir=self.learned.path
            )
            self.task = run_task
        elif self.task is not None:
            task = open_named_task(self.task)
        else:
            return
        assert task is not None
        if self.env_id not in (task.gym_id, task.env_id, ""):
            raise ConfigError(f"--task {self.task}: the task runs on {task.env_id}, not {self.env_id}")
        self.env_id, self.task = task.gym_id, portable_task_name(self.task)

    @property
    def kind(self) -> str:
        """``true``, ``constant`` or ``learned``."""
        return self.reward if self.learned is None else LEARNED

    def ppo_config(self, overrides: dict[str, Any] | None = None) -> PPOConfig:
        """The env's PPO settings with ``overrides`` (``--ppo``) applied.

        On a behaviour task's id, the task's own ``ppo`` settings first. On a learned
        reward: reward scaling on, as in the preference run's agent (a
        learned reward has no fixed scale), a discount of at least
        :data:`LEARNED_MIN_GAMMA`, then the run's own ``ppo`` overrides, then ``overrides``.
        """
        if self.learned is None:
            return reference_ppo_config(self.env_id, overrides)
        run_ppo = self.learned.config.get("ppo") or {}
        try:
            resolve_ppo_config(self.env_id, run_ppo, flag="ppo")
        except ConfigError as err:
            raise ConfigError(f"--reward {self.reward}: its config.json's {err}") from None
        gamma = max(resolve_ppo_config(self.env_id).gamma, LEARNED_MIN_GAMMA)
        return resolve_ppo_config(
            self.env_id, {"norm_reward": True, "gamma": gamma, **run_ppo, **(overrides or {})}
        )


def reference_ppo_config(env_id: str, overrides: dict[str, Any] | None = None) -> PPOConfig:
    """PPO's settings on ``env_id``'s own reward (true or constant): the env's, on a
    behaviour task's id the task's own ``ppo`` settings over them, then ``overrides``."""
    task = task_for_env(env_id)
    return resolve_ppo_config(env_id, {**dict(task.ppo if task else ()), **(overrides or {})})


def run_baseline(
    env_id: str = "",
    steps: int | None = None,
    *,
    task: str | None = None,
    trust_task_file: bool = False,
    seed: int = 0,
    run_dir: str | Path | None = None,
    reward: str | Path = "true",
    fixed_length: bool | int | None = None,
    ppo_overrides: dict[str, Any] | None = None,
    eval_episodes: int = 10,
    num_evals: int = 10,
    video: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train PPO from scratch on ``reward`` and write a run directory.

    ``reward``: ``"true"``, ``"constant"``, or a run directory (or ``reward_model.pt``)
    whose learned reward, frozen, PPO learns from (see :class:`BaselineSettings` for the
    settings it carries over). ``task``: a behaviour task (``NAME`` or ``FILE.py:NAME``)
    whose env, and scripted person's reward, PPO trains on; ``env_id`` may then be empty.
    A learned reward's run of a task file loads that file only if trusted
    (``trust_task_file``, or the same task again as ``task``). ``steps``: None for the
    task's budget, else the env's default; ``fixed_length``: None for the learned
    reward's run's, else true on a task, else False. The policy is always evaluated on
    the env's true reward. Every setting is checked before any file is written: a bad
    one raises a ConfigError naming its flag.

    Returns the summary (also written to ``summary.json``).
    """
    settings = BaselineSettings(
        env_id=env_id,
        steps=steps,
        seed=seed,
        reward=str(reward),
        fixed_length=fixed_length,
        eval_episodes=eval_episodes,
        num_evals=num_evals,
        task=task,
        trust_task_file=trust_task_file,
    )
    env_id = settings.env_id
    behaviour = task_for_env(env_id)
    if settings.steps is not None:
        steps = settings.steps
    else:  # the task's budget (a preference run's default), else the env's
        steps = behaviour.steps if behaviour and behaviour.steps else default_steps(env_id)
    fixed_length = settings.fixed_length or False
    kind, learned = settings.kind, settings.learned
    torch.set_num_threads(1)
    config = settings.ppo_config(ppo_overrides)
    make = lambda: make_env(env_id, fixed_length=fixed_length)  # noqa: E731
    probe = make()  # its first step, before any file is written (the run's envs stay untouched)
    try:
        check_first_step(probe, env_id)
        horizon = episode_horizon(probe)
    finally:
        probe.close()
    envs = VecEnv([make] * config.num_envs)
    rollout = config.num_envs * config.num_steps
    if steps < rollout:
        envs.close()
        raise ConfigError(
            f"--steps {steps}: one PPO rollout of {env_id} is {rollout} steps (num_envs {config.num_envs} "
            f"x num_steps {config.num_steps}); give at least {rollout}, or make a rollout shorter with "
            "--ppo num_steps=N (or --ppo num_envs=N)"
        )
    warning = evaluation_warning(steps, rollout, num_evals, eval_episodes, horizon)
    if warning is not None:
        print(f"prefrl: warning: {warning}", file=sys.stderr, flush=True)
    about_reward: dict[str, Any] = {"reward": kind}
    if learned is not None:
        about_reward.update(reward_path=str(learned.path), reward_version=learned.model.version)
    try:
        run = RunDir.create(run_dir, f"baseline-{kind}", env_id, seed)
    except BaseException:
        envs.close()
        raise
    run.write_config(
        {
            "kind": "baseline",
            "env_id": env_id,
            "steps": steps,
            "seed": seed,
            **about_reward,
            "task": settings.task,
            "fixed_length": fixed_length,
            "eval_episodes": eval_episodes,
            "num_evals": num_evals,
            "ppo": dataclasses.asdict(config),
            "prefrl_version": __version__,
        }
    )
    source: RewardSource = LearnedReward(learned.model) if learned is not None else REWARDS[kind]()
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
        if learned is not None:
            learned_rewards = agent.rewards_for(rollout, source)
            row["reward/rollout_true_corr"] = true_reward_correlation(learned_rewards, rollout.true_rewards)
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
        **about_reward,
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
    plot_learning_curve(run.metrics_path, run.plot_path, f"PPO on the {kind} reward: {env_id}")
    if video:
        final_video(
            lambda: record_policy(
                agent.act, env_id, run.videos / "final_policy.mp4", fixed_length=fixed_length
            )
        )
    summary["wall_time_s"] = round(metrics.wall_time, 2)
    run.write_summary(summary)
    envs.close()
    return {"run_dir": str(run.path), **summary}
