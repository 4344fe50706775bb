"""The labelling window: a person compares two clips of the agent and presses a key.

:func:`run_labeling` attaches to a preference run (running or stopped) and shows its
pending queries, oldest first: the two clips side by side, looping at the env's own
speed, the task's question above them and the run's progress in a status line. Keys, as
in Christiano et al. (2017):

=====================  ====================================================
Left arrow or A        the left clip is better
Right arrow or D       the right clip is better
Up arrow or W          both are equally good
Down arrow or S        can't tell (kept, never trained on)
Space                  replay both clips from the start
P                      pause / play
Backspace or Z         undo the last answer given in this window (asked again)
a click on a clip      that clip is better
Escape, closing        stop labelling (the pair on screen stays pending)
=====================  ====================================================

An answer counts once the pair has been on screen for the minimum viewing time (by
default one full play of the shorter clip; ``min_view_s``): keys pressed earlier are
ignored, and the bar under the clips fills until answers open. Each answer is committed to the run's preference store the moment the key is pressed
(``oracle="human"``, with the seconds the pair was on screen), where the run's reward
trainer picks it up. Pairs are rendered ahead in the background
(:class:`~prefrl.ui.render_ahead.RenderAhead`), so the next pair replaces the answered
one at once; the window's loop never waits for rendering, the store or the run.

This module is the glue: :class:`LabelingWindow` runs the loop between a
:class:`~prefrl.ui.session.LabelingSession` (the rules, no pygame) and a
:class:`~prefrl.ui.view.LabelingView` (the pygame window: keys in, drawing out).
"""

from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from prefrl.ui.display import check_display
from prefrl.ui.heartbeat import WindowHeartbeat
from prefrl.ui.render_ahead import RenderAhead
from prefrl.ui.run_info import LabelingRun, check_something_to_label, open_run
from prefrl.ui.screen import Control, EventSink, LabelEvent
from prefrl.ui.session import LabelingSession
from prefrl.ui.view import LabelingView

__all__ = ["LabelEvent", "LabelingWindow", "check_display", "run_labeling"]

WAITING_TICK_S = 0.02
"""how often the loop looks for a finished render while no pair is on screen"""
FINISH_LINGER_S = 1.5


def run_labeling(
    run_dir: str | Path,
    *,
    max_answers: int | None = None,
    size: tuple[int, int] | None = None,
    backend: str = "process",
    on_event: EventSink | None = None,
    stop_with_run: bool = False,
    finish_linger_s: float = FINISH_LINGER_S,
    min_view_s: float | None = None,
    trust_task_file: bool = False,
    task: str | None = None,
) -> int:
    """Open the labelling window on the run in ``run_dir`` and let a person answer its queries.

    Returns when the person stops (Escape or closing the window: the pair on screen stays
    pending and is offered first next time), after ``max_answers`` answers, or when the
    run has nothing more to ask (it stopped and no query is left, or its label budget is
    spent); with ``stop_with_run``, as soon as the run stops.

    Args:
        run_dir: a run started with ``prefrl train ENV --oracle human``, running or not.
        max_answers: stop after this many answers (None: no limit).
        size: window size in pixels (default 1280x720, or the screen if smaller).
        backend: where pairs are rendered ahead, ``"process"`` or ``"thread"``.
        on_event: called in the window's thread with each :class:`LabelEvent`.
        stop_with_run: close when the run stops, even with queries left (for the window
            ``prefrl train --oracle human`` opens: answers after the run's end train nothing).
        finish_linger_s: seconds the closing message stays up when the run has nothing
            more to ask.
        min_view_s: seconds a pair must be on screen before an answer counts (None: one
            full play of the shorter clip; 0: at once).
        trust_task_file, task: load the task file the run's ``config.json`` names (see
            :func:`prefrl.ui.run_info.open_run`).

    SIGTERM and SIGHUP close the window as Escape does (its renderer with it), when called
    from the main thread.

    Returns:
        The number of answers given in this window.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist or is not a run directory.
        ValueError: it is not a preference run labelled by a person.
        NothingToLabelError: the run is not running and no query waits for an answer
            (or its label budget is spent).
        NoDisplayError: no display to open the window on.
        RenderError: the clips cannot be rendered.
        prefrl.tasks.UntrustedTaskFile: the run's task file is not trusted.
    """
    run = open_run(run_dir, trust_task_file=trust_task_file, task=task)
    check_something_to_label(run)
    with _closed_by_signals():
        window = LabelingWindow(run, size=size, backend=backend, on_event=on_event, min_view_s=min_view_s)
        try:
            return window.run(
                max_answers=max_answers, stop_with_run=stop_with_run, finish_linger_s=finish_linger_s
            )
        finally:
            window.close()


class WindowClosedBySignal(SystemExit):
    """SIGTERM or SIGHUP reached the window: it closes (and its renderer stops)."""


@contextlib.contextmanager
def _closed_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`WindowClosedBySignal` (exit status 128 + the
    signal), so that the window's ``finally`` stops its renderer; without it Python would
    die at once and leave the render process behind (and SDL, finding no handler, would
    turn SIGTERM into a quit event nobody may read). Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def close(signum: int, frame: object) -> None:
        raise WindowClosedBySignal(128 + signum)

    previous = {sig: signal.signal(sig, close) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class LabelingWindow:
    """The window and its loop; :func:`run_labeling` is the way to use it.

    Opening it opens the display and starts the renderer; :meth:`close` releases both
    and the store.

    Attributes:
        session: the labelling session (pending pairs, playback, answers).
        view: the pygame window.

    Raises:
        NoDisplayError: no display to open the window on.
    """

    def __init__(
        self,
        run: LabelingRun,
        *,
        size: tuple[int, int] | None = None,
        backend: str = "process",
        on_event: EventSink | None = None,
        max_display_fps: float | None = None,
        min_view_s: float | None = None,
    ):
        self.run_info = run
        self.view = LabelingView(size, f"prefrl: label {run.path.name} ({run.env_id})")
        try:
            renderer = RenderAhead(
                run.env_id, run.fixed_length, backend=backend, max_display_fps=max_display_fps, task=run.task
            )
        except BaseException:
            self.view.close()
            raise
        try:
            heartbeat = WindowHeartbeat(run.path)
        except BaseException:
            renderer.close()
            self.view.close()
            raise
        self.session = LabelingSession(
            run, renderer, on_event=on_event, min_view_s=min_view_s, heartbeat=heartbeat
        )

    @property
    def answers(self) -> int:
        """Answers given in this window."""
        return self.session.answers

    @property
    def lateness(self) -> collections.deque[float]:
        """Seconds each scheduled playback frame was drawn after its time."""
        return self.view.lateness

    def run(
        self,
        *,
        max_answers: int | None = None,
        stop_with_run: bool = False,
        finish_linger_s: float = FINISH_LINGER_S,
    ) -> int:
        """Show pairs and take answers until the person stops or nothing is left to ask
        (arguments as in :func:`run_labeling`); returns the number of answers given."""
        if max_answers is not None and max_answers <= 0:
            return 0
        session, view = self.session, self.view
        session.max_answers, session.stop_with_run = max_answers, stop_with_run
        session.tick(time.perf_counter())
        while True:
            self._show()
            wait_s = view.next_draw - time.perf_counter()
            if session.pair is None:
                wait_s = min(wait_s, WAITING_TICK_S)
            session.handle(view.inputs(view.wait(wait_s)), time.perf_counter())
            self._show()  # the pair that replaces an answered one is on screen first,
            session.commit()  # then the answer is written
            if session.closing:
                return session.answers
            session.tick(time.perf_counter())
            reason = session.finished
            if reason is not None and self._finish(reason, finish_linger_s):
                return session.answers

    def _show(self) -> None:
        """Draw what changed; a pair the session has just taken goes on screen now, and
        answer keys pressed before it could be seen are dropped."""
        now = time.perf_counter()
        screen = self.session.screen(now)
        if screen.query_id is not None and not screen.presented:
            self.view.draw(screen, now)
            shown_at = time.perf_counter()
            self.view.drop_queued_answers()
            self.session.presented(shown_at)
        elif self.view.needs_draw(screen, now):
            self.view.draw(screen, now)

    def _finish(self, message: str, linger_s: float) -> bool:
        """Show why labelling is over for ``linger_s`` (Escape or closing ends it sooner);
        returns False when the person took the last answer back meanwhile (undo): its pair
        is on screen again and labelling goes on."""
        self.session.end(message)
        now = time.perf_counter()
        self.view.draw(self.session.screen(now), now)
        deadline = now + linger_s
        while time.perf_counter() < deadline:
            inputs = self.view.inputs(self.view.wait(0))
            if Control.QUIT in inputs:
                return True
            if Control.UNDO in inputs:
                now = time.perf_counter()
                self.session.end(None)
                self.session.handle([Control.UNDO], now)
                if self.session.finished is None:
                    return False
                self.session.end(message)  # nothing of this window's to take back
                self.view.draw(self.session.screen(now), now)
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Commit what is given, stop the renderer, close the store and the window (idempotent)."""
        try:
            now = time.perf_counter()
            if self.session.closing_note(now):  # not a frozen window in silence
                self.view.draw(self.session.screen(now), now)
            self.session.close()
        finally:
            self.view.close()
