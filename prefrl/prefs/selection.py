"""Choosing which pairs of clips to ask about.

- ``random``: uniformly random pairs of distinct recent clips (the paper's baseline).
- ``disagreement``: sample ``oversample`` times more random candidate pairs than needed
  and ask about those on which the ensemble members disagree most: the highest
  variance across members of the predicted probability that the left clip is preferred.
  It never looks at the true reward. (The paper found it sometimes hurts; measure both.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, get_args

import numpy as np

from prefrl.prefs.clips import Clip

Selection = Literal["random", "disagreement"]
SELECTIONS: tuple[str, ...] = get_args(Selection)
"""the ways pairs are chosen (``--selection``)"""


class PreferenceModel(Protocol):
    """What disagreement selection needs of a model (:class:`prefrl.reward.RewardModel` is one)."""

    version: int
    """0 until the model has been trained"""

    def preference_probs(
        self, left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Each member's P(left preferred), ``(M, P)``, for ``(obs (P, L, ...), actions (P, L, ...))``."""
        ...


def random_pairs(num_clips: int, num_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``(num_pairs, 2)`` indices of distinct clips, uniformly at random."""
    if num_clips < 2:
        raise ValueError(f"need at least 2 clips to make a pair, have {num_clips}")
    first = rng.integers(num_clips, size=num_pairs)
    # an offset in [1, n-1] guarantees the second index differs from the first
    second = (first + rng.integers(1, num_clips, size=num_pairs)) % num_clips
    return np.stack([first, second], axis=1)


def disagreement_scores(model: PreferenceModel, clips: Sequence[Clip], pairs: np.ndarray) -> np.ndarray:
    """Variance across members of P(left preferred), one score per pair ``(P,)``."""
    obs = np.stack([c.obs for c in clips])
    actions = np.stack([c.actions for c in clips])
    left = (obs[pairs[:, 0]], actions[pairs[:, 0]])
    right = (obs[pairs[:, 1]], actions[pairs[:, 1]])
    return model.preference_probs(left, right).var(axis=0)


def select_pairs(
    clips: Sequence[Clip],
    num_pairs: int,
    rng: np.random.Generator,
    selection: str = "random",
    model: PreferenceModel | None = None,
    oversample: int = 10,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pick ``num_pairs`` pairs of ``clips``; returns ``(pairs (P, 2), scores (P,) or None)``.

    ``disagreement`` falls back to ``random`` until a trained model exists (version 0),
    and always returns pairs in decreasing order of disagreement.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, not {selection!r}")
    if selection == "random" or model is None or model.version == 0:
        return random_pairs(len(clips), num_pairs, rng), None
    candidates = random_pairs(len(clips), num_pairs * oversample, rng)
    scores = disagreement_scores(model, clips, candidates)
    order = np.argsort(-scores, kind="stable")[:num_pairs]
    return candidates[order], scores[order]
