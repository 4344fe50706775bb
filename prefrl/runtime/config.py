"""The configuration of a preference run: one dataclass, written to ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from prefrl.agent.hyperparams import default_steps
from prefrl.envs.make import base_env_id
from prefrl.errors import ConfigError
from prefrl.prefs.schedule import LabelSchedule
from prefrl.reward.model import RewardModelConfig
from prefrl.tasks import get_task, portable_task_name

# Per-env defaults of a preference run. Clip lengths give 1-2 s of video at the env's
# own frame rate (CartPole 50 fps, Pendulum 30, Acrobot 15, MountainCar 30, Hopper 125);
# 50-step clips beat 25-step ones on Pendulum. CartPole runs with fixed-length episodes by
# default: its true reward *is* the episode length, so termination alone would teach it.
# Its horizon is 200 steps (4 s), not 500: once the pole has fallen the rest of a
# fixed-length episode teaches nothing, and with 500 steps (96% of early data fallen)
# PPO on the true reward learned in one seed of three within 100k steps, with 200 in all three.
# Hopper runs fixed-length (1000 steps; after a fall the simulation goes on, lying on the
# floor earns no healthy reward): with episodes that end at a fall, the learned reward,
# normalised to mean 0, made ending an episode early pay, the hopper learned to fall at
# once, and episodes shorter than a clip starved the labeller (1M steps, 350-1400 labels:
# true return 38-660, below PPO on a constant reward, ~990; fixed-length: 2017 at 100k).
# CartPole's goal is a state (pole up): its reward model sees observations only. With the
# action as an input, the first few dozen labels made every member prefer one push
# direction everywhere, and PPO collapsed onto always pushing that way (2 seeds in 3).
# fmt: off
PREFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1":              dict(clip_length=50, fixed_length=200, reward_model={"use_actions": False}),
    "Pendulum-v1":              dict(clip_length=50, fixed_length=False),
    "Acrobot-v1":               dict(clip_length=25, fixed_length=True),
    "MountainCar-v0":           dict(clip_length=50, fixed_length=True),
    "MountainCarContinuous-v0": dict(clip_length=50, fixed_length=True),
    "Hopper-v5":                dict(clip_length=64, fixed_length=True),
    "Walker2d-v5":              dict(clip_length=64, fixed_length=True),
}
# fmt: on
_FALLBACK: dict[str, Any] = dict(clip_length=50, fixed_length=False)
DEFAULT_LABELS = 100
"""the label budget of a run on a plain env (a task brings its own)"""


@dataclass
class TrainConfig:
    """Everything a preference run needs; ``prefrl resume`` rebuilds the run from it."""

    env_id: str = ""
    """gymnasium env id (a --task sets it)"""
    steps: int = 0
    """env steps of the agent (0: the task's budget, else the env's default)"""
    labels: int = -1
    """label budget: queries answered (can't-tell and skipped answers count too); -1: the
    task's budget, else 100"""
    oracle: str = "synthetic"
    """synthetic or human"""
    teacher: str = "perfect"
    """synthetic teacher: perfect, stochastic, myopic, mistake, skip, equal (NAME:key=value,...)"""
    selection: str = "disagreement"
    """disagreement (default: steadier over seeds in the published grid) or random"""
    seed: int = 0
    backend: str = "multiprocess"
    """multiprocess (three processes) or inprocess (sequential, deterministic)"""
    clip_length: int = 0
    """steps per clip (0: per-env default)"""
    fixed_length: bool | int | None = None
    """hide termination (None: per-env default)"""
    task: str | None = None
    """a behaviour task (backflip, spin, right, ...): its env, instruction and scripted oracle"""
    initial_fraction: float = 0.25
    """share of the labels asked about the untrained policy before RL starts"""
    decay_fraction: float = 0.1
    """label rate ~ c / (T + c) with c = decay_fraction * steps"""
    pool_size: int = 400
    """recent clips the labeler chooses pairs from"""
    oversample: int = 10
    """disagreement selection scores this many candidate pairs per query"""
    eval_episodes: int = 10
    num_evals: int = 10
    """evaluations of the policy on the true reward during the run"""
    checkpoint_every: int = 10
    """agent checkpoint every this many PPO updates"""
    query_videos: bool = False
    """keep every query's side-by-side clip as an mp4 in videos/"""
    ppo: dict[str, Any] = field(default_factory=dict)
    """PPO hyperparameter overrides (on top of the per-env table)"""
    reward_model: dict[str, Any] = field(default_factory=dict)
    """reward-model setting overrides (see RewardModelConfig)"""

    def __post_init__(self) -> None:
        if self.task is not None:
            self.task = portable_task_name(self.task)
            task = get_task(self.task)
            if self.env_id not in (task.gym_id, task.env_id, ""):
                raise ValueError(f"task {task.name!r} runs on {task.env_id}, not {self.env_id}")
            self.env_id = task.gym_id
            env_defaults = PREFERENCE_DEFAULTS.get(task.env_id, _FALLBACK)
            defaults: dict[str, Any] = {
                "clip_length": task.clip_length,
                "fixed_length": True,
                "labels": task.labels,
                "steps": task.steps,
            }
        else:
            env_defaults = defaults = PREFERENCE_DEFAULTS.get(base_env_id(self.env_id), _FALLBACK)
        self.reward_model = {**env_defaults.get("reward_model", {}), **self.reward_model}
        if self.steps <= 0:
            self.steps = int(defaults.get("steps") or default_steps(self.env_id))
        if self.labels < 0:
            self.labels = int(defaults.get("labels", DEFAULT_LABELS))
        if self.clip_length <= 0:
            self.clip_length = int(defaults["clip_length"])
        if self.fixed_length is None:
            self.fixed_length = defaults["fixed_length"]
        if self.labels < 2:
            raise ConfigError(
                f"--labels {self.labels}: a preference run needs at least 2 labels (PPO without any "
                "label: prefrl baseline ENV --reward constant)"
            )
        if self.pool_size < 2:
            raise ConfigError(f"pool_size {self.pool_size}: pairs are drawn from at least 2 clips")
        if self.backend not in ("multiprocess", "inprocess"):
            raise ValueError(f"backend must be multiprocess or inprocess, not {self.backend!r}")
        self.reward_model_config()  # validates the overrides now, not in a child process

    def schedule(self) -> LabelSchedule:
        """The run's label schedule."""
        return LabelSchedule(self.labels, self.steps, self.initial_fraction, self.decay_fraction)

    def reward_model_config(self) -> RewardModelConfig:
        return RewardModelConfig().replace(**self.reward_model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
