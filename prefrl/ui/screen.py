"""What the labelling session and the window pass each other, in plain terms (no pygame).

Inputs go in: an :class:`~prefrl.prefs.clips.Answer` or a :class:`Control` (together
:data:`Input`); the :class:`Screen` record of what to show comes out; observers
(benchmarks, tests, scripted labelers) get a :class:`LabelEvent` for each thing the window
did. The session (:mod:`prefrl.ui.session`) reads inputs and makes screens, the view
(:mod:`prefrl.ui.view`) makes inputs and draws screens.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from prefrl.prefs.clips import Answer


class Control(enum.Enum):
    """Inputs that are not answers."""

    REPLAY = "replay"
    """play both clips from the start"""
    PAUSE = "pause"
    """pause, or play on"""
    QUIT = "quit"
    """stop labelling (the pair on screen stays pending)"""
    UNDO = "undo"
    """take back the last answer given in this window: the query is asked again"""


Input = Answer | Control


@dataclass(frozen=True)
class LabelEvent:
    """Something the window did, for observers (benchmarks, tests, scripted labelers).

    Attributes:
        kind: ``"shown"`` (a pair is on screen: after the display flip), ``"open"`` (the
            pair has been watched long enough: answers count from now), ``"answered"``
            (an answer was committed to the store) or ``"undone"`` (an answer was taken
            back; the query is pending again).
        query_id: the query shown or answered.
        time: ``time.perf_counter()`` when it happened.
        ready: rendered pairs waiting besides the one on screen; for ``"answered"``,
            as the key was handled (before the next pair was taken).
        answer: the answer given (``"answered"``) or taken back (``"undone"``).
        key_time: ``time.perf_counter()`` when the key was handled (``"answered"`` only).
        render_s: seconds the renderer spent on the left and the right clip (``"shown"``).
    """

    kind: str
    query_id: int
    time: float
    ready: int
    answer: Answer | None = None
    key_time: float | None = None
    render_s: tuple[float, float] | None = None


EventSink = Callable[[LabelEvent], None]


@dataclass(frozen=True)
class Screen:
    """What to show at one moment: the session's output, in plain terms.

    Attributes:
        question: the task's question, above the clips.
        status: the status line (:func:`~prefrl.ui.status_line.status_line`).
        toast: a short note under it ("Saved: left is better"), or None.
        query_id: the query on screen (None: no pair).
        frames: the left and the right frame to show now, ``(H, W, 3)`` uint8 (None: no pair).
        frame_index: their indices in their clips.
        played: share of the pair played, for the progress bars.
        paused: playback is paused.
        presented: the pair has been on screen
            (:meth:`~prefrl.ui.session.LabelingSession.presented`); a pair just taken is
            not yet, and answers wait for it.
        answers_open: the pair has been on screen long enough (the minimum viewing time):
            answer keys count.
        view_progress: share of the minimum viewing time watched (1 once answers are open).
        waiting: in place of the clips, what the window waits for (or why it is done).
        finished: labelling is over: the run has nothing more to ask (the message says so).
        next_change: ``perf_counter`` time when this record changes by the clock alone
            (the next frame, the toast's end; ``inf``: not by the clock).
    """

    question: str
    status: str
    toast: str | None
    query_id: int | None
    frames: tuple[np.ndarray, np.ndarray] | None
    frame_index: tuple[int, int]
    played: float
    paused: bool
    presented: bool
    waiting: str | None
    finished: str | None
    next_change: float
    answers_open: bool = False
    view_progress: float = 0.0
