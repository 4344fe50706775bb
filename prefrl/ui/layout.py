"""Where things go in the labelling window: a pure function of the window size, the frame
size and how many lines the texts take, tested without a window.

:func:`compute_layout` splits the window in bands, top to bottom: the header (the
question, the status line, one line for notes such as "Saved: ..." and "Paused"), the two
clips scaled to the space left, their progress bars and the bar that fills while the pair
is watched, and the keys. Nothing is ever drawn over a clip. :func:`wrap_text` breaks the
question and the status line into lines, :func:`pack_rows` the key hints into rows; both
take the width of a text from the caller, so no font is needed here. Only pygame's
``Rect`` is used (the clips' cells), no display.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygame

NEAREST_FROM_SCALE = 2.0
"""frames enlarged this much or more are scaled by a whole factor, nearest-neighbour (crisp
pixels: Atari, small classic-control frames); smaller changes of size are smoothed"""
STATUS_SEP = "     ·     "
"""what separates the parts of the status line (where it prefers to wrap)"""


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
