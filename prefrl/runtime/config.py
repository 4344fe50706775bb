"""The configuration of a preference run: one dataclass, written to ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefrl.agent.hyperparams import default_steps, resolve_ppo_config
from prefrl.agent.ppo import PPOConfig
from prefrl.envs.errors import EnvError
from prefrl.envs.make import (
    frame_rate,
    observes_images,
    own_time_limit,
    random_episode_length,
    split_env_kwargs,
    time_limit,
    tuned_for,
)
from prefrl.errors import ConfigError
from prefrl.oracles import make_oracle, parse_teacher
from prefrl.prefs.schedule import LabelSchedule
from prefrl.reward.model import RewardModelConfig
from prefrl.runtime.choices import BACKENDS, ORACLES, PACES, SELECTIONS, Backend, OracleKind, Pace, Selection
from prefrl.tasks import get_task, portable_task_name
from prefrl.utils.settings import check_settings, unset

__all__ = [
    "BACKENDS",
    "CLI_FLAGS",
    "DEFAULT_LABELS",
    "ORACLES",
    "PACES",
    "SEEDS_BELOW",
    "SELECTIONS",
    "TrainConfig",
]

SEEDS_BELOW = 2**63
"""a seed is below this: torch takes seeds below 2**64, and a run seeds its envs and
workers ``seed + i``, so this leaves room; it is also a signed 64-bit integer (TOML's)"""

# Per-env defaults of a preference run. Clip lengths give 1-2 s of video at the env's
# own frame rate (CartPole 50 fps, Pendulum 30, Acrobot 15, MountainCar 30, Hopper 125).
# CartPole runs with fixed-length episodes by default: its true reward *is* the episode
# length, so termination alone would teach it. Its horizon is 200 steps (4 s), not 500:
# once the pole has fallen the rest of a fixed-length episode teaches nothing, and a long
# horizon fills early data with fallen states.
# Hopper runs fixed-length (1000 steps; after a fall the simulation goes on, lying on the
# floor earns no healthy reward): with episodes that end at a fall, the learned reward,
# normalised to mean 0, makes ending an episode early pay, and episodes shorter than a
# clip starve the labeller.
# CartPole's and MountainCar's goals are states (pole up, car at the flag): their reward
# models see observations only, so that early labels cannot make them prefer one push
# direction everywhere.
# Envs of image observations (Atari, MinAtar) take the paper's Atari settings: clips of
# 25 steps (1.7 s at 15 frames/s), fixed-length episodes in which game over restarts the
# game, and its CNN reward model on observations alone with outputs of std 0.05; 16 pairs
# per gradient step keep a step of the CNN ensemble near a second on a CPU.
# What these choices measured: docs/benchmarks/preferences.md ("What it took") and
# docs/benchmarks/hopper/README.md.
# fmt: off
PREFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1":              dict(clip_length=50, fixed_length=200, reward_model={"use_actions": False}),
    "Pendulum-v1":              dict(clip_length=50, fixed_length=False),
    "Acrobot-v1":               dict(clip_length=25, fixed_length=True),
    "MountainCar-v0":           dict(clip_length=50, fixed_length=True, reward_model={"use_actions": False}),
    "MountainCarContinuous-v0": dict(clip_length=50, fixed_length=True, reward_model={"use_actions": False}),
    "Hopper-v5":                dict(clip_length=64, fixed_length=True),
    "Walker2d-v5":              dict(clip_length=64, fixed_length=True),
}
# fmt: on
# Any other env: clips of 1.5 s at its frame rate (at most an episode), and fixed-length
# episodes where the env has a time limit of its own to give the horizon.
CLIP_SECONDS = 1.5
_IMAGES: dict[str, Any] = dict(
    clip_length=25,
    fixed_length=True,
    reward_model={
        "use_actions": False,
        "output_std": 0.05,
        "dropout": 0.5,
        "hidden_sizes": [64],
        "batch_size": 16,
    },
)
DEFAULT_LABELS = 100
"""the label budget of a run on a plain env (a task brings its own)"""


def preference_defaults(env_id: str) -> dict[str, Any]:
    """A preference run's defaults for ``env_id``: its own, or another version's
    (:func:`~prefrl.envs.make.tuned_for`), else those of its family."""
    tuned = tuned_for(PREFERENCE_DEFAULTS, env_id)
    if tuned is not None:
        return tuned
    try:
        if observes_images(env_id):
            return _IMAGES
        fps = frame_rate(env_id)
    except EnvError as err:
        raise ConfigError(str(err)) from None
    clip_length = round(CLIP_SECONDS * fps) if fps else 50
    return dict(
        clip_length=max(1, min(clip_length, time_limit(env_id))),
        fixed_length=own_time_limit(env_id) is not None,
        derived=True,
    )


def default_clip_length(env_id: str, defaults: dict[str, Any], fixed_length: bool | int) -> int:
    """The clip length of ``defaults`` for a run of ``env_id`` whose episodes are
    ``fixed_length``: no longer than an episode's horizon, and for episodes that end when
    the env says, on an env without settings of its own, no longer than a random policy's
    median episode: a clip never spans two episodes, so a longer one could never be cut
    (Blackjack's hands of 1-3 steps)."""
    horizon = fixed_length if type(fixed_length) is int else time_limit(env_id)
    clip_length = max(1, min(int(defaults["clip_length"]), horizon))
    if fixed_length is False and defaults.get("derived"):
        try:
            clip_length = max(1, min(clip_length, random_episode_length(env_id)))
        except EnvError as err:
            raise ConfigError(str(err)) from None
    return clip_length


CLI_FLAGS: dict[str, str] = {
    "env_id": "ENV_ID",
    "task": "--task",
    "steps": "--steps",
    "labels": "--labels",
    "oracle": "--oracle",
    "teacher": "--teacher",
    "selection": "--selection",
    "seed": "--seed",
    "backend": "--backend",
    "workers": "--workers",
    "ray_address": "--ray-address",
    "clip_length": "--clip-length",
    "fixed_length": "--fixed-length",
    "initial_fraction": "--initial-fraction",
    "decay_fraction": "--decay-fraction",
    "query_videos": "--query-videos",
    "pace": "--pace",
    "labels_from": "--labels-from",
    "explore_labels": "--explore-labels",
}
"""the flags of ``prefrl train`` that set a field: errors name a setting as it was typed"""


@dataclass
class TrainConfig:
    """Everything a preference run needs; ``prefrl resume`` rebuilds the run from it.

    Checked and resolved on construction, before any file is written: every field
    against its type and bounds, the task, the teacher, the PPO and reward-model
    overrides, and that the step budget holds one PPO rollout. A bad value raises a
    :class:`~prefrl.errors.ConfigError` naming the flag (``--labels -5: must be at least 2
    ...``). ``None`` budgets and lengths become the task's or the env's defaults, so a
    stored config (``config.json``) holds numbers only.
    """

    env_id: str = ""
    """gymnasium env id (a --task sets it)"""
    steps: int = unset("the task's budget, else the env's default", min=1)
    """env steps of the agent (None: the task's budget, else the env's default)"""
    labels: int = unset("the task's budget, else 100")
    """label budget: queries answered (can't-tell and skipped answers count too); None: the
    task's budget, else 100. At least 2, or 0 with ``labels_from``"""
    labels_from: str | None = None
    """a run directory, store file or export whose labelled pairs the reward model trains
    on too (same env), copied into the run when it starts; not counted in ``labels``"""
    oracle: OracleKind = "synthetic"
    """synthetic or human"""
    pace: Pace | None = None
    """wait: the agent waits while the answers lag behind the schedule; free: it never
    waits (None: wait for a person, free for a synthetic oracle)"""
    teacher: str = "perfect"
    """synthetic teacher: perfect, stochastic, myopic, mistake, skip, equal (NAME:key=value,...)"""
    selection: Selection = "disagreement"
    """disagreement (default: steadier over seeds in the published grid), random, or diverse
    (clips far apart in state space, k-center: for tasks whose answers are mostly ties)"""
    seed: int = field(default=0, metadata={"min": 0, "below": SEEDS_BELOW})
    backend: Backend = "multiprocess"
    """multiprocess (three processes), inprocess (sequential, deterministic) or ray (actors
    on a Ray cluster: prefrl.runtime.ray_backend)"""
    workers: int = field(default=0, metadata={"min": 0})
    """ray backend: rollout-worker actors the agent's envs are spread over (0: the agent
    steps them itself)"""
    ray_address: str | None = None
    """ray backend: the cluster to join (HOST:PORT or auto; None: a private cluster on
    this machine)"""
    clip_length: int = unset("the env's default", min=1)
    """steps per clip (None: per-env default)"""
    fixed_length: bool | int | None = field(default=None, metadata={"min": 1})
    """hide termination: True (the env's time limit), a number of steps, False (None: per-env default)"""
    task: str | None = None
    """a behaviour task (backflip, spin, right, ...): its env, instruction and scripted oracle"""
    initial_fraction: float = unset("the task's, else 0.25", min=0, max=1)
    """share of the labels asked about the untrained policy before RL starts"""
    decay_fraction: float = unset("the task's, else 0.1", above=0)
    """label rate ~ c / (T + c) with c = decay_fraction * steps"""
    pool_size: int = field(default=400, metadata={"min": 2, "hint": "pairs are drawn from at least 2 clips"})
    """recent clips the labeler chooses pairs from"""
    oversample: int = field(default=10, metadata={"min": 1})
    """disagreement and diverse selection score this many candidate pairs per query"""
    explore_labels: int = field(default=0, metadata={"min": 0})
    """explore with a state-entropy reward until this many answers have said one clip is
    better, its share falling linearly to 0 by then (0: off; see prefrl.reward.intrinsic)"""
    eval_episodes: int = field(default=10, metadata={"min": 1})
    num_evals: int = field(default=10, metadata={"min": 1})
    """evaluations of the policy on the true reward during the run"""
    checkpoint_every: int = field(default=10, metadata={"min": 1})
    """agent checkpoint every this many PPO updates"""
    query_videos: bool = False
    """keep every query's side-by-side clip as an mp4 in videos/"""
    ppo: dict[str, Any] = field(default_factory=dict)
    """PPO hyperparameter overrides (on top of the per-env table)"""
    reward_model: dict[str, Any] = field(default_factory=dict)
    """reward-model setting overrides (see RewardModelConfig)"""

    def __post_init__(self) -> None:
        check_settings(self, flags=CLI_FLAGS)
        if self.task is not None:
            given, self.task = self.task, portable_task_name(self.task)
            try:
                task = get_task(self.task)
            except ConfigError as err:  # unknown task, task file not found
                raise ConfigError(f"--task {given}: {err}") from None
            if self.env_id not in (task.gym_id, task.env_id, ""):
                raise ConfigError(f"--task {self.task}: the task runs on {task.env_id}, not {self.env_id}")
            self.env_id = task.gym_id
            self.ppo = {**dict(task.ppo), **self.ppo}
            env_defaults = preference_defaults(task.env_id)
            defaults: dict[str, Any] = {
                "clip_length": task.clip_length,
                "fixed_length": True,
                "labels": task.labels,
                "steps": task.steps,
                **{
                    key: value
                    for key, value in (
                        ("initial_fraction", task.initial_fraction),
                        ("decay_fraction", task.decay_fraction),
                    )
                    if value is not None
                },
            }
        else:
            env_defaults = defaults = preference_defaults(self.env_id)
        self.reward_model = {**env_defaults.get("reward_model", {}), **self.reward_model}
        if self.steps is None:
            self.steps = int(defaults.get("steps") or default_steps(self.env_id))
        if self.labels is None:
            self.labels = int(defaults.get("labels", DEFAULT_LABELS))
        if self.initial_fraction is None:
            self.initial_fraction = float(defaults.get("initial_fraction", LabelSchedule.initial_fraction))
        if self.decay_fraction is None:
            self.decay_fraction = float(defaults.get("decay_fraction", LabelSchedule.decay_fraction))
        if self.labels_from is not None:
            self.labels_from = str(Path(self.labels_from).resolve())  # the run may be resumed elsewhere
        if self.labels < 2 and not (self.labels == 0 and self.labels_from):
            raise ConfigError(
                f"--labels {self.labels}: must be at least 2 (a pair needs 2; PPO without any label: "
                "prefrl baseline ENV --reward constant; 0 with --labels-from, to train on another run's "
                "labels alone)"
            )
        if self.fixed_length is None:
            self.fixed_length = defaults["fixed_length"]
            if type(self.fixed_length) is int and "max_episode_steps" in split_env_kwargs(self.env_id)[1]:
                self.fixed_length = True  # the time limit the id asks for, not the env's usual horizon
        if self.clip_length is None:
            self.clip_length = default_clip_length(self.env_id, defaults, self.fixed_length)
        if self.pace is None:
            self.pace = "wait" if self.oracle == "human" else "free"
        if self.backend != "ray" and (self.workers or self.ray_address is not None):
            flag = "--workers" if self.workers else "--ray-address"
            raise ConfigError(f"{flag}: for the ray backend only; add --backend ray")
        self.oracle_spec()  # each check now, in the parent, not in a child process
        ppo = self.ppo_config()
        rollout = ppo.num_envs * ppo.num_steps
        if self.steps < rollout:
            raise ConfigError(
                f"--steps {self.steps}: one PPO rollout of {self.env_id} is {rollout} steps (num_envs "
                f"{ppo.num_envs} x num_steps {ppo.num_steps}); give at least {rollout}, or make a rollout "
                f"shorter with --ppo num_steps=N (or --ppo num_envs=N)"
            )
        self.reward_model_config()
        if self.workers > ppo.num_envs:
            raise ConfigError(
                f"--workers {self.workers}: more than the {ppo.num_envs} envs the agent steps "
                f"(num_envs); give at most {ppo.num_envs}, or more envs with --ppo num_envs=N"
            )

    def oracle_spec(self) -> tuple[str, dict[str, Any]]:
        """The synthetic teacher's name and parameters, checked by building it once."""
        try:
            name, params = parse_teacher(self.teacher)
            make_oracle(name, seed=self.seed, **params)
        except ConfigError as err:  # a bad spec or value; anything else is a bug
            raise ConfigError(f"--teacher {self.teacher}: {err}") from None
        return name, params

    def ppo_config(self) -> PPOConfig:
        """The hyperparameter table's PPO config for the env with the ``ppo`` overrides."""
        return resolve_ppo_config(self.env_id, self.ppo)

    def schedule(self) -> LabelSchedule:
        """The run's label schedule."""
        return LabelSchedule(self.labels, self.steps, self.initial_fraction, self.decay_fraction)

    def reward_model_config(self) -> RewardModelConfig:
        """The reward model's settings with the ``reward_model`` overrides."""
        return RewardModelConfig().override(self.reward_model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
