"""Wrappers the environment layer puts around a gymnasium env.

- :class:`FixedLengthEpisodes` hides termination: every episode lasts exactly
  ``horizon`` steps. It matters whenever *when* an episode ends tells the agent how
  well it did: on CartPole the true reward *is* the episode length, so an agent that
  sees terminations learns to balance from a constant reward alone (see the constant
  reward control in the benchmarks). The preference paper (Christiano et al. 2017,
  appendix A) and the ``seals`` package remove variable-length episodes for this reason.
- :class:`RewardFromSource` replaces the step reward by a reward function of
  (observation, action) and keeps the true reward in ``info["true_reward"]``.
- :class:`RestartWhen` resets the env within an episode once it has been in a given
  state for a while (a behaviour task's fallen hopper, ``Task.restart_when``).
- :class:`FlatObservations` turns discrete and composite observations (``Discrete``,
  ``MultiDiscrete``, ``MultiBinary``, ``Tuple``, ``Dict``) into one flat float32 vector:
  a discrete value becomes a one-hot vector (FrozenLake, Taxi, Blackjack).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np

AfterTermination = Literal["continue", "absorb", "restart"]

# CartPole warns on every episode stepped past its fall; fixed-length episodes do that on purpose.
warnings.filterwarnings("ignore", message=r".*calling 'step\(\)' even though this environment")


class FixedLengthEpisodes(gym.Wrapper):
    """Every episode lasts exactly ``horizon`` steps; ``terminated`` is never reported.

    What happens after the underlying env terminates:

    - ``"continue"``: keep stepping the simulator (MuJoCo walkers, built with
      ``terminate_when_unhealthy=False``, lie on the floor and keep moving);
    - ``"absorb"``: stay in the terminal state with true reward 0 until the horizon
      (a fallen CartPole, MountainCar at its flag);
    - ``"restart"``: reset the underlying env and go on in a new game (games from
      pixels, as the paper did on Atari: the agent is not told the game ended).

    ``info["terminated_inner"]`` tells evaluation code when the inner episode ended.
    """

    def __init__(self, env: gym.Env, horizon: int, after_termination: AfterTermination):
        super().__init__(env)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if after_termination not in ("continue", "absorb", "restart"):
            raise ValueError(
                f"after_termination must be 'continue', 'absorb' or 'restart', not {after_termination!r}"
            )
        self.horizon = horizon
        self.after_termination = after_termination
        self._t = 0
        self._absorbed_obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._t = 0
        self._absorbed_obs = None
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._t += 1
        truncated = self._t >= self.horizon
        if self._absorbed_obs is not None:
            return self._absorbed_obs, 0.0, False, truncated, {"terminated_inner": True}
        obs, reward, terminated, inner_truncated, info = self.env.step(action)
        if terminated or (inner_truncated and self.after_termination == "restart"):
            info["terminated_inner"] = True
            if self.after_termination == "absorb":
                self._absorbed_obs = obs
            elif self.after_termination == "restart":
                obs, _ = self.env.reset()
        return obs, float(reward), False, truncated, info


class RewardFromSource(gym.Wrapper):
    """Step reward = ``reward_fn(obs, action)``; the true reward goes to ``info["true_reward"]``.

    ``reward_fn`` takes a batch: observations of shape ``(1, *obs_shape)`` and actions of
    shape ``(1, *action_shape)``, and returns shape ``(1,)``. Without a ``reward_fn`` the step
    reward stays the true reward (it is still copied into ``info``).
    """

    def __init__(
        self,
        env: gym.Env,
        reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ):
        super().__init__(env)
        self.reward_fn = reward_fn
        self._obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, true_reward, terminated, truncated, info = self.env.step(action)
        info["true_reward"] = float(true_reward)
        reward = float(true_reward)
        if self.reward_fn is not None:
            batch_obs = np.asarray(self._obs)[None]
            batch_act = np.asarray(action)[None]
            reward = float(self.reward_fn(batch_obs, batch_act)[0])
        self._obs = obs
        return obs, reward, terminated, truncated, info


class RestartWhen(gym.Wrapper):
    """Resets the env within the episode once ``down(env.unwrapped)`` has held for
    ``after`` steps in a row (``prefrl.tasks.Task.restart_when``). The restarting step returns
    the fresh observation, not terminated, with ``info["restarted"] = True``."""

    def __init__(self, env: gym.Env, down: Callable[[Any], bool], after: int):
        super().__init__(env)
        self.down, self.after = down, after
        self._down_steps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._down_steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._down_steps = self._down_steps + 1 if self.down(self.env.unwrapped) else 0
        if self._down_steps >= self.after and not (terminated or truncated):
            obs, _ = self.env.reset()  # the env's own random stream: seeded by the episode's
            self._down_steps = 0
            info["restarted"] = True
        return obs, float(reward), terminated, truncated, info


class FlatObservations(gym.ObservationWrapper):
    """Observations as ``gymnasium.spaces.flatten`` gives them (one-hot for a discrete
    value, parts concatenated for ``Tuple``/``Dict``), as float32.

    Raises:
        ValueError: the observation space cannot be flattened (e.g. it holds ``Text``).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._inner_space = env.observation_space
        flat = gym.spaces.flatten_space(env.observation_space)
        if not isinstance(flat, gym.spaces.Box):  # Graph and Sequence parts flatten to themselves
            raise ValueError(f"{env.observation_space} does not flatten into a vector")
        self.observation_space = gym.spaces.Box(
            flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32
        )

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(gym.spaces.flatten(self._inner_space, observation), dtype=np.float32)


class ZeroBasedActions(gym.ActionWrapper):
    """A ``Discrete(n, start=s)`` action space as ``Discrete(n)``: the agent, the reward
    model's one-hot and the stored clips count actions from 0, as prefrl does everywhere;
    the env gets ``action + s``."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        assert isinstance(space, gym.spaces.Discrete)
        self._start = int(space.start)
        self.action_space = gym.spaces.Discrete(int(space.n))

    def action(self, action: Any) -> Any:
        return int(action) + self._start
