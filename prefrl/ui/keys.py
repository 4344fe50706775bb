"""The labelling window's keys: which key gives which session input, and the key hints
drawn under the clips. Change a key here, in both tables, so that the window shows what
it takes."""

from __future__ import annotations

import pygame

from prefrl.prefs.clips import Answer
from prefrl.ui.screen import Control

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
