"""Exploration while the answers say nothing: a state-entropy reward, faded out by answers.

On a sparse task (MountainCar: -1 per step until the flag) every clip of a policy that
never reaches the goal has the same true return, so every answer about them is "equally
good" and the reward model learns nothing to lead the agent there. PEBBLE (Lee et al.
2021) lets the agent explore first with an intrinsic reward that maximises the entropy
of the states it visits, estimated from k-nearest-neighbour distances (Singh et al.
2003; APT, Liu & Abbeel 2021):

    r_int(s) = log(1 + ||s - s_k||),   s_k the k-th nearest neighbour of s

in an observation space normalised per dimension. :class:`ExplorationReward` mixes it
with the learned reward and hands the agent ``(1 - w) * learned + w * intrinsic``; the
weight ``w`` (:func:`exploration_weight`) falls from 1 to 0 as informative answers
(left or right better, not ties) arrive, so a run whose answers carry information from
the start is nearly unaffected, and one whose answers are all ties keeps exploring.
"""

from __future__ import annotations

import numpy as np

from prefrl.interfaces import RewardSource

__all__ = ["ExplorationReward", "KnnStateEntropy", "exploration_weight", "knn_entropy_reward"]


def knn_entropy_reward(obs: np.ndarray, reference: np.ndarray, k: int, scale: np.ndarray) -> np.ndarray:
    """``log(1 + d_k)`` for each row of ``obs`` ``(B, D)``: ``d_k`` is the Euclidean distance,
    after dividing every dimension by ``scale`` ``(D,)``, to its k-th nearest row of
    ``reference`` ``(R, D)`` (R >= k). A row of ``obs`` that also appears in ``reference``
    counts itself as a neighbour at distance 0, so pass ``k + 1`` to skip it."""
    if len(reference) < k:
        raise ValueError(f"need at least k={k} reference points, have {len(reference)}")
    a = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1) / scale
    b = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1) / scale
    # one dimension at a time: exact (no |a|^2 + |b|^2 - 2ab cancellation) and no BLAS threads
    sq = np.zeros((len(a), len(b)), dtype=np.float32)
    for d in range(a.shape[1]):
        sq += np.square(a[:, d, None] - b[None, :, d])
    kth = np.partition(sq, k - 1, axis=1)[:, k - 1]
    return np.log1p(np.sqrt(kth)).astype(np.float32)


class KnnStateEntropy:
    """The state-entropy reward of a batch against the batch and the states seen recently.

    ``reward(obs (B, *obs_shape)) -> (B,)``: each state's k-th nearest neighbour is sought
    among the batch itself (not counting the state) and up to ``capacity`` states of
    earlier batches (a uniform subsample of each, kept first-in first-out); dimensions
    are scaled by their standard deviation over those states, so position and velocity
    count alike. The batch then joins the memory.
    """

    def __init__(self, k: int = 5, capacity: int = 2048, keep_per_batch: int = 256, seed: int = 0):
        if k < 1 or capacity < 1 or keep_per_batch < 1:
            raise ValueError("k, capacity and keep_per_batch must be at least 1")
        self.k, self.capacity, self.keep_per_batch = k, capacity, keep_per_batch
        self.memory: np.ndarray | None = None
        self.rng = np.random.default_rng([seed, 11])

    def reward(self, obs: np.ndarray) -> np.ndarray:
        batch = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        reference = batch if self.memory is None else np.concatenate([self.memory, batch])
        k = min(self.k + 1, len(reference))  # +1: each state of the batch is its own nearest
        scale = reference.std(axis=0)
        scale[scale < 1e-8] = 1.0  # a dimension that never changed adds no distance
        scale = scale.astype(np.float32)
        rewards = knn_entropy_reward(batch, reference, k, scale)
        keep = batch
        if len(batch) > self.keep_per_batch:
            keep = batch[self.rng.choice(len(batch), self.keep_per_batch, replace=False)]
        memory = keep if self.memory is None else np.concatenate([self.memory, keep])
        self.memory = memory[-self.capacity :]
        return rewards


def exploration_weight(informative: int, fade_labels: int) -> float:
    """The intrinsic reward's share: 1 with no informative answer, falling linearly to 0
    once ``fade_labels`` answers have said one clip is better (ties do not count);
    always 0 with ``fade_labels`` 0 (exploration off)."""
    if fade_labels <= 0:
        return 0.0
    return max(0.0, 1.0 - informative / fade_labels)


class ExplorationReward:
    """``(1 - weight) * learned + weight * intrinsic``, the intrinsic reward standardised
    over the batch (mean 0, std 1; the learned reward is normalised likewise by the
    model). Without a learned reward (``learned`` None: no model yet) it is the intrinsic
    reward alone. The true rewards passed in are ignored.

    Every call adds its batch to the entropy estimator's memory, so call it once per
    rollout (PPO's ``train`` does).
    """

    name = "exploration"

    def __init__(self, learned: RewardSource | None, entropy: KnnStateEntropy, weight: float):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        self.learned, self.entropy = learned, entropy
        self.weight = 1.0 if learned is None else float(weight)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, true_rewards: np.ndarray) -> np.ndarray:
        intrinsic = self.entropy.reward(obs)
        intrinsic = (intrinsic - intrinsic.mean()) / (intrinsic.std() + 1e-8)
        if self.learned is None:
            return intrinsic.astype(np.float32)
        learned = np.asarray(self.learned(obs, actions, true_rewards), dtype=np.float32)
        return ((1.0 - self.weight) * learned + self.weight * intrinsic).astype(np.float32)
