"""Running statistics for observation normalisation and reward scaling."""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Mean and variance of a stream of arrays, merged batch by batch (Chan et al. 1979).

    ``update(x)`` takes a batch ``x`` of shape ``(B, *shape)``; the statistics equal
    ``x_all.mean(0)`` and ``x_all.var(0)`` of everything seen, up to float64 rounding
    (plus an ``epsilon`` pseudo-count at mean 0 and variance 1, as in stable-baselines3).
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        batch_count = x.shape[0]
        if batch_count == 0:
            return
        batch_mean = x.mean(axis=0)
        batch_var = x.var(axis=0)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # arrays may come back from a checkpoint as tensors: np.asarray reads them as numpy
        self.mean = np.array(np.asarray(state["mean"]), dtype=np.float64)
        self.var = np.array(np.asarray(state["var"]), dtype=np.float64)
        self.count = float(state["count"])


class ObsNormalizer:
    """``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` with running statistics."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, enabled: bool = True):
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.enabled = enabled
        self._refresh()

    def _refresh(self) -> None:
        self._mean = self.rms.mean.astype(np.float32)
        self._inv_std = (1.0 / np.sqrt(self.rms.var + 1e-8)).astype(np.float32)

    def update(self, obs: np.ndarray) -> None:
        """Add a batch of raw observations ``(B, *shape)`` to the statistics."""
        if self.enabled:
            self.rms.update(obs)
            self._refresh()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalised float32 observations, same shape as ``obs``."""
        obs = np.asarray(obs, dtype=np.float32)
        if not self.enabled:
            return obs
        return np.clip((obs - self._mean) * self._inv_std, -self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state)
        self._refresh()


class RewardScaler:
    """Divides rewards by the running std of the discounted return (stable-baselines3's
    ``VecNormalize``), so PPO sees a reward of a sane scale whatever the reward source:
    learned rewards have arbitrary scale, and it changes as the reward model retrains.

    The mean is not subtracted: shifting rewards would change what the agent prefers
    whenever episode lengths vary.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, enabled: bool = True):
        self.rms = RunningMeanStd(())
        self.gamma = gamma
        self.clip = clip
        self.enabled = enabled
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale a rollout's rewards ``(T, N)``; ``dones[t]`` marks episodes ending after step t.

        The running discounted return carries over from the previous rollout.
        """
        if not self.enabled:
            return rewards.astype(np.float32)
        discounted = np.empty(rewards.shape, dtype=np.float64)
        ret = self.returns
        for t in range(rewards.shape[0]):
            ret = ret * self.gamma + rewards[t]
            discounted[t] = ret
            ret = np.where(dones[t], 0.0, ret)
        self.returns = ret
        self.rms.update(discounted.reshape(-1))
        scaled = rewards / np.sqrt(self.rms.var + 1e-8)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"rms": self.rms.state_dict(), "returns": self.returns.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state["rms"])
        self.returns = np.array(np.asarray(state["returns"]), dtype=np.float64)
