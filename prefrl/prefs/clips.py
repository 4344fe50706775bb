"""Clips: short stretches of one episode, the things people (and oracles) compare.

A :class:`Clip` is plain data (numpy arrays and numbers), so it crosses process
boundaries, goes into the preference store and can be exported as ``.npz``.
:class:`ClipCutter` cuts clips out of the agent's rollouts, never across an episode
boundary, carrying partial clips over from one rollout to the next.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from dataclasses import dataclass, field

import numpy as np


class Answer(enum.StrEnum):
    """What a person or oracle said about a pair (left clip, right clip)."""

    LEFT = "left"  # the left clip is better
    RIGHT = "right"  # the right clip is better
    EQUAL = "equal"  # equally good
    CANT_TELL = "cant_tell"  # incomparable: kept for audit, not used for training
    SKIPPED = "skipped"  # no answer given (e.g. B-Pref's skip teacher): not used for training

    @property
    def mu(self) -> float | None:
        """Probability that the left clip is preferred, as a training target; None = not trained on."""
        return _MU[self]


_MU = {Answer.LEFT: 1.0, Answer.RIGHT: 0.0, Answer.EQUAL: 0.5, Answer.CANT_TELL: None, Answer.SKIPPED: None}


def new_clip_id() -> str:
    return uuid.uuid4().hex


@dataclass(eq=False)  # arrays inside: compare clips by clip_id, not ==
class Clip:
    """``length`` consecutive steps of one episode.

    Attributes:
        obs: ``(L, *obs_shape)`` observations before each action (raw, unnormalised).
        actions: ``(L, *action_shape)`` actions as sent to the env.
        true_rewards: ``(L,)`` the env's reward; for oracles and evaluation only.
        snapshots: ``(L, S)`` simulator states that render ``obs`` (None if not captured).
        env_id: the env the clip comes from.
        agent_step: the agent's env-step count when the clip was cut.
        episode_step: index of the clip's first step within its episode.
        clip_id: a unique id (hex uuid).
    """

    obs: np.ndarray
    actions: np.ndarray
    true_rewards: np.ndarray
    snapshots: np.ndarray | None
    env_id: str
    agent_step: int = 0
    episode_step: int = 0
    clip_id: str = field(default_factory=new_clip_id)

    @property
    def length(self) -> int:
        return len(self.true_rewards)

    @property
    def true_return(self) -> float:
        return float(np.sum(self.true_rewards, dtype=np.float64))


class ClipCutter:
    """Cuts non-overlapping clips of ``clip_length`` steps from rollouts, per env.

    ``cut(obs, actions, true_rewards, episode_starts, snapshots, agent_step)`` takes one
    rollout's arrays shaped ``(T, N, ...)`` and returns the clips completed in it. A clip
    may begin in one rollout and end in the next; it never spans two episodes (the
    unfinished part of an episode shorter than a clip is dropped).
    """

    def __init__(self, env_id: str, clip_length: int, num_envs: int):
        if clip_length < 1:
            raise ValueError(f"clip_length must be >= 1, got {clip_length}")
        self.env_id = env_id
        self.clip_length = clip_length
        # per env: (arrays of the partial clip, episode_step of its first transition)
        self._partial: list[tuple[list[np.ndarray | None], int] | None] = [None] * num_envs
        self._episode_step = np.zeros(num_envs, dtype=np.int64)

    def cut(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        true_rewards: np.ndarray,
        episode_starts: np.ndarray,
        snapshots: np.ndarray | None,
        agent_step: int,
    ) -> list[Clip]:
        """Raises:
        ValueError: a true reward is not a number (NaN or infinite): clips are compared
            by their true rewards, and the store keeps only numbers.
        """
        T, N = true_rewards.shape
        bad = np.flatnonzero(~np.isfinite(true_rewards).all(axis=1))
        if len(bad):
            t = int(bad[0])
            raise ValueError(
                f"{self.env_id} gave a reward of {true_rewards[t][~np.isfinite(true_rewards[t])][0]} in the "
                f"rollout that ended at agent step {agent_step}: clips are compared by their true rewards, which must be "
                "numbers; fix the env's reward (or the task's behaviour_reward)"
            )
        clips: list[Clip] = []
        for i in range(N):
            starts = np.flatnonzero(episode_starts[:, i])
            bounds = [0, *[s for s in starts if s > 0], T]
            for a, b in itertools.pairwise(bounds):
                if episode_starts[a, i]:
                    self._partial[i] = None
                    self._episode_step[i] = 0
                cols: list[np.ndarray | None] = [obs[a:b, i], actions[a:b, i], true_rewards[a:b, i]]
                cols.append(None if snapshots is None else snapshots[a:b, i])
                clips += self._extend(i, cols, agent_step)
        return clips

    def _extend(self, i: int, cols: list[np.ndarray | None], agent_step: int) -> list[Clip]:
        partial = self._partial[i]
        first_step = int(self._episode_step[i])
        if partial is not None:
            prev, first_step = partial
            cols = [
                None if p is None or c is None else np.concatenate([p, c])
                for p, c in zip(prev, cols, strict=True)
            ]
        length = len(cols[2])  # type: ignore[arg-type]
        self._episode_step[i] = first_step + length
        out = []
        L = self.clip_length
        n_full = length // L
        for k in range(n_full):
            sl = slice(k * L, (k + 1) * L)
            o, a, r, s = (None if c is None else c[sl].copy() for c in cols)
            assert o is not None and a is not None and r is not None
            out.append(Clip(o, a, r, s, self.env_id, agent_step, first_step + k * L))
        rest = length - n_full * L
        if rest:
            self._partial[i] = (
                [None if c is None else c[n_full * L :].copy() for c in cols],
                first_step + n_full * L,
            )
        else:
            self._partial[i] = None
        return out
