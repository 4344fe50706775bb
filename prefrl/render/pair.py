"""Pairs of clips side by side: the frames and videos of a query (left clip, right clip).

:func:`compose_pair` puts two clips' frames next to each other, with a gap and a caption
("left" / "right") under each; :func:`write_pair_video` writes them to an mp4 that plays
at the env's own speed (its ``render_fps``); :func:`render_pair_video` renders two clips
(:class:`~prefrl.prefs.clips.Clip`) from their snapshots and writes their video.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prefrl.render.video import write_video

if TYPE_CHECKING:
    from prefrl.prefs.clips import Clip
    from prefrl.render.frames import SnapshotRenderer

GAP = 16
"""pixels between the two clips (and around them)"""
CAPTION_HEIGHT = 30
"""pixels of the caption strip under each clip"""
BACKGROUND = (30, 30, 36)
CAPTION_COLOR = (235, 235, 240)
Frames = Sequence[np.ndarray] | np.ndarray


def pad_clip(frames: Frames, length: int) -> np.ndarray:
    """``frames`` ``(T, H, W, 3)`` lengthened to ``length`` frames by holding its last frame.

    A shorter clip then stands still at its end while the longer one finishes, rather
    than going black or starting again out of step.

    Raises:
        ValueError: ``frames`` is empty, or ``length`` is shorter than it.
    """
    array = np.asarray(frames)
    if len(array) == 0:
        raise ValueError("a clip to show has no frames")
    if length < len(array):
        raise ValueError(f"cannot pad {len(array)} frames to {length}")
    if length == len(array):
        return array
    hold = np.repeat(array[-1:], length - len(array), axis=0)
    return np.concatenate([array, hold])


def compose_pair(
    left: Frames,
    right: Frames,
    *,
    gap: int = GAP,
    captions: tuple[str, str] | None = ("left", "right"),
) -> np.ndarray:
    """The two clips side by side, as one clip.

    Args:
        left, right: uint8 RGB frames ``(T, H, W, 3)``; lengths and sizes may differ (the
            shorter clip holds its last frame, a smaller frame is centred in its cell).
        gap: pixels of background between the clips and around them.
        captions: text under the left and the right clip; None for no caption strip.

    Returns:
        uint8 frames ``(max(T_left, T_right), H, W, 3)`` with
        ``H = gap + max(H_left, H_right) + caption strip + gap`` and
        ``W = gap + W_left + gap + W_right + gap``.

    Raises:
        ValueError: a clip has no frames, or its frames are not ``(H, W, 3)`` uint8.
    """
    clips = [np.asarray(left), np.asarray(right)]
    for name, clip in zip(("left", "right"), clips, strict=True):
        if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
            raise ValueError(
                f"the {name} clip must be uint8 frames (T, H, W, 3), got {clip.dtype} {clip.shape}"
            )
    length = max(len(c) for c in clips)
    clips = [pad_clip(c, length) for c in clips]
    cell_h = max(c.shape[1] for c in clips)
    strip = CAPTION_HEIGHT if captions is not None else 0
    height = gap + cell_h + strip + gap
    width = gap + clips[0].shape[2] + gap + clips[1].shape[2] + gap
    out = np.empty((length, height, width, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    x = gap
    for k, clip in enumerate(clips):
        h, w = clip.shape[1:3]
        y = gap + (cell_h - h) // 2
        out[:, y : y + h, x : x + w] = clip
        if captions is not None:
            text = _caption(captions[k], w, strip)
            out[:, gap + cell_h : gap + cell_h + strip, x : x + w] = text
        x += w + gap
    return out


def write_pair_video(
    left_frames: Frames,
    right_frames: Frames,
    path: str | Path,
    fps: float,
    *,
    gap: int = GAP,
    captions: tuple[str, str] | None = ("left", "right"),
) -> Path:
    """Write the two clips side by side to ``path`` (``.mp4``, or ``.gif``) and return it.

    Args:
        left_frames, right_frames: uint8 RGB frames ``(T, H, W, 3)`` (see :func:`compose_pair`).
        path: where to write; parent directories are created.
        fps: playback speed in frames per second: the env's
            :func:`~prefrl.render.frames.render_fps`, so the video plays in real time.
        gap, captions: as in :func:`compose_pair`.

    Raises:
        ValueError: as :func:`compose_pair`, or ``fps`` is not positive.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return write_video(compose_pair(left_frames, right_frames, gap=gap, captions=captions), path, fps)


def render_pair_video(renderer: SnapshotRenderer, left: Clip, right: Clip, path: str | Path) -> Path:
    """Render two clips from their snapshots and write them side by side to ``path``.

    Plays at ``renderer.fps`` (the env's own speed). For ``RUN_DIR/videos/`` copies of the
    queries a person was shown.

    Raises:
        ValueError: a clip has no snapshots (it was cut without capturing them).
    """
    for name, clip in (("left", left), ("right", right)):
        if clip.snapshots is None:
            raise ValueError(f"the {name} clip {clip.clip_id} has no snapshots, so it cannot be rendered")
    assert left.snapshots is not None and right.snapshots is not None
    frames = renderer.render(left.snapshots), renderer.render(right.snapshots)
    return write_pair_video(*frames, path, renderer.fps)


@cache
def _caption(text: str, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8: ``text`` centred on the background colour."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    size = max(10, int(height * 0.6))
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: only the small bitmap font
        font = ImageFont.load_default()
    draw.text((width / 2, height / 2), text, fill=CAPTION_COLOR, font=font, anchor="mm")
    array = np.asarray(image, dtype=np.uint8)
    array.setflags(write=False)
    return array
