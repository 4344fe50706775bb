"""Two ways to fill a fixed-length episode after the fall, tried on InvertedPendulum-v5.

Runs ``prefrl`` (in-process backend only: the change is made in this process) with the
fixed-length wrapper changed:

- ``continue``: the simulation goes on after the fall (as for MuJoCo walkers); the pole
  rests on its hinge's limit and the cart can still be moved;
- ``flag``: every step after the fall shows one and the same observation, zeros and an
  extra "absorbed" entry of 1 (before the fall that entry is 0), so the learned reward
  has one value for all of them, which the agent cannot steer.

The runs (seeds S = 0, 1, 2; 4-5 min each here), then the rows:

    python docs/benchmarks/other_envs/inverted_pendulum_after_fall.py MODE train InvertedPendulum-v5 --steps 200000 --seed S --backend inprocess --run-dir OUT/MODE-sS --no-video
    python docs/benchmarks/other_envs/inverted_pendulum.py OUT/*-s* > docs/benchmarks/other_envs/inverted_pendulum_after_fall.csv
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np

import prefrl.envs.wrappers as wrappers
import prefrl.runtime.reward_trainer as reward_trainer
from prefrl.cli import main

MODE = sys.argv[1]
original_init = wrappers.FixedLengthEpisodes.__init__


def init(self: Any, env: gym.Env, horizon: int, after_termination: str) -> None:
    after = "continue" if MODE == "continue" else after_termination
    original_init(self, env, horizon, after)
    space = env.observation_space
    self.flag = MODE == "flag" and after == "absorb"
    if self.flag:
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 1
        self.observation_space = gym.spaces.Box(
            np.append(space.low, 0.0).astype(space.dtype),
            np.append(space.high, 1.0).astype(space.dtype),
            dtype=space.dtype,
        )
        self.absorbed = np.append(np.zeros(space.shape), 1.0).astype(space.dtype)


def reset(self: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    self._t, self._absorbed_obs = 0, None
    obs, info = self.env.reset(**kwargs)
    return (np.append(obs, 0.0).astype(obs.dtype) if self.flag else obs), info


def step(self: Any, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
    self._t += 1
    truncated = self._t >= self.horizon
    if self._absorbed_obs is not None:
        return self._absorbed_obs, 0.0, False, truncated, {"terminated_inner": True}
    obs, reward, terminated, _, info = self.env.step(action)
    if self.flag:
        obs = np.append(obs, 0.0).astype(obs.dtype)
    if terminated:
        info["terminated_inner"] = True
        if self.after_termination == "absorb":
            self._absorbed_obs = self.absorbed if self.flag else obs
    return obs, float(reward), False, truncated, info


if MODE not in ("continue", "flag"):
    raise SystemExit("usage: inverted_pendulum_after_fall.py continue|flag PREFRL-ARGS...")
wrappers.FixedLengthEpisodes.__init__ = init  # type: ignore[method-assign]
if MODE == "flag":
    wrappers.FixedLengthEpisodes.reset = reset  # type: ignore[method-assign]
    wrappers.FixedLengthEpisodes.step = step  # type: ignore[method-assign]
    make_env = reward_trainer.make_env  # the trainer builds its model from an env of the same shape
    reward_trainer.make_env = lambda env_id, **kw: make_env(env_id, fixed_length=True, **kw)  # type: ignore[assignment]
sys.exit(main(sys.argv[2:]))
