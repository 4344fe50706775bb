"""The labelling window's pygame side: the window, keys and clicks into session inputs,
and drawing a :class:`~prefrl.ui.screen.Screen`.

Nothing here decides anything about labelling: :class:`LabelingView` turns pygame events
into :data:`~prefrl.ui.screen.Input` values (with the key tables of :mod:`prefrl.ui.keys`)
and draws the record the session gives it. Where things go is :mod:`prefrl.ui.layout`'s
(a pure function of the window size, the frame size and how many lines the texts take);
whether a display can be reached at all is :mod:`prefrl.ui.display`'s.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import pygame

from prefrl.prefs.clips import Answer
from prefrl.render import frames
from prefrl.ui.display import check_display
from prefrl.ui.errors import NO_DISPLAY_HELP, NoDisplayError
from prefrl.ui.keys import ANSWER_KEYS, CAPTIONS, CONTROL_KEYS, KEY_GROUPS, KeyItem
from prefrl.ui.layout import Layout, compute_layout, font_sizes, line_height, pack_rows, wrap_text
from prefrl.ui.screen import Control, Input, Screen

DEFAULT_SIZE = (1280, 720)
IDLE_REDRAW_S = 0.25
"""the longest time between two draws"""

BG = (22, 22, 28)
PANEL = (38, 38, 48)
EDGE = (70, 70, 86)
TEXT = (236, 236, 242)
DIM = (160, 160, 176)
FAINT = (96, 96, 110)
ACCENT = (255, 200, 80)
BAR = (110, 170, 255)
OPEN = (110, 200, 130)
KEY_BG = (60, 60, 74)
KEY_BG_OFF = (36, 36, 44)
FONT_NAMES = "dejavusans,freesans,liberationsans,arial,helvetica"


# ---------------------------------------------------------------------- the window


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
        self._lines: dict[str, list[str]] = {"question": [""], "status": [""]}
        self.layout = self._compute_layout()
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
        """The session inputs of ``events`` (keys, clicks on a clip, closing the window);
        acts on the window's own events (resized, exposed)."""
        inputs: list[Input] = []
        for event in events:
            if event.type == pygame.QUIT:
                inputs.append(Control.QUIT)
            elif event.type == pygame.KEYDOWN:
                given = ANSWER_KEYS.get(event.key) or CONTROL_KEYS.get(event.key)
                if given is not None:
                    inputs.append(given)
            elif event.type == pygame.MOUSEBUTTONDOWN:
                clicked = self.clicked(event)
                if clicked is not None:
                    inputs.append(clicked)
            elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                surface = pygame.display.get_surface()
                if surface is not None:
                    self.screen = surface
                    self._relayout()
            elif event.type == pygame.WINDOWEXPOSED:
                self._full = True
        return inputs

    def clicked(self, event: pygame.event.Event) -> Answer | None:
        """The answer of a left click on a clip (left clip: LEFT, right clip: RIGHT), else None."""
        if getattr(event, "button", None) != 1:
            return None
        for side, cell in enumerate(self.layout.cells):
            if cell.collidepoint(event.pos):
                return Answer.LEFT if side == 0 else Answer.RIGHT
        return None

    def drop_queued_answers(self) -> None:
        """Forget answer keys and clicks made before the pair now on screen could be seen
        (other keys stay queued)."""
        for event in pygame.event.get((pygame.KEYDOWN, pygame.MOUSEBUTTONDOWN)):
            if event.type == pygame.KEYDOWN and event.key not in ANSWER_KEYS:
                pygame.event.post(event)

    # -- drawing ------------------------------------------------------------------------

    def needs_draw(self, screen: Screen, now: float) -> bool:
        """Whether ``screen`` differs from what is shown, or a draw is due."""
        return self._full or now >= self.next_draw or self._still_of(screen) != self._still

    def draw(self, screen: Screen, now: float) -> None:
        """Draw ``screen`` and show what changed; sets when the next draw is due.

        While a pair plays, only its two frames and the bars under them are redrawn and
        pushed to the screen (a full redraw of the window costs several times more, on a
        CPU the renderer and the run need); everything is redrawn when something else
        changed.
        """
        if screen.frames is not None:
            height, width = screen.frames[0].shape[:2]
            if (width, height) != self._frame_size:
                self._frame_size = (width, height)
                self._relayout()
        self._wrap(screen)
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
            lay = self.layout
            for side, rect in enumerate(lay.cells):
                self.screen.blit(self._frame(screen, side), rect.topleft)
                bar = lay.bar(side)
                pygame.draw.rect(self.screen, PANEL, bar)
                pygame.draw.rect(
                    self.screen, BAR, (bar.left, bar.top, round(bar.width * screen.played), bar.height)
                )
                changed += [rect, bar]
            watch = lay.watch_bar
            pygame.draw.rect(self.screen, PANEL, watch)
            done = 1.0 if screen.answers_open else screen.view_progress
            colour = OPEN if screen.answers_open else ACCENT
            pygame.draw.rect(
                self.screen, colour, (watch.left, watch.top, round(watch.width * done), watch.height)
            )
            changed.append(watch)
        if full:
            pygame.display.flip()
        else:
            pygame.display.update(changed)
        self._full, self._still = False, still
        self.next_draw = min(now + IDLE_REDRAW_S, screen.next_change)

    def _still_of(self, screen: Screen) -> tuple[object, ...]:
        """What a full redraw shows besides the frames and bars."""
        return (
            screen.question,
            screen.status,
            screen.toast,
            screen.query_id,
            screen.waiting,
            screen.paused,
            screen.answers_open,
            screen.frames is None,
        )

    def _wrap(self, screen: Screen) -> None:
        """Wrap the question and the status line to the window's width; lay the window out
        again when they take another number of lines."""
        lay = self.layout
        width = max(1, lay.width - 2 * max(10, lay.width // 50))
        title, text = self._font(lay.title_size, True), self._font(lay.text_size)
        question = wrap_text(screen.question, width, lambda t: title.size(t)[0])
        status = wrap_text(screen.status, width, lambda t: text.size(t)[0])
        before = (len(self._lines["question"]), len(self._lines["status"]))
        self._lines = {"question": question, "status": status}
        if (len(question), len(status)) != before:
            self._relayout()

    def _draw_still(self, screen: Screen) -> None:
        """Everything but the clips' frames and bars: texts, frames around the clips, keys."""
        lay, surface = self.layout, self.screen
        surface.fill(BG)
        y = lay.question_y
        for line in self._lines["question"]:
            self._blit_centered(self._text(line, lay.title_size, TEXT, True), y)
            y += line_height(lay.title_size)
        y = lay.status_y
        for line in self._lines["status"]:
            self._blit_centered(self._text(line, lay.text_size, DIM), y)
            y += line_height(lay.text_size)
        note = screen.toast
        if note is None and screen.paused:
            note = "Paused: P plays on"
        if note is not None:
            self._blit_centered(self._text(note, lay.text_size, ACCENT, True), lay.note_y)
        if screen.frames is not None:
            for rect in lay.cells:
                edge = OPEN if screen.answers_open else EDGE
                pygame.draw.rect(surface, edge, rect.inflate(4, 4), 2, border_radius=3)
        else:
            for rect in lay.cells:
                pygame.draw.rect(surface, PANEL, rect, border_radius=6)
            if screen.waiting:
                self._draw_waiting(screen.waiting)
        self._draw_keys(lit=screen.answers_open)

    def _draw_waiting(self, text: str) -> None:
        """What the window waits for, in the middle of the clips' band (no clip is shown)."""
        lay = self.layout
        font = self._font(lay.title_size, True)
        lines = wrap_text(text, max(1, lay.width - 2 * max(10, lay.width // 50)), lambda t: font.size(t)[0])
        top = lay.cells[0].centery - len(lines) * line_height(lay.title_size) // 2
        for k, line in enumerate(lines):
            self._blit_centered(
                self._text(line, lay.title_size, ACCENT, True), top + k * line_height(lay.title_size)
            )

    def _frame(self, screen: Screen, side: int) -> pygame.Surface:
        """The display surface of the left (0) or right (1) frame of ``screen``."""
        assert screen.frames is not None
        index = screen.frame_index[side]
        surface = self._surfaces.get((side, index))
        if surface is None:
            frame = screen.frames[side]
            surface = pygame.image.frombuffer(frame.data, (frame.shape[1], frame.shape[0]), "RGB")
            target = self.layout.cells[side].size
            if surface.get_size() != target:
                if self.layout.nearest:
                    surface = pygame.transform.scale(surface, target)
                else:
                    surface = pygame.transform.smoothscale(surface, target)
            # In the display's pixel format, later blits of this frame (a clip loops while
            # the person watches) are plain copies.
            surface = surface.convert()
            self._surfaces[side, index] = surface
        return surface

    def _compute_layout(self) -> Layout:
        width, height = self.screen.get_size()
        _, text_size = font_sizes(width, height)
        return compute_layout(
            width,
            height,
            self._frame_size,
            question_lines=len(self._lines["question"]),
            status_lines=len(self._lines["status"]),
            key_rows=len(self._key_rows(width, text_size)),
        )

    def _relayout(self) -> None:
        self.layout = self._compute_layout()
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

    def _blit_centered(self, surface: pygame.Surface, y: int) -> None:
        self.screen.blit(surface, surface.get_rect(midtop=(self.screen.get_width() // 2, y)))

    def _item_widths(self, items: Sequence[KeyItem], size: int) -> list[int]:
        cap_h = size + 10
        widths = []
        for kind, label in items:
            if kind == "key":
                widths.append(
                    cap_h if label in _ARROWS or len(label) == 1 else self._text(label, size).get_width() + 14
                )
            elif kind == "gap":
                widths.append(2 * size)
            else:
                widths.append(self._text(label, size).get_width())
        return widths

    def _group_width(self, items: Sequence[KeyItem], size: int) -> int:
        widths = self._item_widths(items, size)
        return sum(widths) + _SPACING * (len(widths) - 1)

    def _key_rows(self, width: int, size: int) -> list[list[int]]:
        """The groups of :data:`KEY_GROUPS` in rows that fit the window's width."""
        margin = max(10, width // 50)
        widths = [self._group_width(group, size) for group in KEY_GROUPS]
        return pack_rows(widths, width - 2 * margin, _group_gap(size))

    def _draw_keys(self, lit: bool) -> None:
        """The key hints: the answer keys under each clip (dim until answers are open), the
        others in rows under them."""
        lay = self.layout
        size = lay.text_size
        for side, rect in enumerate(lay.cells):
            self._draw_row(CAPTIONS[side], rect.centerx, lay.caption_y, size, lit=lit)
        y = lay.keys_y
        for row in self._key_rows(lay.width, size):
            items: list[KeyItem] = []
            for k, index in enumerate(row):
                if k:
                    items.append(("gap", ""))
                items += KEY_GROUPS[index]
            self._draw_row(items, lay.width // 2, y, size, lit=True)
            y += lay.key_row_h

    def _draw_row(self, items: Sequence[KeyItem], centre_x: int, top: int, size: int, lit: bool) -> None:
        """Key caps and labels in a row centred on ``centre_x`` (``lit``: bright, else dim)."""
        cap_h = size + 10
        widths = self._item_widths(items, size)
        x = centre_x - (sum(widths) + _SPACING * (len(items) - 1)) // 2
        for (kind, label), w in zip(items, widths, strict=True):
            if kind == "key":
                rect = pygame.Rect(x, top, w, cap_h)
                pygame.draw.rect(self.screen, KEY_BG if lit else KEY_BG_OFF, rect, border_radius=5)
                pygame.draw.rect(self.screen, EDGE, rect, 1, border_radius=5)
                if label in _ARROWS:
                    _draw_arrow(self.screen, rect, label, TEXT if lit else FAINT)
                else:
                    text = self._text(label, size, TEXT if lit else FAINT, True)
                    self.screen.blit(text, text.get_rect(center=rect.center))
            elif kind == "text":
                text = self._text(label, size, DIM if lit else FAINT)
                self.screen.blit(text, text.get_rect(midleft=(x, top + cap_h // 2)))
            x += w + _SPACING

    def close(self) -> None:
        """Close the window (idempotent)."""
        self._surfaces.clear()
        pygame.font.quit()
        pygame.display.quit()


_ARROWS = ("left", "right", "up", "down")
_SPACING = 6


def _group_gap(size: int) -> int:
    """Pixels between two groups of key hints in a row: a ``("gap", "")`` item and the
    spacing on either side of it."""
    return 2 * size + 2 * _SPACING


def _draw_arrow(
    surface: pygame.Surface, rect: pygame.Rect, direction: str, colour: tuple[int, int, int] = TEXT
) -> None:
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

    pygame.draw.polygon(surface, colour, place(head))
    pygame.draw.polygon(surface, colour, place(shaft))


def _icon() -> pygame.Surface:
    """The window's icon: two clips side by side, as the window shows them."""
    icon = pygame.Surface((32, 32))
    icon.fill(BG)
    for x in (2, 17):
        pygame.draw.rect(icon, BAR, (x, 7, 13, 18), border_radius=2)
    return icon


def _open_display(size: tuple[int, int] | None, caption: str) -> pygame.Surface:
    """Open the window (``size`` or the default, never larger than the screen).

    Raises:
        NoDisplayError: no display can be reached (:func:`check_display`), SDL cannot open
            a window, or SDL fell back to a driver that shows nothing (off-screen, dummy)
            that the user did not choose.
    """
    check_display()
    try:
        pygame.display.init()
        driver = pygame.display.get_driver()
        if driver in ("offscreen", "dummy") and not frames.USER_SDL_VIDEODRIVER:
            raise NoDisplayError(
                f"{NO_DISPLAY_HELP} (SDL found no display and fell back to its {driver} driver, "
                "where nobody would see the window)"
            )
        pygame.font.init()
        if size is None:
            info = pygame.display.Info()
            screen_w, screen_h = info.current_w, info.current_h
            width, height = DEFAULT_SIZE
            if screen_w > 0 and screen_h > 0:
                width, height = min(width, screen_w), min(height, screen_h)
            size = (width, height)
        pygame.display.set_caption(caption)
        # before set_mode, which would otherwise load pygame's own icon through Python code
        # and lose a Ctrl-C that arrives meanwhile
        pygame.display.set_icon(_icon())
        screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    except NoDisplayError:
        pygame.display.quit()
        raise
    except pygame.error as err:
        pygame.font.quit()
        pygame.display.quit()
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (SDL could not open a window: {err})") from None
    return screen
