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
Escape, closing        stop labelling (the pair on screen stays pending)
=====================  ====================================================

Each answer is committed to the run's preference store the moment the key is pressed
(``oracle="human"``, with the seconds the pair was on screen), where the run's reward
trainer picks it up. Pairs are rendered ahead in the background
(:class:`~prefrl.ui.render_ahead.RenderAhead`), so the next pair replaces the answered
one at once; the window's loop never waits for rendering, the store or the run.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygame

from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore, Query, StoreError
from prefrl.render import frames
from prefrl.ui.errors import NO_DISPLAY_HELP, NoDisplayError
from prefrl.ui.render_ahead import RenderAhead, RenderedPair
from prefrl.ui.run_info import (
    HUMAN,
    LabelingRun,
    RunStatus,
    check_something_to_label,
    human_pending,
    open_run,
    read_status,
)

ANSWER_KEYS: dict[int, Answer] = {
    pygame.K_LEFT: Answer.LEFT,
    pygame.K_a: Answer.LEFT,
    pygame.K_RIGHT: Answer.RIGHT,
    pygame.K_d: Answer.RIGHT,
    pygame.K_UP: Answer.EQUAL,
    pygame.K_w: Answer.EQUAL,
    pygame.K_DOWN: Answer.CANT_TELL,
    pygame.K_s: Answer.CANT_TELL,
}
ANSWER_TEXT = {
    Answer.LEFT: "left is better",
    Answer.RIGHT: "right is better",
    Answer.EQUAL: "equally good",
    Answer.CANT_TELL: "can't tell",
}
DEFAULT_SIZE = (1280, 720)
RENDER_AHEAD = 3
"""pairs rendered (or being rendered) beyond the one on screen"""
LOOP_HOLD_S = 0.4
"""the last frame stays this long before a clip starts again, so its end is seen"""
POLL_STORE_S = 0.2
POLL_STATUS_S = 0.5
WAITING_TICK_S = 0.02
"""how often the loop looks for a finished render while no pair is on screen"""
IDLE_REDRAW_S = 0.25
TOAST_S = 2.5
FINISH_LINGER_S = 1.5

BG = (22, 22, 28)
PANEL = (38, 38, 48)
EDGE = (70, 70, 86)
TEXT = (236, 236, 242)
DIM = (160, 160, 176)
ACCENT = (255, 200, 80)
BAR = (110, 170, 255)
KEY_BG = (60, 60, 74)
FONT_NAMES = "dejavusans,freesans,liberationsans,arial,helvetica"

EventSink = Callable[["LabelEvent"], None]


@dataclass(frozen=True)
class LabelEvent:
    """Something the window did, for observers (benchmarks, tests, scripted labelers).

    Attributes:
        kind: ``"shown"`` (a pair is on screen: after the display flip) or ``"answered"``
            (an answer was committed to the store).
        query_id: the query shown or answered.
        time: ``time.perf_counter()`` when it happened.
        ready: rendered pairs waiting besides the one on screen; for ``"answered"``,
            as the key was handled (before the next pair was taken).
        answer: the answer given (``"answered"`` only).
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


def check_display() -> None:
    """Fail early when no display can be reached: on Linux (and other X11 systems), neither
    ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set and the user chose no SDL video driver.

    An ``SDL_VIDEODRIVER`` that prefrl itself set (it points SDL at the dummy driver for
    offscreen rendering on machines without a display) does not count: only the one the
    process started with (:data:`prefrl.render.frames.USER_SDL_VIDEODRIVER`).

    Raises:
        NoDisplayError: with how to run the window anyway.
    """
    if sys.platform in ("darwin", "win32", "cygwin"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or frames.USER_SDL_VIDEODRIVER):
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (DISPLAY and WAYLAND_DISPLAY are not set)")


def run_labeling(
    run_dir: str | Path,
    *,
    max_answers: int | None = None,
    size: tuple[int, int] | None = None,
    backend: str = "process",
    on_event: EventSink | None = None,
    stop_with_run: bool = False,
    finish_linger_s: float = FINISH_LINGER_S,
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

    Returns:
        The number of answers given in this window.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist or is not a run directory.
        ValueError: it is not a preference run labelled by a person.
        NothingToLabelError: the run is not running and no query waits for an answer
            (or its label budget is spent).
        NoDisplayError: no display to open the window on.
        RenderError: the clips cannot be rendered.
    """
    run = open_run(run_dir)
    check_something_to_label(run)
    window = LabelingWindow(run, size=size, backend=backend, on_event=on_event)
    try:
        return window.run(
            max_answers=max_answers, stop_with_run=stop_with_run, finish_linger_s=finish_linger_s
        )
    finally:
        window.close()


@dataclass
class _Showing:
    """The pair on screen and where its playback is."""

    pair: RenderedPair
    shown_at: float = 0.0
    play_start: float = 0.0
    paused_at: float | None = None
    surfaces: dict[tuple[int, int], pygame.Surface] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return max(len(self.pair.left), len(self.pair.right))

    @property
    def period(self) -> float:
        return self.length / self.pair.fps + LOOP_HOLD_S

    def position(self, now: float) -> tuple[int, float, float]:
        """``(frame index, share of the clip played, perf_counter time of the next frame)``."""
        t = ((self.paused_at if self.paused_at is not None else now) - self.play_start) % self.period
        fps, n = self.pair.fps, self.length
        index = min(n - 1, int(t * fps))
        if self.paused_at is not None:
            next_change = float("inf")
        elif index < n - 1:
            next_change = now + (index + 1) / fps - t
        else:
            next_change = now + self.period - t
        return index, min(1.0, t * fps / n), next_change

    def restart(self, now: float) -> None:
        self.play_start = now
        self.paused_at = None

    def toggle_pause(self, now: float) -> None:
        if self.paused_at is None:
            self.paused_at = now
        else:
            self.play_start += now - self.paused_at
            self.paused_at = None


class LabelingWindow:
    """The window and its loop; :func:`run_labeling` is the way to use it.

    Opening it opens the display and starts the renderer; :meth:`close` releases both
    and the store.

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
    ):
        self.run_info = run
        self.on_event = on_event
        self.store: PreferenceStore | None = None
        self.renderer: RenderAhead | None = None
        self.pending: list[Query] = []
        self.ready: dict[int, RenderedPair] = {}
        self.current: _Showing | None = None
        self.answers = 0
        self.answered_total = 0
        self.status: RunStatus = read_status(run)
        self.toast: tuple[str, float] | None = None
        self.stop_with_run = False
        self.message: str | None = None
        self._next_store_poll = 0.0
        self._next_status_poll = 0.0
        self._next_draw = 0.0
        self._dirty = True
        self.lateness: collections.deque[float] = collections.deque(maxlen=100_000)
        """seconds each scheduled playback frame was drawn after its time (a measure of smoothness)"""
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._texts: dict[tuple[str, int, bool, tuple[int, int, int]], pygame.Surface] = {}
        self._frame_size = (500, 500)
        self.screen = _open_display(size, f"prefrl: label {run.path.name} ({run.env_id})")
        self._layout = self._compute_layout()
        try:
            self.renderer = RenderAhead(
                run.env_id, run.fixed_length, backend=backend, max_display_fps=max_display_fps
            )
        except BaseException:
            self.close()
            raise

    # -- the loop -------------------------------------------------------------------------

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
        self.stop_with_run = stop_with_run
        self._refresh(force=True)
        while True:
            now = time.perf_counter()
            wait_s = 0.0 if self._dirty else self._next_draw - now
            if self.current is None:
                wait_s = min(wait_s, WAITING_TICK_S)
            events: list[pygame.event.Event] = []
            if wait_s > 0.001:
                first = pygame.event.wait(max(1, int(wait_s * 1000)))
                if first.type != pygame.NOEVENT:
                    events.append(first)
            events += pygame.event.get()
            if self._handle(events, max_answers):
                return self.answers
            self._refresh()
            if self.current is None and self.ready:
                self._show_next()
            reason = self._finished_reason()
            if reason is not None:
                self._finish(reason, finish_linger_s)
                return self.answers
            if self._dirty or time.perf_counter() >= self._next_draw:
                if self.current is None:
                    self._dirty = True  # the waiting hint and the status may have changed
                self._draw()

    def _handle(self, events: Sequence[pygame.event.Event], max_answers: int | None) -> bool:
        """Act on the events; True when labelling is to stop."""
        answered = False
        for event in events:
            if event.type == pygame.QUIT:
                return True
            if event.type == pygame.KEYDOWN:
                key = event.key
                if key == pygame.K_ESCAPE:
                    return True
                if key in ANSWER_KEYS:
                    # A key already queued when the pair changed was meant for the old pair.
                    if self.current is None or answered:
                        continue
                    self._answer(ANSWER_KEYS[key], time.perf_counter())
                    answered = True
                    if max_answers is not None and self.answers >= max_answers:
                        return True
                elif key == pygame.K_SPACE and self.current is not None:
                    self.current.restart(time.perf_counter())
                    self._dirty = True
                elif key == pygame.K_p and self.current is not None:
                    self.current.toggle_pause(time.perf_counter())
                    self._dirty = True
            elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                surface = pygame.display.get_surface()
                if surface is not None:
                    self.screen = surface
                    self._relayout()
            elif event.type == pygame.WINDOWEXPOSED:
                self._dirty = True
        return False

    def _answer(self, answer: Answer, key_time: float) -> None:
        """Put the next pair on screen, then commit the answer to the pair that was there."""
        done = self.current
        assert done is not None and self.store is not None
        query_id = done.pair.query_id
        ready = len(self.ready)
        self.current = None
        self.pending = [q for q in self.pending if q.query_id != query_id]
        if not self._show_next():
            self._dirty = True
            self._draw()
        try:
            self.store.record_answer(query_id, answer, oracle=HUMAN, response_time=key_time - done.shown_at)
        except StoreError as err:
            # e.g. answered meanwhile in another window on the same run: nothing to save.
            self._set_toast(f"Not saved: {err}")
            return
        self.answers += 1
        self.answered_total += 1
        self._set_toast(f"Saved: {ANSWER_TEXT[answer]}")
        self._emit(LabelEvent("answered", query_id, time.perf_counter(), ready, answer, key_time))

    def _show_next(self) -> bool:
        """Put the oldest ready pair on screen (drawn and flipped at once); False if none is ready."""
        if not self.ready:
            return False
        query_id = min(self.ready)
        pair = self.ready.pop(query_id)
        self.current = _Showing(pair)
        if (pair.left.shape[2], pair.left.shape[1]) != self._frame_size:
            self._frame_size = (pair.left.shape[2], pair.left.shape[1])
            self._layout = self._compute_layout()
        self.current.restart(time.perf_counter())
        self._dirty = True
        self._draw()
        self.current.shown_at = time.perf_counter()
        # Answer keys pressed before this pair could be seen were not meant for it.
        for event in pygame.event.get(pygame.KEYDOWN):
            if event.key not in ANSWER_KEYS:
                pygame.event.post(event)
        self._emit(
            LabelEvent("shown", query_id, self.current.shown_at, len(self.ready), render_s=pair.render_s)
        )
        self._top_up()
        return True

    def _finished_reason(self) -> str | None:
        """Why the window is done (None: it is not): the run will ask nothing more."""
        if self.stop_with_run and self.status.known and not self.status.live:
            return "The run has stopped. Thank you!"
        if self.current is not None or self.ready or self.pending:
            return None
        budget = self.run_info.budget
        if self.store is not None and self.answered_total >= budget:
            return f"All {budget} labels are given. Thank you!"
        if not self.status.live:
            return "The run has stopped and nothing is left to label. Thank you!"
        return None

    def _finish(self, message: str, linger_s: float) -> None:
        self.message = message
        self.current = None
        self._dirty = True
        self._draw()
        deadline = time.perf_counter() + linger_s
        while time.perf_counter() < deadline:
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (
                    event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE
                ):
                    return
            time.sleep(0.02)

    # -- the run: store, status, renders --------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        now = time.perf_counter()
        assert self.renderer is not None
        for pair in self.renderer.poll():
            if any(q.query_id == pair.query_id for q in self.pending):
                self.ready[pair.query_id] = pair
        if force or now >= self._next_status_poll:
            self._next_status_poll = now + POLL_STATUS_S
            status = read_status(self.run_info)
            if status != self.status:
                self.status = status
                self._dirty = True
        if force or now >= self._next_store_poll:
            self._next_store_poll = now + POLL_STORE_S
            self._poll_store()

    def _poll_store(self) -> None:
        if self.store is None:
            if not self.run_info.store_path.exists():
                return  # the run has not made its store yet
            self.store = PreferenceStore(self.run_info.store_path, env_id=self.run_info.env_id)
        self.pending = human_pending(self.store)
        pending_ids = {q.query_id for q in self.pending}
        for query_id in [q for q in self.ready if q not in pending_ids]:
            del self.ready[query_id]  # answered elsewhere (another window)
        if self.current is not None and self.current.pair.query_id not in pending_ids:
            self._set_toast(f"Query {self.current.pair.query_id} was answered elsewhere")
            self.current = None
        answered = self.store.num_answered()
        if answered != self.answered_total:
            self.answered_total = answered
            self._dirty = True
        self._top_up()

    def _top_up(self) -> None:
        """Send the oldest pending queries not yet rendered to the renderer, up to RENDER_AHEAD."""
        assert self.renderer is not None
        if self.store is None:
            return
        current = self.current.pair.query_id if self.current is not None else None
        room = RENDER_AHEAD - len(self.ready) - len(self.renderer.in_flight)
        for query in self.pending:
            if room <= 0:
                break
            qid = query.query_id
            if qid == current or qid in self.ready or qid in self.renderer.in_flight:
                continue
            clips = self.store.get_clips([query.left_clip_id, query.right_clip_id])
            left, right = clips[query.left_clip_id], clips[query.right_clip_id]
            if left.snapshots is None or right.snapshots is None:
                raise ValueError(
                    f"query {qid}'s clips have no snapshots, so they cannot be shown; "
                    "was the run's agent built without capture_snapshots?"
                )
            self.renderer.submit(qid, left.snapshots, right.snapshots)
            room -= 1

    def _emit(self, event: LabelEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _set_toast(self, text: str) -> None:
        self.toast = (text, time.perf_counter() + TOAST_S)
        self._dirty = True

    # -- drawing ----------------------------------------------------------------------

    def _compute_layout(self) -> _Layout:
        width, height = self.screen.get_size()
        return _Layout.compute(width, height, self._frame_size)

    def _relayout(self) -> None:
        self._layout = self._compute_layout()
        if self.current is not None:
            self.current.surfaces.clear()
        self._dirty = True

    def _font(self, size: int, bold: bool = False) -> pygame.font.Font:
        font = self._fonts.get((size, bold))
        if font is None:
            font = self._fonts[size, bold] = pygame.font.SysFont(FONT_NAMES, size, bold=bold)
        return font

    def _text(
        self, text: str, size: int, color: tuple[int, int, int] = TEXT, bold: bool = False
    ) -> pygame.Surface:
        key = (text, size, bold, color)
        surface = self._texts.get(key)
        if surface is None:
            if len(self._texts) > 256:
                self._texts.clear()
            surface = self._texts[key] = self._font(size, bold).render(text, True, color)
        return surface

    def _draw(self) -> None:
        """Draw and show what changed; sets when the next draw is due.

        While a pair plays, only its two frames and progress bars are redrawn and pushed
        to the screen (a full redraw of the window costs several times more, on a CPU
        the renderer and the run need); everything is redrawn when ``_dirty`` says
        something else changed.
        """
        now = time.perf_counter()
        full = self._dirty
        if self.current is not None and self.current.paused_at is None and not full:
            self.lateness.append(now - self._next_draw)
        self._dirty = False
        if self.toast is not None and now >= self.toast[1]:
            self.toast, full = None, True
        if full:
            self._draw_still()
        next_draw = now + IDLE_REDRAW_S
        changed: list[pygame.Rect] = []
        if self.current is not None:
            index, played, next_change = self.current.position(now)
            next_draw = min(next_draw, next_change) if self.toast is None else min(next_change, self.toast[1])
            for side, rect in enumerate(self._layout.cells):
                self.screen.blit(self._frame(side, index), rect.topleft)
                bar = pygame.Rect(rect.left, rect.bottom + 6, rect.width, 4)
                pygame.draw.rect(self.screen, PANEL, bar)
                pygame.draw.rect(self.screen, BAR, (bar.left, bar.top, round(bar.width * played), bar.height))
                if self.current.paused_at is not None:
                    label = self._text("paused", self._layout.title_size, ACCENT, True)
                    self.screen.blit(label, label.get_rect(center=rect.center))
                changed += [rect, bar]
        if full:
            pygame.display.flip()
        else:
            pygame.display.update(changed)
        self._next_draw = next_draw

    def _draw_still(self) -> None:
        """Everything but the clips' frames: texts, frames around the clips, keys."""
        lay, screen = self._layout, self.screen
        screen.fill(BG)
        self._blit_centered(self._text(self.run_info.instruction, lay.title_size, TEXT, True), lay.title_y)
        self._blit_centered(self._text(self._status_line(), lay.text_size, DIM), lay.status_y)
        if self.toast is not None:
            self._blit_centered(self._text(self.toast[0], lay.text_size, ACCENT), lay.toast_y)
        if self.current is not None:
            for rect in lay.cells:
                pygame.draw.rect(screen, EDGE, rect.inflate(4, 4), 2, border_radius=3)
        else:
            for rect in lay.cells:
                pygame.draw.rect(screen, PANEL, rect, border_radius=6)
            hint = self.message or self._waiting_hint()
            self._blit_centered(
                self._text(hint, lay.title_size, ACCENT, True), lay.cells[0].centery, centre=True
            )
        self._draw_keys()

    def _frame(self, side: int, index: int) -> pygame.Surface:
        """The display surface of frame ``index`` of the left (0) or right (1) clip."""
        assert self.current is not None
        clip = self.current.pair.left if side == 0 else self.current.pair.right
        index = min(index, len(clip) - 1)  # a shorter clip holds its last frame
        surface = self.current.surfaces.get((side, index))
        if surface is None:
            frame = clip[index]
            surface = pygame.image.frombuffer(frame, (frame.shape[1], frame.shape[0]), "RGB")
            target = self._layout.cells[side].size
            if surface.get_size() != target:
                surface = pygame.transform.smoothscale(surface, target)
            # In the display's pixel format, later blits of this frame (a clip loops while
            # the person watches) are plain copies.
            surface = surface.convert()
            self.current.surfaces[side, index] = surface
        return surface

    def _status_line(self) -> str:
        status, budget = self.status, self.run_info.budget
        given = self.answered_total
        if status.known and status.live:
            wanted = status.labels_wanted if status.labels_wanted is not None else budget
            steps = f"Agent {status.agent_step or 0:,} / {status.total_steps or self.run_info.total_steps:,} env steps"
            labels = f"Labels {given} given / {max(wanted, given)} wanted now (budget {budget})"
        elif status.live:
            steps = "Run starting"
            labels = f"Labels {given} given (budget {budget})"
        else:
            if status.stale:
                steps = "Run not responding (its status.json is out of date)"
            elif not status.known:
                steps = "Run not started"
            elif status.agent_step is not None and status.agent_step >= (status.total_steps or 1):
                steps = "Run finished"
            else:
                at = f" at {status.agent_step:,} env steps" if status.agent_step is not None else ""
                steps = f"Run stopped{at}"
            labels = f"Labels {given} given (budget {budget})"
        version = status.reward_version
        model = "Reward model not trained yet" if not version else f"Reward model v{version}"
        return "     ·     ".join((labels, steps, model))

    def _waiting_hint(self) -> str:
        if self.store is None:
            return "Waiting for the run to start..."
        if self.pending:
            return "Rendering the next clips..."
        return "Waiting for the agent's next clips..."

    def _blit_centered(self, surface: pygame.Surface, y: int, centre: bool = False) -> None:
        rect = surface.get_rect(midtop=(self.screen.get_width() // 2, y))
        if centre:
            rect.center = (self.screen.get_width() // 2, y)
        self.screen.blit(surface, rect)

    def _draw_keys(self) -> None:
        lay = self._layout
        size = lay.text_size
        for side, rect in enumerate(lay.cells):
            items: list[tuple[str, str]] = (
                [("key", "left"), ("key", "A"), ("text", "left is better")]
                if side == 0
                else [("text", "right is better"), ("key", "D"), ("key", "right")]
            )
            self._draw_row(items, rect.centerx, lay.caption_y, size)
        row = [
            ("key", "up"),
            ("key", "W"),
            ("text", "equally good"),
            ("gap", ""),
            ("key", "down"),
            ("key", "S"),
            ("text", "can't tell"),
            ("gap", ""),
            ("key", "Space"),
            ("text", "replay"),
            ("gap", ""),
            ("key", "P"),
            ("text", "pause"),
            ("gap", ""),
            ("key", "Esc"),
            ("text", "stop"),
        ]
        self._draw_row(row, self.screen.get_width() // 2, lay.keys_y, size)

    def _draw_row(self, items: list[tuple[str, str]], centre_x: int, top: int, size: int) -> None:
        """Key caps and labels in a row centred on ``centre_x``."""
        cap_h = size + 10
        widths = []
        for kind, label in items:
            if kind == "key":
                widths.append(
                    cap_h if label in _ARROWS or len(label) == 1 else self._text(label, size).get_width() + 14
                )
            elif kind == "gap":
                widths.append(size * 2)
            else:
                widths.append(self._text(label, size).get_width())
        spacing = 6
        x = centre_x - (sum(widths) + spacing * (len(items) - 1)) // 2
        for (kind, label), w in zip(items, widths, strict=True):
            if kind == "key":
                rect = pygame.Rect(x, top, w, cap_h)
                pygame.draw.rect(self.screen, KEY_BG, rect, border_radius=5)
                pygame.draw.rect(self.screen, EDGE, rect, 1, border_radius=5)
                if label in _ARROWS:
                    _draw_arrow(self.screen, rect, label)
                else:
                    text = self._text(label, size, TEXT, True)
                    self.screen.blit(text, text.get_rect(center=rect.center))
            elif kind == "text":
                text = self._text(label, size, DIM)
                self.screen.blit(text, text.get_rect(midleft=(x, top + cap_h // 2)))
            x += w + spacing

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the renderer, close the store and the window (idempotent)."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self.current = None
        self.ready.clear()
        pygame.font.quit()
        pygame.display.quit()


_ARROWS = ("left", "right", "up", "down")


def _draw_arrow(surface: pygame.Surface, rect: pygame.Rect, direction: str) -> None:
    """An arrow pointing ``direction`` inside the key cap ``rect``."""
    cx, cy = rect.center
    r = rect.height * 0.28
    head = [(r, 0.0), (-0.1 * r, -0.85 * r), (-0.1 * r, 0.85 * r)]
    shaft = [(-0.1 * r, -0.28 * r), (-r, -0.28 * r), (-r, 0.28 * r), (-0.1 * r, 0.28 * r)]
    turn = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[direction]

    def place(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        # rotate (x, y) so that +x points along ``turn``
        c, s = turn
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]

    pygame.draw.polygon(surface, TEXT, place(head))
    pygame.draw.polygon(surface, TEXT, place(shaft))


@dataclass(frozen=True)
class _Layout:
    """Where things go in a window of a given size, for clips of a given frame size."""

    title_size: int
    text_size: int
    title_y: int
    status_y: int
    toast_y: int
    cells: tuple[pygame.Rect, pygame.Rect]
    caption_y: int
    keys_y: int

    @classmethod
    def compute(cls, width: int, height: int, frame_size: tuple[int, int]) -> _Layout:
        title_size = max(18, min(32, height // 24))
        text_size = max(13, min(19, height // 38))
        pad = max(8, height // 60)
        title_y = pad
        status_y = title_y + title_size + pad // 2
        toast_y = status_y + text_size + pad // 2
        top = toast_y + text_size + pad
        cap_h = text_size + 10
        bottom = pad + cap_h + pad + cap_h + pad + 10  # progress bar, captions, key row
        margin = max(12, width // 50)
        cell_w = (width - 3 * margin) // 2
        cell_h = max(20, height - top - bottom)
        fw, fh = frame_size
        # Never enlarged: renders are 400-600 px, and blurry clips are harder to judge.
        scale = min(1.0, cell_w / fw, cell_h / fh)
        w, h = max(1, round(fw * scale)), max(1, round(fh * scale))
        y = top + (cell_h - h) // 2
        gap = min(max(width - 2 * w - 2 * margin, margin), 3 * margin)
        x = (width - 2 * w - gap) // 2
        left, right = pygame.Rect(x, y, w, h), pygame.Rect(x + w + gap, y, w, h)
        caption_y = y + h + 18
        keys_y = caption_y + cap_h + pad
        return cls(title_size, text_size, title_y, status_y, toast_y, (left, right), caption_y, keys_y)


def _open_display(size: tuple[int, int] | None, caption: str) -> pygame.Surface:
    """Open the window (``size`` or the default, never larger than the screen).

    Raises:
        NoDisplayError: no display variable is set, or SDL cannot open a window.
    """
    check_display()
    try:
        pygame.display.init()
        pygame.font.init()
        if size is None:
            info = pygame.display.Info()
            screen_w, screen_h = info.current_w, info.current_h
            width, height = DEFAULT_SIZE
            if screen_w > 0 and screen_h > 0:
                width, height = min(width, screen_w), min(height, screen_h)
            size = (width, height)
        pygame.display.set_caption(caption)
        screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    except pygame.error as err:
        pygame.font.quit()
        pygame.display.quit()
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (SDL could not open a window: {err})") from None
    return screen
