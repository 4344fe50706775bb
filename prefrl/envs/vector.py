"""A lean synchronous vector of envs.

Why not ``gymnasium.vector.SyncVectorEnv``: prefrl needs, at every step, the simulator
snapshot of each env (to re-render clips later), the final observation of an episode
that ended (to bootstrap truncated episodes), and the true episodic returns; and on
2 cores a plain loop over cheap envs is the fastest there is (process-based vector
envs are several times slower for classic control).

Envs are reset automatically in the same step they end ("same-step" autoreset, as in
stable-baselines3): the returned observation is then the first of the new episode and
``final_obs`` holds the last one of the old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from prefrl.envs.errors import EnvError
from prefrl.envs.snapshot import Snapshotter, snapshotter_for


@dataclass
class VecStep:
    """One step of ``num_envs`` envs (shapes lead with ``num_envs``)."""

    obs: np.ndarray  # (N, *obs_shape): next observation (first of a new episode if one ended)
    true_rewards: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: the episode ended in a terminal state
    truncated: np.ndarray  # (N,) bool: the episode was cut by a time limit
    final_obs: np.ndarray  # (N, *obs_shape): last observation of the ended episode, else obs


@dataclass(frozen=True)
class Episode:
    """A finished episode: its true return and length, and which env ran it."""

    env_index: int
    true_return: float
    length: int


class VecEnv:
    """``num_envs`` copies of one env, stepped in turn in this process.

    Args:
        env_fns: one constructor per env; all must build the same env id.
        capture_snapshots: keep :meth:`snapshots` current (needed to re-render clips).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], *, capture_snapshots: bool = False):
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.snapshotter: Snapshotter | None = snapshotter_for(self.envs[0]) if capture_snapshots else None
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished: list[Episode] = []
        self._obs_dtype = np.float32 if self.observation_space.dtype == np.float64 else None

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env (env ``i`` gets ``seed + i``) and return observations ``(N, ...)``."""
        obs = [env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self.envs)]
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._stack(obs)

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every env with its action (``actions[i]``) and reset those that ended."""
        n = self.num_envs
        obs_list = []
        rewards = np.empty(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        final_list = []
        for i, env in enumerate(self.envs):
            obs, reward, term, trunc, _ = env.step(actions[i])
            rewards[i] = reward
            self._ep_return[i] += reward
            self._ep_length[i] += 1
            final_list.append(obs)
            if term or trunc:
                terminated[i], truncated[i] = term, trunc and not term
                self.finished.append(Episode(i, float(self._ep_return[i]), int(self._ep_length[i])))
                self._ep_return[i] = 0.0
                self._ep_length[i] = 0
                obs, _ = env.reset()
            obs_list.append(obs)
        return VecStep(self._stack(obs_list), rewards, terminated, truncated, self._stack(final_list))

    def snapshots(self) -> np.ndarray:
        """Simulator state of every env now, ``(N, snapshot_size)`` float64."""
        if self.snapshotter is None:
            raise RuntimeError("VecEnv was built without capture_snapshots=True")
        snap = self.snapshotter
        return np.stack([snap.capture(env) for env in self.envs])

    def pop_finished(self) -> list[Episode]:
        """Episodes finished since the last call."""
        done, self.finished = self.finished, []
        return done

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _stack(self, obs: list[np.ndarray]) -> np.ndarray:
        shapes = {np.shape(o) for o in obs}
        if shapes != {self.observation_space.shape}:
            spec = self.envs[0].spec
            name = spec.id if spec is not None else type(self.envs[0].unwrapped).__name__
            raise EnvError(
                f"{name} gave an observation of shape {sorted(shapes - {self.observation_space.shape})[0]} "
                f"where its observation_space says {self.observation_space.shape}: an env's observations "
                "must keep the shape its observation_space declares"
            )
        out = np.stack(obs)
        return out.astype(self._obs_dtype) if self._obs_dtype is not None else out
