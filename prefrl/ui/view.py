"""The labelling window's pygame side: the window, keys into session inputs, layout, and
drawing a :class:`~prefrl.ui.session.Screen`.

Nothing here decides anything about labelling: :class:`LabelingView` turns pygame events
into :data:`~prefrl.ui.session.Input` values and draws the record the session gives it.
"""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pygame

from prefrl.prefs.clips import Answer
from prefrl.render import frames
from prefrl.ui.errors import NO_DISPLAY_HELP, NoDisplayError
from prefrl.ui.session import Control, Input, Screen

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
CONTROL_KEYS: dict[int, Control] = {
    pygame.K_SPACE: Control.REPLAY,
    pygame.K_p: Control.PAUSE,
    pygame.K_ESCAPE: Control.QUIT,
}
DEFAULT_SIZE = (1280, 720)
IDLE_REDRAW_S = 0.25
"""the longest time between two draws"""

BG = (22, 22, 28)
PANEL = (38, 38, 48)
EDGE = (70, 70, 86)
TEXT = (236, 236, 242)
DIM = (160, 160, 176)
ACCENT = (255, 200, 80)
BAR = (110, 170, 255)
KEY_BG = (60, 60, 74)
FONT_NAMES = "dejavusans,freesans,liberationsans,arial,helvetica"


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


class LabelingView:
    """The pygame window: opened on creation, :meth:`close` to close it.

    Args:
        size: window size in pixels (default 1280x720, or the screen if smaller).
        caption: the window's title.

    Raises:
        NoDisplayError: no display to open the window on.
    """

    def __init__(self, size: tuple[int, int] | None, caption: str):
        self.screen = _open_display(size, caption)
        self.lateness: collections.deque[float] = collections.deque(maxlen=100_000)
        """seconds each scheduled playback frame was drawn after its time (a measure of smoothness)"""
        self.next_draw = 0.0
        """``perf_counter`` time the next draw is due"""
        self._full = True  # everything must be redrawn (exposed, resized, first draw)
        self._still: tuple[object, ...] | None = None  # what the last full draw showed
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._texts: dict[tuple[str, int, bool, tuple[int, int, int]], pygame.Surface] = {}
        self._frame_size = (500, 500)
        self._layout = self._compute_layout()
        self._surfaces: dict[tuple[int, int], pygame.Surface] = {}  # (side, index) of the pair shown
        self._surfaces_of: int | None = None  # its query id

    # -- events -------------------------------------------------------------------------

    def wait(self, timeout_s: float) -> list[pygame.event.Event]:
        """The events that came within ``timeout_s`` (all queued ones, without waiting when
        some are there or the time is up)."""
        events: list[pygame.event.Event] = []
        if timeout_s > 0.001:
            first = pygame.event.wait(max(1, int(timeout_s * 1000)))
            if first.type != pygame.NOEVENT:
                events.append(first)
        return events + pygame.event.get()

    def inputs(self, events: Sequence[pygame.event.Event]) -> list[Input]:
        """The session inputs of ``events`` (keys, closing the window); acts on the window's
        own events (resized, exposed)."""
        inputs: list[Input] = []
        for event in events:
            if event.type == pygame.QUIT:
                inputs.append(Control.QUIT)
            elif event.type == pygame.KEYDOWN:
                given = ANSWER_KEYS.get(event.key) or CONTROL_KEYS.get(event.key)
                if given is not None:
                    inputs.append(given)
            elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                surface = pygame.display.get_surface()
                if surface is not None:
                    self.screen = surface
                    self._relayout()
            elif event.type == pygame.WINDOWEXPOSED:
                self._full = True
        return inputs

    def drop_queued_answers(self) -> None:
        """Forget answer keys pressed before the pair now on screen could be seen (other
        keys stay queued)."""
        for event in pygame.event.get(pygame.KEYDOWN):
            if event.key not in ANSWER_KEYS:
                pygame.event.post(event)

    # -- drawing ------------------------------------------------------------------------

    def needs_draw(self, screen: Screen, now: float) -> bool:
        """Whether ``screen`` differs from what is shown, or a draw is due."""
        return self._full or now >= self.next_draw or self._still_of(screen) != self._still

    def draw(self, screen: Screen, now: float) -> None:
        """Draw ``screen`` and show what changed; sets when the next draw is due.

        While a pair plays, only its two frames and progress bars are redrawn and pushed
        to the screen (a full redraw of the window costs several times more, on a CPU
        the renderer and the run need); everything is redrawn when something else changed.
        """
        if screen.frames is not None:
            height, width = screen.frames[0].shape[:2]
            if (width, height) != self._frame_size:
                self._frame_size = (width, height)
                self._relayout()
        if screen.query_id != self._surfaces_of:
            self._surfaces.clear()
            self._surfaces_of = screen.query_id
        still = self._still_of(screen)
        full = self._full or still != self._still
        if screen.frames is not None and not screen.paused and not full:
            self.lateness.append(now - self.next_draw)
        if full:
            self._draw_still(screen)
        changed: list[pygame.Rect] = []
        if screen.frames is not None:
            for side, rect in enumerate(self._layout.cells):
                self.screen.blit(self._frame(screen, side), rect.topleft)
                bar = pygame.Rect(rect.left, rect.bottom + 6, rect.width, 4)
                pygame.draw.rect(self.screen, PANEL, bar)
                pygame.draw.rect(
                    self.screen, BAR, (bar.left, bar.top, round(bar.width * screen.played), bar.height)
                )
                if screen.paused:
                    label = self._text("paused", self._layout.title_size, ACCENT, True)
                    self.screen.blit(label, label.get_rect(center=rect.center))
                changed += [rect, bar]
        if full:
            pygame.display.flip()
        else:
            pygame.display.update(changed)
        self._full, self._still = False, still
        self.next_draw = min(now + IDLE_REDRAW_S, screen.next_change)

    def _still_of(self, screen: Screen) -> tuple[object, ...]:
        """What a full redraw shows besides the frames."""
        return (screen.question, screen.status, screen.toast, screen.query_id, screen.waiting)

    def _draw_still(self, screen: Screen) -> None:
        """Everything but the clips' frames: texts, frames around the clips, keys."""
        lay, surface = self._layout, self.screen
        surface.fill(BG)
        self._blit_centered(self._text(screen.question, lay.title_size, TEXT, True), lay.title_y)
        self._blit_centered(self._text(screen.status, lay.text_size, DIM), lay.status_y)
        if screen.toast is not None:
            self._blit_centered(self._text(screen.toast, lay.text_size, ACCENT), lay.toast_y)
        if screen.frames is not None:
            for rect in lay.cells:
                pygame.draw.rect(surface, EDGE, rect.inflate(4, 4), 2, border_radius=3)
        else:
            for rect in lay.cells:
                pygame.draw.rect(surface, PANEL, rect, border_radius=6)
            if screen.waiting:
                self._blit_centered(
                    self._text(screen.waiting, lay.title_size, ACCENT, True),
                    lay.cells[0].centery,
                    centre=True,
                )
        self._draw_keys()

    def _frame(self, screen: Screen, side: int) -> pygame.Surface:
        """The display surface of the left (0) or right (1) frame of ``screen``."""
        assert screen.frames is not None
        index = screen.frame_index[side]
        surface = self._surfaces.get((side, index))
        if surface is None:
            frame = screen.frames[side]
            surface = pygame.image.frombuffer(frame.data, (frame.shape[1], frame.shape[0]), "RGB")
            target = self._layout.cells[side].size
            if surface.get_size() != target:
                surface = pygame.transform.smoothscale(surface, target)
            # In the display's pixel format, later blits of this frame (a clip loops while
            # the person watches) are plain copies.
            surface = surface.convert()
            self._surfaces[side, index] = surface
        return surface

    def _compute_layout(self) -> _Layout:
        width, height = self.screen.get_size()
        return _Layout.compute(width, height, self._frame_size)

    def _relayout(self) -> None:
        self._layout = self._compute_layout()
        self._surfaces.clear()
        self._full = True

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

    def close(self) -> None:
        """Close the window (idempotent)."""
        self._surfaces.clear()
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
