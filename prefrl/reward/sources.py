"""Reward sources: what the agent learns from, swappable without touching the agent.

They implement :class:`prefrl.interfaces.RewardSource` (re-exported here).

A reward source maps a batch of transitions to rewards:
``source(obs[B, *obs_shape], actions[B, *action_shape], true_rewards[B]) -> rewards[B]``.
The true rewards are passed so that baselines can use them; a learned source must
ignore them (the agent then never sees the true reward).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from prefrl.interfaces import RewardSource

if TYPE_CHECKING:
    from prefrl.reward.model import RewardModel

__all__ = ["ConstantReward", "LearnedReward", "RewardSource", "TrueReward", "true_reward_correlation"]


class TrueReward:
    """The environment's own reward: RL on the true reward, the baseline prefrl is measured against."""

    name = "true"

    def __call__(self, obs: np.ndarray, actions: np.ndarray, true_rewards: np.ndarray) -> np.ndarray:
        return np.asarray(true_rewards, dtype=np.float32)


class ConstantReward:
    """The same reward at every step: a control showing what termination alone teaches."""

    name = "constant"

    def __init__(self, value: float = 1.0):
        self.value = float(value)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, true_rewards: np.ndarray) -> np.ndarray:
        return np.full(len(obs), self.value, dtype=np.float32)


class LearnedReward:
    """The reward model's prediction; the true rewards passed in are ignored."""

    name = "learned"

    def __init__(self, model: RewardModel):
        self.model = model

    def __call__(self, obs: np.ndarray, actions: np.ndarray, true_rewards: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, actions)


def true_reward_correlation(rewards: np.ndarray, true_rewards: np.ndarray) -> float | None:
    """Pearson correlation of a source's rewards with the true ones over the same
    transitions (any matching shapes); None when either is constant."""
    a = np.asarray(rewards, dtype=np.float64).ravel()
    b = np.asarray(true_rewards, dtype=np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
