"""Interfaces between the layers, on the ground floor: it imports nothing from prefrl.

A layer above implements them (:mod:`prefrl.reward.sources`), a layer beside or below
takes them (:mod:`prefrl.agent.ppo` learns from any reward source), so neither has to
import the other.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RewardSource(Protocol):
    """What the agent learns from: a batch reward function.

    ``source(obs[B, *obs_shape], actions[B, *action_shape], true_rewards[B]) -> rewards[B]``.
    The true rewards are passed so that baselines can use them; a learned source must
    ignore them (the agent then never sees the true reward).
    """

    name: str

    def __call__(self, obs: np.ndarray, actions: np.ndarray, true_rewards: np.ndarray) -> np.ndarray: ...
