"""The labelling window's pygame side: the window, keys and clicks into session inputs,
layout, and drawing a :class:`~prefrl.ui.session.Screen`.

Nothing here decides anything about labelling: :class:`LabelingView` turns pygame events
into :data:`~prefrl.ui.session.Input` values and draws the record the session gives it.
Where things go is a pure function of the window size, the frame size and how many lines
the texts take (:func:`compute_layout`, :func:`wrap_text`, :func:`pack_rows`), so it is
tested without a window. The window is split in bands, top to bottom: the header (the
question, the status line, one line for notes such as "Saved: ..." and "Paused"), the two
clips scaled to the space left, their progress bars and the bar that fills while the pair
is watched, and the keys. Nothing is ever drawn over a clip.
"""

from __future__ import annotations

import collections
import math
import os
import socket
import sys
from collections.abc import Callable, Sequence
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
    pygame.K_BACKSPACE: Control.UNDO,
    pygame.K_z: Control.UNDO,
    pygame.K_ESCAPE: Control.QUIT,
}
DEFAULT_SIZE = (1280, 720)
IDLE_REDRAW_S = 0.25
"""the longest time between two draws"""
NEAREST_FROM_SCALE = 2.0
"""frames enlarged this much or more are scaled by a whole factor, nearest-neighbour (crisp
pixels: Atari, small classic-control frames); smaller changes of size are smoothed"""
DISPLAY_PROBE_S = 2.0
"""how long the display check waits for the X server or Wayland compositor to answer"""

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
STATUS_SEP = "     ·     "
"""what separates the parts of the status line (where it prefers to wrap)"""

KeyItem = tuple[str, str]
"""``("key", label)``, ``("text", label)``: a key cap or a word of a key hint"""
KEY_GROUPS: tuple[tuple[KeyItem, ...], ...] = (
    (("key", "up"), ("key", "W"), ("text", "equally good")),
    (("key", "down"), ("key", "S"), ("text", "can't tell")),
    (("key", "Space"), ("text", "replay")),
    (("key", "P"), ("text", "pause")),
    (("key", "Bksp"), ("key", "Z"), ("text", "undo")),
    (("text", "click a clip: choose it"),),
    (("key", "Esc"), ("text", "stop")),
)
"""the key hints under the clips, in groups that are never split over two rows"""
CAPTIONS: tuple[tuple[KeyItem, ...], tuple[KeyItem, ...]] = (
    (("key", "left"), ("key", "A"), ("text", "left is better")),
    (("text", "right is better"), ("key", "D"), ("key", "right")),
)


# ---------------------------------------------------------------------- the display


def check_display() -> None:
    """Fail early when no display can be reached.

    On Linux (and other X11 systems) a display is there when ``DISPLAY`` names an X server
    that answers, or ``WAYLAND_DISPLAY`` a Wayland compositor that does (a connection to
    its socket, no window opened), or the user chose an SDL video driver themselves
    (``SDL_VIDEODRIVER`` set before prefrl started: respected as it is, e.g. ``dummy`` for
    tests). Without this check SDL would fall back to its off-screen driver and the window
    would open where nobody can see it.

    An ``SDL_VIDEODRIVER`` that prefrl itself set (it points SDL at the dummy driver for
    offscreen rendering on machines without a display) does not count: only the one the
    process started with (:data:`prefrl.render.frames.USER_SDL_VIDEODRIVER`).

    Raises:
        NoDisplayError: with how to run the window anyway.
    """
    if sys.platform in ("darwin", "win32", "cygwin") or frames.USER_SDL_VIDEODRIVER:
        return
    x11, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
    if not (x11 or wayland):
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (DISPLAY and WAYLAND_DISPLAY are not set)")
    problems = []
    if wayland:
        why = probe_wayland(wayland)
        if why is None:
            return
        problems.append(f"WAYLAND_DISPLAY={wayland}: {why}")
    if x11:
        why = probe_x11(x11)
        if why is None:
            return
        problems.append(f"DISPLAY={x11}: {why}")
    raise NoDisplayError(f"{NO_DISPLAY_HELP} ({'; '.join(problems)})")


def probe_x11(display: str, timeout_s: float = DISPLAY_PROBE_S) -> str | None:
    """None when an X server answers at ``display`` (``[host]:N[.S]``), else why not.

    A local display (no host, or ``unix``) is its socket ``/tmp/.X11-unix/XN`` (or the
    abstract one of the same name); ``host:N`` is TCP port 6000 + N (e.g. ssh's X
    forwarding, ``localhost:10.0``). Only a connection is made: nothing is sent.
    """
    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return "not a display name of the form [host]:N"
    host = host.removeprefix("unix/")  # unix/:N is a local display too
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets: list[str | bytes] = [path]
        if sys.platform.startswith("linux"):
            targets.insert(0, b"\0" + path.encode())  # the abstract socket X servers also listen on
        for target in targets:
            if _connects(socket.AF_UNIX, target, timeout_s):
                return None
        return f"no X server answers (nothing listens on {path})"
    if host.startswith("/"):  # a socket path (XQuartz style)
        return None if _connects(socket.AF_UNIX, display, timeout_s) else f"nothing listens on {display}"
    port = 6000 + int(number)
    if _connects(socket.AF_INET, (host, port), timeout_s):
        return None
    return f"no X server answers on {host}, port {port}"


def probe_wayland(name: str, timeout_s: float = DISPLAY_PROBE_S) -> str | None:
    """None when a Wayland compositor listens on ``name`` (relative to ``XDG_RUNTIME_DIR``
    unless absolute), else why not."""
    if not name.startswith("/"):
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if not runtime:
            return "XDG_RUNTIME_DIR is not set, so its socket cannot be found"
        name = os.path.join(runtime, name)
    return None if _connects(socket.AF_UNIX, name, timeout_s) else f"no compositor listens on {name}"


def _connects(family: int, address: str | bytes | tuple[str, int], timeout_s: float) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(address)
        return True
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------- layout (pure)


def font_sizes(width: int, height: int) -> tuple[int, int]:
    """``(title, text)`` font sizes in pixels for a window of this size."""
    title = max(15, min(32, height // 24, width // 22))
    text = max(12, min(19, height // 38, width // 34))
    return title, text


def line_height(size: int) -> int:
    return round(size * 1.3)


def wrap_text(text: str, max_width: int, measure: Callable[[str], int], sep: str = STATUS_SEP) -> list[str]:
    """``text`` in lines of at most ``max_width`` (``measure``: a string's width), broken
    at ``sep`` first (the status line's separator), then between words. A single word
    wider than ``max_width`` gets a line of its own."""
    lines: list[str] = []
    current = ""
    for part in text.split(sep):
        candidate = f"{current}{sep}{part}" if current else part
        if measure(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        for word in part.split(" "):
            candidate = f"{current} {word}" if current else word
            if measure(candidate) <= max_width or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
    if current or not lines:
        lines.append(current)
    return lines


def pack_rows(widths: Sequence[int], max_width: int, gap: int) -> list[list[int]]:
    """Indices of items of ``widths`` in rows of at most ``max_width`` (``gap`` between two
    items), in order; an item wider than ``max_width`` gets a row of its own."""
    rows: list[list[int]] = []
    used = 0
    for i, w in enumerate(widths):
        if rows and used + gap + w <= max_width:
            rows[-1].append(i)
            used += gap + w
        else:
            rows.append([i])
            used = w
    return rows


@dataclass(frozen=True)
class Layout:
    """Where things go in a window of a given size, for clips of a given frame size.

    Attributes:
        title_size, text_size: font sizes.
        question_y: top of the question's first line; ``status_y``, ``note_y`` likewise
            for the status line and the note line (toasts, "Paused").
        header_bottom: where the header band ends: nothing of it reaches lower.
        cells: the left and the right clip, as shown (scaled, aspect ratio kept).
        scale: frame pixels -> screen pixels.
        nearest: scale by nearest neighbour (a whole factor) rather than smoothly.
        bars_y: top of the clips' progress bars; ``watch_y``: of the bar that fills while
            the pair is watched; ``caption_y``: of the left/right key hints; ``keys_y``: of
            the first row of the other key hints (``key_row_h`` apart).
    """

    width: int
    height: int
    title_size: int
    text_size: int
    question_y: int
    status_y: int
    note_y: int
    header_bottom: int
    cells: tuple[pygame.Rect, pygame.Rect]
    scale: float
    nearest: bool
    bars_y: int
    watch_y: int
    caption_y: int
    keys_y: int
    key_row_h: int

    @property
    def watch_bar(self) -> pygame.Rect:
        left, right = self.cells
        return pygame.Rect(left.left, self.watch_y, right.right - left.left, 4)

    def bar(self, side: int) -> pygame.Rect:
        cell = self.cells[side]
        return pygame.Rect(cell.left, self.bars_y, cell.width, 4)


def compute_layout(
    width: int,
    height: int,
    frame_size: tuple[int, int],
    *,
    question_lines: int = 1,
    status_lines: int = 1,
    key_rows: int = 1,
) -> Layout:
    """The layout of a ``width`` x ``height`` window showing frames of ``frame_size``
    (width, height), with the question and the status line wrapped into the given number
    of lines and the key hints into ``key_rows`` rows.

    The clips take the space the texts leave, side by side, scaled up or down to fill it
    with their aspect ratio kept (by a whole factor, nearest-neighbour, from
    :data:`NEAREST_FROM_SCALE` up); the block of clips, bars and key hints is centred in it.
    """
    title_size, text_size = font_sizes(width, height)
    pad = max(6, height // 60)
    margin = max(10, width // 50)
    question_y = pad
    status_y = question_y + question_lines * line_height(title_size) + pad // 2
    note_y = status_y + status_lines * line_height(text_size) + pad // 3
    header_bottom = note_y + line_height(text_size) + pad // 2
    cap_h = text_size + 10
    key_row_h = cap_h + 6
    # under each clip: its progress bar, the watching bar, the captions, the key rows
    below = 8 + 4 + 6 + 4 + 10 + cap_h + pad + key_rows * key_row_h + pad
    cell_w = max(1, (width - 3 * margin) // 2)
    cell_h = max(1, height - header_bottom - pad - below)
    fw, fh = max(1, frame_size[0]), max(1, frame_size[1])
    scale = min(cell_w / fw, cell_h / fh)
    nearest = scale >= NEAREST_FROM_SCALE
    if nearest:
        scale = float(math.floor(scale))
    w, h = max(1, round(fw * scale)), max(1, round(fh * scale))
    gap = min(max(width - 2 * w - 2 * margin, margin), 3 * margin)
    x = (width - 2 * w - gap) // 2
    y = header_bottom + pad + max(0, (cell_h - h) // 2)
    left, right = pygame.Rect(x, y, w, h), pygame.Rect(x + w + gap, y, w, h)
    bars_y = y + h + 8
    watch_y = bars_y + 4 + 6
    caption_y = watch_y + 4 + 10
    keys_y = caption_y + cap_h + pad
    return Layout(
        width=width,
        height=height,
        title_size=title_size,
        text_size=text_size,
        question_y=question_y,
        status_y=status_y,
        note_y=note_y,
        header_bottom=header_bottom,
        cells=(left, right),
        scale=scale,
        nearest=nearest,
        bars_y=bars_y,
        watch_y=watch_y,
        caption_y=caption_y,
        keys_y=keys_y,
        key_row_h=key_row_h,
    )


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
        screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    except NoDisplayError:
        pygame.display.quit()
        raise
    except pygame.error as err:
        pygame.font.quit()
        pygame.display.quit()
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (SDL could not open a window: {err})") from None
    return screen
