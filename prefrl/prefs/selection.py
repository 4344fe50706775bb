"""Choosing which pairs of clips to ask about.

- ``random``: uniformly random pairs of distinct recent clips (the paper's baseline).
- ``disagreement``: sample ``oversample`` times more random candidate pairs than needed
  and ask about those on which the ensemble members disagree most: the highest
  variance across members of the predicted probability that the left clip is preferred.
  It never looks at the true reward. (The paper found it sometimes hurts; measure both.)
- ``diverse``: for tasks whose answers are mostly ties (two clips that never reach a
  sparse goal are equally good). Of ``oversample`` times more random candidate pairs it
  keeps the twice as many as needed whose two clips lie farthest apart in state space, then picks pairs
  that cover that space, greedily, like B-Pref's k-center selection (Lee et al. 2021):
  each next pair is the one farthest from every pair already picked. Clips are compared
  by a summary of their observations (per-dimension mean, minimum and maximum, each
  scaled by its spread over the candidates). It needs no model.

Every way draws from the pairs not asked before (``asked``, the clip ids of the store's
queries, either way round) and never the same pair twice at once: a pair asked again
costs a label and teaches nothing new.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, Protocol, get_args

import numpy as np

from prefrl.prefs.clips import Clip

Selection = Literal["random", "disagreement", "diverse"]
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


def unasked_pairs(clips: Sequence[Clip], asked: Collection[tuple[str, str]] = ()) -> np.ndarray:
    """``(P, 2)`` indices ``i < j`` of every pair of distinct ``clips`` whose clip ids are
    not a pair of ``asked`` (either way round), in index order."""
    index = {clip.clip_id: k for k, clip in enumerate(clips)}
    fresh = np.triu(np.ones((len(clips), len(clips)), dtype=bool), k=1)
    for a, b in asked:
        i, j = index.get(a), index.get(b)
        if i is not None and j is not None:
            fresh[min(i, j), max(i, j)] = False
    return np.argwhere(fresh)


def random_pairs(fresh: np.ndarray, num_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``min(num_pairs, P)`` of the pairs ``fresh`` ``(P, 2)``, uniformly at random without
    repeats, each shown either way round at random."""
    picked = fresh[rng.choice(len(fresh), size=min(num_pairs, len(fresh)), replace=False)]
    swap = rng.random(len(picked)) < 0.5
    picked[swap] = picked[swap][:, ::-1]
    return picked


def disagreement_scores(model: PreferenceModel, clips: Sequence[Clip], pairs: np.ndarray) -> np.ndarray:
    """Variance across members of P(left preferred), one score per pair ``(P,)``."""
    obs = np.stack([c.obs for c in clips])
    actions = np.stack([c.actions for c in clips])
    left = (obs[pairs[:, 0]], actions[pairs[:, 0]])
    right = (obs[pairs[:, 1]], actions[pairs[:, 1]])
    return model.preference_probs(left, right).var(axis=0)


def clip_features(clips: Sequence[Clip]) -> np.ndarray:
    """``(C, 3 * D)`` per-dimension mean, minimum and maximum of each clip's observations,
    each column divided by its standard deviation over the clips (a constant column by 1)."""
    obs = np.stack([np.asarray(c.obs, dtype=np.float64).reshape(c.length, -1) for c in clips])
    features = np.concatenate([obs.mean(axis=1), obs.min(axis=1), obs.max(axis=1)], axis=1)
    scale = features.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return features / scale


def diverse_pairs(
    features: np.ndarray, candidates: np.ndarray, num_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """``num_pairs`` of ``candidates`` ``(P, 2)`` (clip indices into ``features``) that are
    far apart within and spread out among themselves; returns ``(pairs, within-pair
    distances)`` in the order picked.

    The ``2 * num_pairs`` candidates with the largest distance between their two clips
    are kept; the first pick is the farthest-apart pair, each next one
    the kept pair whose distance to the nearest pair already picked is largest (k-center
    greedy). A pair is the point ``(f_a + f_b, |f_a - f_b|)``, the same either way round.
    """
    left, right = features[candidates[:, 0]], features[candidates[:, 1]]
    within = np.linalg.norm(left - right, axis=1)
    keep = 2 * num_pairs
    kept = np.argsort(-within, kind="stable")[:keep]
    points = np.concatenate([left + right, np.abs(left - right)], axis=1)[kept]
    chosen = [0]  # kept[0]: the farthest-apart pair
    nearest = np.linalg.norm(points - points[0], axis=1)
    for _ in range(1, min(num_pairs, len(kept))):
        nearest[chosen] = -1.0
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
    picked = kept[np.array(chosen)]
    return candidates[picked], within[picked]


def select_pairs(
    clips: Sequence[Clip],
    num_pairs: int,
    rng: np.random.Generator,
    selection: str = "random",
    model: PreferenceModel | None = None,
    oversample: int = 10,
    asked: Collection[tuple[str, str]] = (),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pick up to ``num_pairs`` pairs of ``clips`` that are not in ``asked`` (clip ids);
    returns ``(pairs (P, 2), scores (P,) or None)``, fewer pairs when fewer are left.

    ``disagreement`` falls back to ``random`` until a trained model exists (version 0),
    and always returns pairs in decreasing order of disagreement. ``diverse`` scores
    each pair by the distance between its clips' summaries.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, not {selection!r}")
    fresh = unasked_pairs(clips, asked)
    if len(fresh) == 0 or num_pairs <= 0:
        return np.zeros((0, 2), dtype=np.int64), None
    if selection == "diverse":
        candidates = random_pairs(fresh, num_pairs * oversample, rng)
        return diverse_pairs(clip_features(clips), candidates, num_pairs)
    if selection == "random" or model is None or model.version == 0:
        return random_pairs(fresh, num_pairs, rng), None
    candidates = random_pairs(fresh, num_pairs * oversample, rng)
    scores = disagreement_scores(model, clips, candidates)
    order = np.argsort(-scores, kind="stable")[:num_pairs]
    return candidates[order], scores[order]
