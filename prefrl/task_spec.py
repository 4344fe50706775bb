"""What a behaviour task is: :class:`Task` (an env, the labelling window's question, a
scripted person's per-step reward and the measures of the behaviour), the
:class:`EpisodeTrace` its measures read, and the wrappers that make a task's env: its
reward (:class:`BehaviourReward`) and what it adds to the observation
(:class:`AnglesAsCosSin`, :class:`ObservationExtras`).

The registry, the built-in tasks and the loading of task files are :mod:`prefrl.tasks`,
which also exports these names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.errors import ConfigError

_TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""what a task name may be: gymnasium takes it into an id, and ``--task FILE.py:NAME`` splits at
the last ``:``"""

StepReward = Callable[[gym.Env, np.ndarray, Any, np.ndarray], float]
EpisodeMeasure = Callable[[gym.Env, list[float]], float]


@dataclass(frozen=True)
class EpisodeTrace:
    """One fixed-length episode, as a task's measures read it.

    Attributes:
        env: the env, still in the episode's final state.
        rewards: the behaviour reward of each step, ``[steps]``.
        states: ``[steps, k]``: the task's ``trace(env)`` after each step (``k`` = 0 for a
            task without a trace).
        restarted: ``[steps]`` whether the task restarted the env at that step
            (:attr:`Task.restart_when`; that step's state is the fresh one); None: never.
    """

    env: gym.Env
    rewards: list[float]
    states: np.ndarray
    restarted: np.ndarray | None = None

    def stretches(self) -> list[slice]:
        """The episode's steps between restarts, each stretch starting where a restart
        left the env (the first one where the episode began)."""
        starts = [0] if self.restarted is None else [0, *np.flatnonzero(self.restarted)]
        ends = [*starts[1:], len(self.rewards)]
        return [slice(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


@dataclass(frozen=True)
class Measure:
    """A named number per episode, e.g. ``("clean flips per episode", count)``: ``of`` maps
    an :class:`EpisodeTrace` to it."""

    name: str
    of: Callable[[EpisodeTrace], float]


@dataclass(frozen=True)
class ObsExtra:
    """An entry a task appends to the agent's observation: something a person sees in the
    video (is the foot on the floor?) that the env's own observation lacks. ``read`` takes
    the unwrapped env after a reset or a step; ``low``/``high`` bound the value.

    Raises:
        ConfigError (a ValueError): a bound is NaN, or ``low`` is above ``high``.
    """

    name: str
    read: Callable[[Any], float]
    low: float = -np.inf
    high: float = np.inf

    def __post_init__(self) -> None:
        if not self.low <= self.high:  # also False when a bound is NaN
            raise ConfigError(
                f"ObsExtra {self.name!r}: bounds low={self.low}, high={self.high}: give low <= high, "
                "neither NaN (leave out a bound the value does not have)"
            )


@dataclass(frozen=True)
class Task:
    """A behaviour to teach.

    Attributes:
        name: what ``--task`` takes.
        env_id: the gymnasium env the behaviour lives in.
        instruction: the question the labelling window asks.
        behaviour_reward: ``(env, obs, action, next_obs) -> float`` per step, read by the
            scripted oracle (and by the true-reward baseline on the task), never by the agent.
        measure: ``(env, behaviour_rewards_of_the_episode) -> float`` at the episode's end
            (``env`` is still in its final state), e.g. full rotations per episode; or a
            :class:`Measure`, which reads the whole :class:`EpisodeTrace` (the ``trace``
            of every step), for a measure the final state and the rewards do not give.
        measure_name: what ``measure`` counts, for reports (a :class:`Measure` names itself).
        horizon: fixed episode length in steps.
        clip_length: default clip length (1-2 s of video).
        env_kwargs: keyword arguments for ``gym.make(env_id)``.
        labels, steps: the budgets a run of the task takes unless told otherwise (steps 0:
            the env's default), enough for the scripted person to teach it
            (docs/benchmarks/tasks.md).
        initial_fraction, decay_fraction: the label schedule a run of the task takes
            unless told otherwise (``--initial-fraction``, ``--decay-fraction``; None: the
            run's defaults): the share of the labels asked before RL starts, and how far
            into the run the rest are spread.
        ppo: PPO settings (``--ppo KEY=VALUE`` pairs) a run of the task takes unless told
            otherwise, and so does PPO on the scripted person's own reward (``prefrl
            baseline`` on the task's id), so that the two are compared at the same settings.
        angle_obs: indices of observation entries that are unbounded angles (Hopper's
            torso angle): the agent sees each as its cosine and sine, so that a state after
            a full turn looks like the state before it (the raw angle would be 2*pi off).
        obs_extras: entries appended to the observation after that (:class:`ObsExtra`),
            in this order; the agent and the reward model see them.
        trace: ``(env) -> sequence of k floats`` read after each step of a measured
            episode, for ``more_measures`` (e.g. the torso's angle, its height, foot contact).
        more_measures: measures reported next to ``measure`` (:class:`Measure`), each
            reading an :class:`EpisodeTrace`.
        restart_when: ``(unwrapped env) -> bool``, a state the task does not leave the
            agent in (a hopper lying on the floor): once it has held for ``restart_after``
            steps in a row, the env is reset within the episode, which keeps its fixed
            length. A try that fails then costs a moment, not the rest of the episode.
            The step that restarts returns the fresh observation and ``info["restarted"]``.

    Raises:
        ConfigError (a ValueError): a name gymnasium or ``--task FILE.py:NAME`` cannot take;
            no ``measure_name``; a horizon, clip length, budget or schedule out of range.
    """

    name: str
    env_id: str
    instruction: str
    behaviour_reward: StepReward
    measure: EpisodeMeasure | Measure
    measure_name: str = ""
    horizon: int = 1000
    clip_length: int = 50
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    labels: int = 100
    steps: int = 0
    initial_fraction: float | None = None
    decay_fraction: float | None = None
    ppo: tuple[tuple[str, Any], ...] = ()
    angle_obs: tuple[int, ...] = ()
    obs_extras: tuple[ObsExtra, ...] = ()
    trace: Callable[[gym.Env], Sequence[float]] | None = None
    more_measures: tuple[Measure, ...] = ()
    restart_when: Callable[[Any], bool] | None = None
    restart_after: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TASK_NAME.fullmatch(self.name):
            raise ConfigError(
                f"task name {self.name!r}: a name may hold only letters, digits, '_', '-' and '.', "
                "starting with a letter or digit (it is written in --task FILE.py:NAME and in the "
                "task's gymnasium id), e.g. 'lean_right'"
            )
        if isinstance(self.measure, Measure):
            if self.measure_name not in ("", self.measure.name):
                raise ConfigError(
                    f"task {self.name!r}: measure_name {self.measure_name!r} differs from its "
                    f"Measure's name {self.measure.name!r}; leave measure_name out"
                )
            object.__setattr__(self, "measure_name", self.measure.name)  # frozen
        elif not self.measure_name:
            raise ConfigError(f"task {self.name!r}: name what its measure counts (measure_name)")
        if self.horizon < 1:
            raise ConfigError(f"task {self.name!r}: horizon {self.horizon}: an episode lasts at least 1 step")
        if not 1 <= self.clip_length <= self.horizon:
            raise ConfigError(
                f"task {self.name!r}: clip_length {self.clip_length}: a clip is 1 to horizon "
                f"({self.horizon}) steps long"
            )
        if self.labels < 2:
            raise ConfigError(f"task {self.name!r}: labels {self.labels}: a run needs at least 2 (a pair)")
        if self.steps < 0:
            raise ConfigError(f"task {self.name!r}: steps {self.steps}: give 0 (the env's default) or more")
        if self.restart_after < 1:
            raise ConfigError(f"task {self.name!r}: restart_after must be at least 1 step")
        if self.initial_fraction is not None and not 0.0 <= self.initial_fraction <= 1.0:
            raise ConfigError(f"task {self.name!r}: initial_fraction must be in [0, 1]")
        if self.decay_fraction is not None and not self.decay_fraction > 0.0:
            raise ConfigError(f"task {self.name!r}: decay_fraction must be above 0")

    @property
    def gym_id(self) -> str:
        """The gymnasium id the task is registered as: ``prefrl/`` + the env's name without
        its version + the task's name, e.g. ``prefrl/HopperBackflip-v0``; a namespaced env's
        namespace joins its name (``MinAtar/Breakout-v1``: ``prefrl/MinAtarBreakout...``),
        as gymnasium allows one namespace per id; an env of one's own (``MODULE:ID``) goes by its ID."""
        env_name = self.env_id.rpartition(":")[2].split("-")[0].replace("/", "")
        return f"prefrl/{env_name}{self.name.capitalize()}-v0"

    @property
    def measures(self) -> tuple[Measure, ...]:
        """Every measure of the task, ``measure`` first (as ``measure_name``)."""
        measure = self.measure
        if isinstance(measure, Measure):
            return (measure, *self.more_measures)
        first = Measure(self.measure_name, lambda episode: measure(episode.env, episode.rewards))
        return (first, *self.more_measures)


class BehaviourReward(gym.Wrapper):
    """Replaces the env's reward with the task's behaviour reward; keeps the env's own
    reward in ``info["env_reward"]``."""

    def __init__(self, env: gym.Env, task: Task):
        super().__init__(env)
        self.task = task
        self._obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        paid = self.task.behaviour_reward(self.env, self._obs, action, obs)
        try:
            reward = float(paid)
        except (TypeError, ValueError):
            shown = f"an array of shape {np.shape(paid)}" if np.ndim(paid) else repr(paid)[:80]
            raise ConfigError(
                f"task {self.task.name}: its behaviour_reward must return one number per step, not {shown}"
            ) from None
        self._obs = obs
        info["env_reward"] = env_reward
        return obs, reward, terminated, truncated, info


class AnglesAsCosSin(gym.ObservationWrapper):
    """Replaces the observation entries ``indices`` (angles) by their cosines and sines,
    appended at the end: ``[obs without them, cos(angles), sin(angles)]``."""

    def __init__(self, env: gym.Env, indices: tuple[int, ...]):
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ValueError(f"angle_obs needs a flat Box observation space, not {space}")
        self.indices = np.asarray(indices)
        self.keep = np.setdiff1d(np.arange(space.shape[0]), self.indices)
        low = np.concatenate([space.low[self.keep], -np.ones(2 * len(indices))])
        high = np.concatenate([space.high[self.keep], np.ones(2 * len(indices))])
        self.observation_space = gym.spaces.Box(
            low.astype(space.dtype), high.astype(space.dtype), dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        angles = observation[self.indices]
        return np.concatenate([observation[self.keep], np.cos(angles), np.sin(angles)]).astype(
            self.observation_space.dtype
        )


class ObservationExtras(gym.ObservationWrapper):
    """Appends the task's :class:`ObsExtra` values to a flat observation."""

    def __init__(self, env: gym.Env, extras: tuple[ObsExtra, ...]):
        super().__init__(env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ValueError(f"obs_extras need a flat Box observation space, not {space}")
        self.extras = extras
        low = np.concatenate([space.low, [e.low for e in extras]])
        high = np.concatenate([space.high, [e.high for e in extras]])
        self.observation_space = gym.spaces.Box(
            low.astype(space.dtype), high.astype(space.dtype), dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        inner = self.env.unwrapped
        values = [float(extra.read(inner)) for extra in self.extras]
        return np.concatenate([observation, values]).astype(self.observation_space.dtype)
