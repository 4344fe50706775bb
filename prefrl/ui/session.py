"""The labelling session: what the labelling window does, without the window.

:class:`LabelingSession` holds the rules of labelling and none of the drawing: which
queries are pending (polled from the run's preference store), what the run is doing
(polled from its ``status.json``), which pairs are sent to the renderer ahead of the
person (the client side of :class:`~prefrl.ui.render_ahead.RenderAhead`), which pair is
on screen and which frame of each clip to show at time ``t`` (its
:class:`~prefrl.ui.playback.Playback`), the answers committed to the store, when labelling
is over, and what the status line says (:mod:`prefrl.ui.status_line`).

It takes plain inputs: an :class:`~prefrl.prefs.clips.Answer` or a
:class:`~prefrl.ui.screen.Control` (replay, pause, undo, quit) through
:meth:`LabelingSession.handle`, and the passing of time through
:meth:`LabelingSession.tick`. It gives back a plain record of what to show
(:class:`~prefrl.ui.screen.Screen`). It imports no pygame: the window
(:mod:`prefrl.ui.view`, glued by :mod:`prefrl.ui.window`) translates keys into inputs and
draws the record, and the tests drive a session without a display. Times are
``time.perf_counter()`` seconds, passed in by the caller.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prefrl.prefs.clips import Answer
from prefrl.prefs.store import BUSY_TIMEOUT_S, PreferenceStore, Query, StoreError, is_busy, is_read_only
from prefrl.rundir import resume_command
from prefrl.ui.heartbeat import WindowHeartbeat
from prefrl.ui.playback import Playback
from prefrl.ui.render_ahead import RenderedPair
from prefrl.ui.run_info import HUMAN, LabelingRun, RunState, read_state
from prefrl.ui.screen import Control, EventSink, Input, LabelEvent, Screen
from prefrl.ui.status_line import pace_line, status_line

ANSWER_TEXT = {
    Answer.LEFT: "left is better",
    Answer.RIGHT: "right is better",
    Answer.EQUAL: "equally good",
    Answer.CANT_TELL: "can't tell",
}
RENDER_AHEAD = 3
"""pairs rendered (or being rendered) beyond the one on screen"""
POLL_STORE_S = 0.2
POLL_STATUS_S = 0.5
TOAST_S = 2.5
"""how long a note under the status line ("Saved: left is better") stays"""
KEEP_FRAMES_OF = 2
"""answered pairs whose frames are kept, so that undoing them shows them again at once"""
PACE_REFRESH_S = 5.0
"""how often the labels-per-minute part of the status line is recomputed"""
WRITE_WAIT_S = 0.25
"""how long a write waits while another process holds the store's write lock; the window
stays responsive and tries again at its next tick (closing, it waits BUSY_TIMEOUT_S)"""


class Renderer(Protocol):
    """What the session needs of a renderer (:class:`~prefrl.ui.render_ahead.RenderAhead`)."""

    in_flight: set[int]

    def submit(self, query_id: int, left_snapshots: np.ndarray, right_snapshots: np.ndarray) -> None: ...

    def poll(self) -> list[RenderedPair]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Given:
    query_id: int
    answer: Answer
    key_time: float
    response_time: float
    ready: int
    pair: RenderedPair | None = None


def min_view_for(pair: RenderedPair, min_view_s: float | None) -> float:
    """Seconds ``pair`` must be on screen before an answer counts: ``min_view_s``, or by
    default (None) one full play of the shorter clip."""
    if min_view_s is not None:
        return max(0.0, min_view_s)
    return min(len(pair.left), len(pair.right)) / pair.fps


class LabelingSession:
    """One person labelling one run: pending pairs, render-ahead, playback, answers.

    Args:
        run: the run (:func:`~prefrl.ui.run_info.open_run`).
        renderer: renders pairs ahead (closed with the session).
        on_event: called with each :class:`LabelEvent`.
        max_answers: stop after this many answers (None: no limit).
        stop_with_run: labelling is over as soon as the run stops, even with queries left.
        read_state: how the run's live state is read (tests pass their own).
        min_view_s: seconds a pair must be on screen (playing) before an answer counts
            (None: one full play of the shorter clip; 0: at once). Earlier answers are
            ignored, and a note says so.
        heartbeat: the window's ``window.json`` (beaten at each :meth:`tick`, closed with
            the session); its ``sessions`` count goes into the status line.

    Drive it with :meth:`handle` (inputs), :meth:`presented` (the pair taken is on
    screen), :meth:`commit` (write the answers given) and :meth:`tick` (polls, and takes
    the next rendered pair); read it with :meth:`screen`, :attr:`closing` and
    :attr:`finished`. :meth:`close` when done.
    """

    def __init__(
        self,
        run: LabelingRun,
        renderer: Renderer,
        *,
        on_event: EventSink | None = None,
        max_answers: int | None = None,
        stop_with_run: bool = False,
        read_state: Callable[[LabelingRun], RunState] = read_state,
        min_view_s: float | None = None,
        heartbeat: WindowHeartbeat | None = None,
    ):
        self.run = run
        self.renderer: Renderer | None = renderer
        self.on_event = on_event
        self.max_answers = max_answers
        self.stop_with_run = stop_with_run
        self._read_state = read_state
        self.store: PreferenceStore | None = None
        self.pending: list[Query] = []
        """the store's unanswered queries, as many as the budget has left (the pair on screen
        included; see :meth:`_pending_in_store`)"""
        self.ready: dict[int, RenderedPair] = {}
        """rendered pairs waiting to be shown, by query id"""
        self.pair: RenderedPair | None = None
        """the pair on screen (or just taken, see :attr:`shown_at`)"""
        self.playback: Playback | None = None
        self.shown_at: float | None = None
        """when :attr:`pair` went on screen (None: taken, not on screen yet)"""
        self.answers = 0
        """answers committed by this session"""
        self.answered_total = 0
        """answers in the store, from any window"""
        self.state: RunState = read_state(run)
        self.toast: tuple[str, float] | None = None
        self._busy = ""  # why the store last refused to write an answer (busy)
        self._unwritable = False  # the store refused as read-only: trying again cannot help
        self.closing = False
        """the person quit, or ``max_answers`` answers are given: close now"""
        self.message: str | None = None
        """set by :meth:`end`: why labelling is over"""
        self.min_view_s = min_view_s
        self.opens_at: float | None = None
        """when answers to the pair on screen start to count (None: not on screen)"""
        self.heartbeat = heartbeat
        self.started_at: float | None = None
        """the first :meth:`tick`: this window's labels per minute count from here"""
        self._given: list[_Given] = []
        self._history: list[_Given] = []  # answers committed by this window, for undo
        self._first: int | None = None  # a query to show before any other (one undone)
        self._open_told = False  # the "open" event of the pair on screen was emitted
        self._pace: tuple[tuple[int, int], str] | None = None
        self._next_store_poll = -math.inf
        self._next_status_poll = -math.inf

    # -- inputs ---------------------------------------------------------------------------

    def handle(self, inputs: Iterable[Input], now: float) -> None:
        """Act on the person's inputs, in order.

        Only the first answer of a batch counts: an answer key already queued when the
        pair changed was meant for the old pair. An answer counts only once the pair has
        been watched for the minimum viewing time (:attr:`opens_at`); an earlier one is
        ignored, with a note. An answer takes the next rendered pair at once
        (:attr:`pair`, not yet presented) and is written by :meth:`commit`, so that the
        window can put the next pair on screen first.
        """
        answered = False
        self._check_open(now)
        for given in inputs:
            if given is Control.QUIT:
                self.closing = True
                return
            if isinstance(given, Answer):
                if answered or self.pair is None or self.shown_at is None:
                    continue
                if not self.answers_open(now):
                    assert self.opens_at is not None
                    self._set_toast(
                        f"Too early: watch the clips first (answers open in {self.opens_at - now:.1f} s)", now
                    )
                    continue
                self._answer(given, now)
                answered = True
            elif given is Control.UNDO:
                self._undo(now)
            elif self.playback is not None:
                if given is Control.REPLAY:
                    self.playback.restart(now)
                elif given is Control.PAUSE:
                    if self.playback.paused_at is not None and self.opens_at is not None:
                        if not self.answers_open(self.playback.paused_at):
                            self.opens_at += now - self.playback.paused_at  # paused time is not watching
                    self.playback.toggle_pause(now)

    def answers_open(self, now: float) -> bool:
        """Whether an answer to the pair on screen counts at ``now`` (watched long enough;
        time spent paused is not watching)."""
        if self.opens_at is None:
            return False
        if self.playback is not None and self.playback.paused_at is not None:
            now = min(now, self.playback.paused_at)
        return now >= self.opens_at

    def view_progress(self, now: float) -> float:
        """Share of the minimum viewing time of the pair on screen watched at ``now``."""
        if self.opens_at is None or self.pair is None:
            return 0.0
        needed = min_view_for(self.pair, self.min_view_s)
        if needed <= 0:
            return 1.0
        at = self.playback.paused_at if self.playback is not None and self.playback.paused else None
        t = now if at is None else at
        return min(1.0, max(0.0, 1.0 - (self.opens_at - t) / needed))

    def _check_open(self, now: float) -> None:
        if self.pair is not None and not self._open_told and self.answers_open(now):
            self._open_told = True
            self._emit(LabelEvent("open", self.pair.query_id, now, len(self.ready)))

    def _answer(self, answer: Answer, now: float) -> None:
        assert self.pair is not None and self.shown_at is not None
        query_id = self.pair.query_id
        self._given.append(_Given(query_id, answer, now, now - self.shown_at, len(self.ready), self.pair))
        self.pending = [q for q in self.pending if q.query_id != query_id]
        self._drop_pair()
        self._take_next(now)

    def _undo(self, now: float) -> None:
        """Take back the last answer given in this window; its pair is shown again (at once
        when its frames are still here, else once rendered again)."""
        self.commit()  # an answer given but not written yet is written, then undone
        if self._given:  # still not written (the store is busy): taken back before it is
            assert self.store is not None  # an answer needs a pair, a pair the store
            last = self._given.pop()
        elif not self._history or self.store is None:
            self._set_toast("Nothing to undo: no answer given in this window", now)
            return
        else:
            last = self._history.pop()
            try:
                self.store.undo_answer(last.query_id)
            except sqlite3.OperationalError as err:  # busy: nothing changed, try again
                self._history.append(last)
                self._set_toast(f"Not undone yet ({err}): the run's store is busy; undo again", now)
                return
            except StoreError as err:
                self._set_toast(f"Not undone: {err}", now)
                return
            self.answers -= 1
            self.answered_total = self.store.num_answered()
            self._pace = None
        self._first = last.query_id
        self.pending = self._pending_in_store()
        self._set_toast(f"Undone: {ANSWER_TEXT[last.answer]}. Answer it again", now)
        self._emit(LabelEvent("undone", last.query_id, now, len(self.ready), last.answer))
        if self.pair is not None:
            self.ready[self.pair.query_id] = self.pair  # back in line, rendered
            self._drop_pair()
        if last.pair is not None:
            self.ready[last.query_id] = last.pair
            self._take_next(now)
        elif self.renderer is not None and last.query_id not in self.renderer.in_flight:
            query = next(q for q in self.pending if q.query_id == last.query_id)
            self._submit(query)  # beyond RENDER_AHEAD: it is the next to show

    def presented(self, now: float) -> None:
        """The pair taken is on screen since ``now``: answers count once it has been
        watched for the minimum viewing time."""
        if self.pair is None or self.shown_at is not None:
            return
        self.shown_at = now
        self.opens_at = now + min_view_for(self.pair, self.min_view_s)
        self._open_told = False
        self._emit(LabelEvent("shown", self.pair.query_id, now, len(self.ready), render_s=self.pair.render_s))
        self._check_open(now)
        self._top_up()

    def commit(self) -> None:
        """Write the answers given to the store (each in its own transaction). While
        another process holds the store's write lock past its busy timeout (a run's
        process hung mid-write, a stalled network disk), the answers wait here and are
        written at a later call."""
        given, self._given = self._given, []
        for n, g in enumerate(given):
            if self.store is None:  # pragma: no cover - an answer needs a pair, a pair the store
                break
            try:
                self.store.record_answer(g.query_id, g.answer, oracle=HUMAN, response_time=g.response_time)
            except sqlite3.OperationalError as err:  # kept, tried again (or told at close)
                self._given = given[n:] + self._given
                self._busy = str(err)
                if is_read_only(err):  # this user may not write the store: nothing to wait for
                    self._unwritable = self.closing = True
                elif is_busy(err):  # another process holds the write lock
                    self._set_toast(
                        f"Not saved yet ({err}): the run's store is busy; trying again", g.key_time
                    )
                else:  # e.g. the disk is full: space may be made
                    self._set_toast(f"Not saved yet ({err}); trying again", g.key_time)
                return
            except StoreError as err:
                # e.g. answered meanwhile in another window on the same run: nothing to save.
                self._set_toast(f"Not saved: {err}", g.key_time)
                continue
            self.answers += 1
            self.answered_total += 1
            self._pace = None
            self._history.append(g)
            for k in range(max(0, len(self._history) - KEEP_FRAMES_OF)):
                # frames are large: only those of the last few answers are kept
                self._history[k] = dataclasses.replace(self._history[k], pair=None)
            self._set_toast(f"Saved: {ANSWER_TEXT[g.answer]}", g.key_time)
            self._emit(LabelEvent("answered", g.query_id, time.perf_counter(), g.ready, g.answer, g.key_time))
            if self.max_answers is not None and self.answers >= self.max_answers:
                self.closing = True

    # -- time -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Commit what is given, collect finished renders, poll the store and the run's
        status when due, and take the next rendered pair when none is on screen."""
        self.commit()
        if self.started_at is None:
            self.started_at = now
        if self.heartbeat is not None:
            self.heartbeat.beat()
        self._check_open(now)
        assert self.renderer is not None
        for pair in self.renderer.poll():
            if any(q.query_id == pair.query_id for q in self.pending):
                self.ready[pair.query_id] = pair
        if now >= self._next_status_poll:
            self._next_status_poll = now + POLL_STATUS_S
            self.state = self._read_state(self.run)
        if now >= self._next_store_poll:
            self._next_store_poll = now + POLL_STORE_S
            self._poll_store(now)
        if self.pair is None and self.message is None:
            self._take_next(now)

    def _poll_store(self, now: float) -> None:
        if self.store is None:
            if not self.run.store_path.exists():
                return  # the run has not made its store yet
            self.store = PreferenceStore(self.run.store_path, env_id=self.run.env_id)
            self.store.wait_when_busy(WRITE_WAIT_S)
        self.answered_total = self.store.num_answered()
        self.pending = self._pending_in_store()
        pending_ids = {q.query_id for q in self.pending}
        for query_id in [q for q in self.ready if q not in pending_ids]:
            del self.ready[query_id]  # answered elsewhere (another window), or past the budget
        if self.pair is not None and self.pair.query_id not in pending_ids:
            if any(q.query_id == self.pair.query_id for q in self.store.pending_queries()):
                self._set_toast(
                    f"Query {self.pair.query_id} is past the budget: all {self.budget} labels given", now
                )
            else:
                self._set_toast(f"Query {self.pair.query_id} was answered elsewhere", now)
            self._drop_pair()
        self._top_up()

    def _pending_in_store(self) -> list[Query]:
        """The store's pending queries (in a person's run, every one is theirs: also those an
        import brought from a synthetic run), less those answered here and not written yet
        (the store is busy): they are not asked again; and no more than the label budget has
        left (an import may bring more): the one on screen, taken back or being rendered
        first, then the oldest. ``answered_total`` must be the store's count (as read by
        :meth:`_poll_store`, or kept up to date since)."""
        assert self.store is not None
        given = {g.query_id for g in self._given}
        pending = [q for q in self.store.pending_queries() if q.query_id not in given]
        held = {*self.ready, *(self.renderer.in_flight if self.renderer else ())}
        if self.pair is not None:
            held.add(self.pair.query_id)
        # stable: oldest first in each part
        pending.sort(key=lambda q: (q.query_id != self._first, q.query_id not in held))
        left = self.budget - self.answered_total - len(given)
        if self._first is not None:  # taken back: asked again, even if the store holds more answers
            left = max(left, 1)
        return pending[: max(0, left)]

    def closing_note(self, now: float) -> bool:
        """Before :meth:`close`: when answers wait for a busy store, say under the status
        line that closing waits for it (up to ``BUSY_TIMEOUT_S``); returns whether it will."""
        if not self._given or self._unwritable:
            return False
        self._set_toast(
            f"Saving {len(self._given)} answer(s): waiting up to {BUSY_TIMEOUT_S:.0f} s for the run's busy store",
            now,
        )
        return True

    def _take_next(self, now: float) -> None:
        """Take the oldest rendered pair (to be presented); nothing if none is ready."""
        if not self.ready:
            return
        first, self._first = self._first, None
        self.pair = self.ready.pop(first if first in self.ready else min(self.ready))
        if first is not None and self.pair.query_id != first:
            self._first = first  # still being rendered
        self.playback = Playback((len(self.pair.left), len(self.pair.right)), self.pair.fps, now)
        self.shown_at = self.opens_at = None

    def _drop_pair(self) -> None:
        self.pair = self.playback = self.shown_at = self.opens_at = None

    def _top_up(self) -> None:
        """Send the oldest pending queries not yet rendered to the renderer, up to RENDER_AHEAD."""
        if self.store is None or self.renderer is None:
            return
        current = self.pair.query_id if self.pair is not None else None
        in_flight = self.renderer.in_flight
        room = RENDER_AHEAD - len(self.ready) - len(in_flight)
        for query in self.pending:
            if room <= 0:
                break
            qid = query.query_id
            if qid == current or qid in self.ready or qid in in_flight:
                continue
            self._submit(query)
            room -= 1

    def _submit(self, query: Query) -> None:
        assert self.store is not None and self.renderer is not None
        clips = self.store.get_clips([query.left_clip_id, query.right_clip_id])
        left, right = clips[query.left_clip_id], clips[query.right_clip_id]
        if left.snapshots is None or right.snapshots is None:
            raise ValueError(
                f"query {query.query_id}'s clips have no snapshots, so they cannot be shown; "
                "was the run's agent built without capture_snapshots?"
            )
        self.renderer.submit(query.query_id, left.snapshots, right.snapshots)

    # -- what to show ---------------------------------------------------------------------

    @property
    def budget(self) -> int:
        """The run's label budget: as its status.json says (a resume may raise it while
        this window is open), else as its config.json did when the window opened."""
        return self.state.status.labels_total or self.run.budget

    @property
    def finished(self) -> str | None:
        """Why labelling is over, as the window says it (None: it is not): the run will ask
        nothing more (or, with ``stop_with_run``, it has stopped)."""
        state = self.state
        if self.stop_with_run and state.gone:
            return f"The run stopped unexpectedly. Continue it with: {resume_command(self.run.path)}"
        if self.stop_with_run and state.known and not state.live:
            return "The run has stopped. Thank you!"
        if self.pair is not None or self.ready or self.pending:
            return None
        budget = self.budget
        if self.store is not None and self.answered_total >= budget:
            return f"All {budget} labels are given. Thank you!"
        if not state.live:
            return "The run has stopped and nothing is left to label. Thank you!"
        return None

    def end(self, message: str | None) -> None:
        """Labelling is over: no pair any more, ``message`` in its place (None: it is
        not over after all, e.g. the last answer is being taken back)."""
        self.message = message
        self._drop_pair()

    def waiting_for(self) -> str:
        """What the window waits for while no pair is on screen."""
        if self.store is None:
            return "Waiting for the run to start..."
        if self.pending:
            return "Rendering the next clips..."
        return "Waiting for the agent's next clips..."

    def status_text(self, now: float | None = None) -> str:
        pace = self.pace_text(now) if now is not None else None
        return status_line(self.state, self.answered_total, self.run, pace)

    def pace_text(self, now: float) -> str:
        """This window's part of the status line: its session number, labels given and
        labels per minute, and the time to the budget at that rate. Recomputed when an
        answer is given or undone, and every :data:`PACE_REFRESH_S`."""
        elapsed = 0.0 if self.started_at is None else max(0.0, now - self.started_at)
        key = (self.answers, int(elapsed // PACE_REFRESH_S))
        if self._pace is None or self._pace[0] != key:
            sessions = self.heartbeat.sessions if self.heartbeat is not None else None
            left = max(0, self.budget - self.answered_total)
            self._pace = (key, pace_line(self.answers, elapsed, left, sessions))
        return self._pace[1]

    def screen(self, now: float) -> Screen:
        """What to show at ``now``."""
        toast = self.toast if self.toast is not None and now < self.toast[1] else None
        next_change = toast[1] if toast is not None else math.inf
        frames: tuple[np.ndarray, np.ndarray] | None = None
        index, played, paused = (0, 0), 0.0, False
        if self.pair is not None and self.playback is not None:
            index = self.playback.frames(now)
            frames = (self.pair.left[index[0]], self.pair.right[index[1]])
            played, paused = self.playback.played(now), self.playback.paused
            next_change = min(next_change, self.playback.next_change(now))
            if self.opens_at is not None and now < self.opens_at and not paused:
                next_change = min(next_change, self.opens_at)
        if self.started_at is not None and self.answers > 0:  # the pace changes with time
            elapsed = now - self.started_at
            next_change = min(next_change, now + PACE_REFRESH_S - elapsed % PACE_REFRESH_S)
        return Screen(
            question=self.run.instruction,
            status=self.status_text(now),
            toast=toast[0] if toast is not None else None,
            query_id=self.pair.query_id if self.pair is not None else None,
            frames=frames,
            frame_index=index,
            played=played,
            paused=paused,
            presented=self.shown_at is not None,
            waiting=None if self.pair is not None else (self.message or self.waiting_for()),
            finished=self.message,
            next_change=next_change,
            answers_open=self.answers_open(now),
            view_progress=1.0 if self.answers_open(now) else self.view_progress(now),
        )

    # -- the rest -------------------------------------------------------------------------

    def _emit(self, event: LabelEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _set_toast(self, text: str, now: float) -> None:
        self.toast = (text, now + TOAST_S)

    def close(self) -> None:
        """Commit what is given, stop the renderer and close the store (idempotent).

        Raises:
            StoreError: answers given could not be written (the store stayed busy); the
                pairs are still unanswered in the store, asked again by the next window.
        """
        try:
            if self.store is not None:
                if self._given and not self._unwritable:
                    self.store.wait_when_busy(BUSY_TIMEOUT_S)  # the last chance to save them
                    self.commit()
                if self._given:
                    unsaved, self._given = len(self._given), []
                    if self._unwritable:
                        why = f"this user may not write the run's store {self.run.store_path} ({self._busy})"
                        then = "Give this user write access to the run directory, then label them again"
                    else:
                        why = f"the run's store stayed busy ({self._busy})"
                        then = "Label them again"
                    raise StoreError(
                        f"{unsaved} answer(s) given in this window could not be saved: {why}. Their pairs "
                        f"are still unanswered. {then} with: prefrl label {self.run.path}"
                    )
        finally:
            if self.heartbeat is not None:
                self.heartbeat.close()
            if self.renderer is not None:
                self.renderer.close()
                self.renderer = None
            if self.store is not None:
                self.store.close()
                self.store = None
            self._drop_pair()
            self.ready.clear()
            self._history.clear()
