"""The records a preference store hands out: a :class:`Query` (a pair put to a labeler),
a :class:`Label` (an answered query) and a :class:`SetAsideReport` (what setting damaged
clips aside found and did). Import them from :mod:`prefrl.prefs.store` or from here."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefrl.prefs.clips import Answer


@dataclass(frozen=True)
class SetAsideReport:
    """What :meth:`~prefrl.prefs.store.PreferenceStore.set_aside_damaged` found and did.

    Attributes:
        clips_checked: clips read and checked.
        damaged_clips: ids of the damaged clips, in the order they were stored.
        queries_set_aside: queries set aside now (0 when repeated).
        answers_set_aside: of those, the answered ones (no longer counted as answered).
        total_set_aside: queries set aside in the store, now and before.
        answered: answers still counted (:meth:`~prefrl.prefs.store.PreferenceStore.num_answered`).
    """

    clips_checked: int
    damaged_clips: tuple[str, ...]
    queries_set_aside: int
    answers_set_aside: int
    total_set_aside: int
    answered: int


@dataclass(frozen=True)
class Query:
    """A pair of clips put to a labeler.

    Attributes:
        query_id: the store's id of the query (increasing in creation order).
        left_clip_id, right_clip_id: the clips shown on the left and on the right.
        created_at: Unix time (s) the query was made.
        agent_step: the agent's env-step count when the query was made.
        oracle: who the query was meant for (e.g. ``"human"``, ``"synthetic"``).
        selection: how the pair was chosen (e.g. ``"random"``, ``"disagreement"``).
        score: the selection's score of the pair (e.g. ensemble disagreement), if any.
    """

    query_id: int
    left_clip_id: str
    right_clip_id: str
    created_at: float
    agent_step: int
    oracle: str
    selection: str
    score: float | None


@dataclass(frozen=True)
class Label:
    """An answered query.

    Attributes:
        query_id, left_clip_id, right_clip_id: as in :class:`Query`.
        answer: what the labeler said.
        mu: probability that the left clip is preferred (``answer.mu``: 1.0, 0.0, 0.5, or
            None for answers that are not trained on).
        agent_step: the agent's env-step count when the query was made.
    """

    query_id: int
    left_clip_id: str
    right_clip_id: str
    answer: Answer
    mu: float | None = field(init=False)
    agent_step: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", self.answer.mu)
