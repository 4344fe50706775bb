"""Training the reward model on preferences (Bradley-Terry over clip return sums).

For a pair of clips (left, right) with predicted return sums ``R_l``, ``R_r`` (sums of the
member's per-step rewards over the clip), the modelled probability that a person
prefers the left one is ``P = (1 - p) * sigmoid(R_l - R_r) + p / 2`` with ``p = 0.1``:
the paper's allowance for answers given at random. The loss is the cross-entropy of
``P`` against the label ``mu`` (1 left, 0 right, 0.5 equally good).

Bootstrap: each member trains on its own resample of the labels. Labels arrive one by
one, so the resample is drawn as it grows (the Poisson bootstrap): a label appears
``Poisson(1)`` times in a member's data, the streaming equivalent of drawing ``|D|``
labels with replacement. The labels a member never drew (a fraction ``1/e`` on average,
exactly as in a bootstrap of ``|D|`` draws) are that member's validation set: that member
never trains on them, so they give an honest validation loss and accuracy. A label no
member drew (``e^-M`` of them for ``M`` members, 5% of a 3-member ensemble's) goes to one
member, so that every label is trained on; a single member keeps its ``1/e`` for
validation, which it needs to adapt its L2.

Regularisation: each member's L2 weight is adapted after every round to keep its
validation loss between 1.1x and 1.5x its training loss (:func:`adapt_l2`), once its
validation set is large enough to tell (``l2_min_validation`` labels).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.prefs.clips import Clip
from prefrl.prefs.store import Label
from prefrl.reward.model import RewardModel
from prefrl.utils.checkpoint import load_checkpoint, save_checkpoint


def preference_loss(
    r_left: torch.Tensor, r_right: torch.Tensor, mu: torch.Tensor, random_answer_prob: float
) -> torch.Tensor:
    """Cross-entropy per pair (no reduction).

    Args:
        r_left, r_right: predicted return sums, any matching shape (e.g. ``(M, K)``).
        mu: the label, P(left preferred), broadcastable to that shape.
        random_answer_prob: chance that an answer was random (0.1 in the paper).
    """
    p = random_answer_prob
    p_left = (1.0 - p) * torch.sigmoid(r_left - r_right) + p / 2
    p_right = (1.0 - p) * torch.sigmoid(r_right - r_left) + p / 2
    return -(mu * torch.log(p_left) + (1.0 - mu) * torch.log(p_right))


def adapt_l2(
    l2: float, train_loss: float, val_loss: float, low: float = 1.1, high: float = 1.5, factor: float = 1.5
) -> float:
    """The paper's rule: more L2 when validation loss exceeds ``high`` x training loss,
    less when it is under ``low`` x training loss, unchanged in between."""
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        return l2
    if val_loss > high * train_loss:
        return min(l2 * factor, 10.0)
    if val_loss < low * train_loss:
        return max(l2 / factor, 1e-7)
    return l2


def bootstrap_counts(seed: int, label_key: int, members: int) -> np.ndarray:
    """How often each member draws a label: ``Poisson(1)`` per member, ``(members,)`` int;
    a label that no member of several drew is drawn once by one of them.

    Deterministic in ``(seed, label_key)``, so a restarted trainer rebuilds the same
    resamples (and validation sets) from the store alone.
    """
    rng = np.random.default_rng([seed, label_key])
    counts = rng.poisson(1.0, size=members)
    if members > 1 and not counts.any():
        counts[rng.integers(members)] = 1
    return counts


@dataclass
class _Pairs:
    left: list[np.ndarray] = field(default_factory=list)  # unnormalised features (L, ...)
    right: list[np.ndarray] = field(default_factory=list)
    mu: list[float] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)  # (M,)
    keys: list[int] = field(default_factory=list)
    true_returns: list[tuple[float, float]] = field(default_factory=list)  # for diagnostics only


class _Side:
    """One side (left or right) of every pair, indexable by a batch of pair indices into
    ``(x (B, L, ...), mask (B, L))``: features zero-padded to the longest clip, with mask
    1 for real steps. Vector features are padded for all pairs at once; image frames only
    for the pairs a batch takes, since a padded copy of every label's frames would double
    the trainer's memory (1.4 MB per label of 84x84x4 clips of 25 steps)."""

    def __init__(self, feats: list[np.ndarray], lazy: bool):
        self.feats = list(feats)
        self.length = max(len(f) for f in feats)
        self.padded = None if lazy else self._pad(self.feats)

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        if self.padded is not None:
            x, mask = self.padded
            return x[rows], mask[rows]
        picked = range(len(self.feats))[rows] if isinstance(rows, slice) else rows.tolist()
        return self._pad([self.feats[i] for i in picked])

    def _pad(self, feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        out = np.zeros((len(feats), self.length, *feats[0].shape[1:]), dtype=feats[0].dtype)
        mask = np.zeros((len(feats), self.length), dtype=np.float32)
        for k, f in enumerate(feats):
            out[k, : len(f)] = f
            mask[k, : len(f)] = 1.0
        return torch.from_numpy(out), torch.from_numpy(mask)


@dataclass
class _Data:
    left: _Side  # unnormalised features of each pair's clips
    right: _Side
    mu: torch.Tensor  # (K,)
    counts: torch.Tensor  # (K, M) bootstrap multiplicities


class PreferenceTrainer:
    """Trains a :class:`RewardModel` on labelled pairs, one round at a time.

    ``add(key, left, right, mu)`` adds a label (``key`` unique, e.g. the store's query id),
    ``remove(key)`` drops one; ``train_round()`` runs the configured passes and returns log values.
    """

    def __init__(self, model: RewardModel, seed: int = 0):
        self.model = model
        self.cfg = model.config
        self.seed = seed
        self.members = model.ensemble_size
        self.l2 = np.full(self.members, self.cfg.l2_init, dtype=np.float64)
        self.optimizer = torch.optim.Adam(model.net.parameters(), lr=self.cfg.learning_rate)
        self.pairs = _Pairs()
        self._rng = torch.Generator().manual_seed(seed)
        self.rounds = 0

    @property
    def num_labels(self) -> int:
        return len(self.pairs.mu)

    def add(self, key: int, left: Clip, right: Clip, mu: float) -> None:
        """Add one label: ``mu`` = P(left preferred) (1, 0 or 0.5)."""
        self.pairs.left.append(self.model.features(left.obs, left.actions))
        self.pairs.right.append(self.model.features(right.obs, right.actions))
        self.pairs.mu.append(float(mu))
        self.pairs.counts.append(bootstrap_counts(self.seed, key, self.members))
        self.pairs.keys.append(key)
        self.pairs.true_returns.append((left.true_return, right.true_return))

    def add_labels(self, labels: Iterable[Label], clips: Mapping[str, Clip], key_offset: int = 0) -> None:
        """Add a store's trainable ``labels`` (``mu`` not None), their clips looked up in
        ``clips``; each label's key is ``key_offset`` plus its query id."""
        for label in labels:
            assert label.mu is not None
            self.add(
                key_offset + label.query_id, clips[label.left_clip_id], clips[label.right_clip_id], label.mu
            )

    def remove(self, key: int) -> bool:
        """Drop the label added with ``key`` (an answer taken back); returns whether there
        was one. Its bootstrap draws go with it: no member trains or validates on it."""
        try:
            index = self.pairs.keys.index(key)
        except ValueError:
            return False
        pairs = self.pairs
        for column in (pairs.left, pairs.right, pairs.mu, pairs.counts, pairs.keys, pairs.true_returns):
            del column[index]
        return True

    def recent_features(self, num_pairs: int = 100) -> np.ndarray:
        """Unnormalised features of the clips of the last ``num_pairs`` labels, ``(B, ...)``."""
        return np.concatenate(self.pairs.left[-num_pairs:] + self.pairs.right[-num_pairs:])

    def recent_return_correlation(self, num_pairs: int = 100) -> float:
        """Pearson correlation between predicted and true clip returns over the clips of
        the last ``num_pairs`` labels (a diagnostic: training never sees true returns)."""
        feats = self.pairs.left[-num_pairs:] + self.pairs.right[-num_pairs:]
        true = [r[0] for r in self.pairs.true_returns[-num_pairs:]] + [
            r[1] for r in self.pairs.true_returns[-num_pairs:]
        ]
        predicted = [float(self.model.predict_features(f).sum()) for f in feats]
        if len(true) < 3 or np.std(true) == 0 or np.std(predicted) == 0:
            return float("nan")
        return float(np.corrcoef(predicted, true)[0, 1])

    def _tensors(self) -> _Data:
        """All labels, ready to batch (refits the input normalisation first)."""
        pairs = self.pairs
        self.model.fit_input_normalization(pairs.left + pairs.right)
        return _Data(
            left=_Side(pairs.left, lazy=self.model.image),
            right=_Side(pairs.right, lazy=self.model.image),
            mu=torch.tensor(pairs.mu, dtype=torch.float32),
            counts=torch.from_numpy(np.stack(pairs.counts).astype(np.float32)),
        )

    def _returns(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted return sums ``(M, K)`` of clips ``x (K, L, ...)``."""
        k, length = x.shape[:2]
        per_step = self.model.net(self.model.inputs(x.reshape(k * length, *x.shape[2:])))
        return (per_step.reshape(self.members, k, length) * mask).sum(-1)

    def _all_returns(self, side: _Side) -> torch.Tensor:
        """:meth:`_returns` over every clip of ``side``, a bounded number of steps at a time."""
        clips = max(1, self.model.FORWARD_CHUNK // side.length) if self.model.image else len(side)
        return torch.cat([self._returns(*side[i : i + clips]) for i in range(0, len(side), clips)], 1)

    def train_round(self) -> dict[str, float]:
        """Train every member on its resample; adapt L2; return ``reward/...`` log values."""
        if self.num_labels == 0:
            return {}
        cfg = self.cfg
        data = self._tensors()
        n = len(data.mu)
        batch = min(cfg.batch_size, n)
        epochs = cfg.epochs_per_round * (cfg.first_round_multiplier if self.rounds == 0 else 1)
        steps = max(cfg.min_steps_per_round, epochs * math.ceil(n / batch))
        l2 = torch.tensor(self.l2, dtype=torch.float32)
        net = self.model.net
        net.train()
        for _ in range(steps):
            idx = torch.randint(n, (batch,), generator=self._rng)
            w = data.counts[idx].T  # (M, B): bootstrap multiplicity of each sampled label
            losses = preference_loss(
                self._returns(*data.left[idx]),
                self._returns(*data.right[idx]),
                data.mu[idx],
                cfg.random_answer_prob,
            )
            member_loss = (losses * w).sum(1) / w.sum(1).clamp(min=1.0)
            loss = member_loss.sum() + (l2 * net.weight_norms()).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        net.eval()
        self.rounds += 1
        return self._evaluate(data)

    @torch.no_grad()
    def _evaluate(self, data: _Data) -> dict[str, float]:
        mu, counts = data.mu, data.counts
        r_l, r_r = self._all_returns(data.left), self._all_returns(data.right)
        losses = preference_loss(r_l, r_r, mu, self.cfg.random_answer_prob)  # (M, K)
        in_bag = counts.T > 0
        strict = mu != 0.5  # accuracy is only defined for a strict preference
        correct = ((r_l > r_r).float() == mu).float()  # (M, K)
        train_losses, val_losses, val_accs = [], [], []
        for m in range(self.members):
            tr, va = in_bag[m], ~in_bag[m]
            t_loss = float(losses[m][tr].mean()) if tr.any() else float("nan")
            v_loss = float(losses[m][va].mean()) if va.any() else float("nan")
            train_losses.append(t_loss)
            val_losses.append(v_loss)
            va_strict = va & strict
            val_accs.append(float(correct[m][va_strict].mean()) if va_strict.any() else float("nan"))
            if int(va.sum()) >= self.cfg.l2_min_validation:
                self.l2[m] = adapt_l2(float(self.l2[m]), t_loss, v_loss)
        ens_correct = (((r_l - r_r).mean(0) > 0).float() == mu).float()[strict]
        return {
            "reward/labels": float(self.num_labels),
            "reward/train_loss": _nanmean(train_losses),
            "reward/val_loss": _nanmean(val_losses),
            "reward/val_accuracy": _nanmean(val_accs),
            "reward/train_accuracy": float(ens_correct.mean()) if len(ens_correct) else float("nan"),
            "reward/l2": float(np.mean(self.l2)),
            "reward/rounds": float(self.rounds),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "l2": self.l2.copy(), "rounds": self.rounds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.l2 = np.asarray(state["l2"], dtype=np.float64)
        self.rounds = int(state["rounds"])

    def save(self, path: str | Path) -> None:
        """Write the optimiser state and regularisation strengths atomically."""
        save_checkpoint(self.state_dict(), path, "reward_trainer")

    def load(self, path: str | Path) -> None:
        """Restore what :meth:`save` wrote (loading it never runs code from the file)."""
        self.load_state_dict(load_checkpoint(path, "reward_trainer"))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
