"""The playback clock of the pair on screen: which frame of each clip to show at time
``now``, looping, replay and pause. Times are ``time.perf_counter()`` seconds."""

from __future__ import annotations

import math
from dataclasses import dataclass

LOOP_HOLD_S = 0.4
"""the last frame stays this long before a clip starts again, so its end is seen"""


@dataclass
class Playback:
    """The playback clock of a pair: which frame of each clip to show at time ``now``.

    Both clips start together and loop together over the longer one: a shorter clip holds
    its last frame, and the last frame of the longer one stays :data:`LOOP_HOLD_S` before
    both start again.

    Attributes:
        lengths: frames of the left and the right clip.
        fps: frames per second.
        start: when the current loop started (shifted by the time spent paused).
        paused_at: when it was paused (None: playing).
    """

    lengths: tuple[int, int]
    fps: float
    start: float
    paused_at: float | None = None
    hold_s: float = LOOP_HOLD_S

    @property
    def length(self) -> int:
        return max(self.lengths)

    @property
    def period(self) -> float:
        """Seconds of one loop: the longer clip, then the hold."""
        return self.length / self.fps + self.hold_s

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def _t(self, now: float) -> float:
        return ((self.paused_at if self.paused_at is not None else now) - self.start) % self.period

    def index(self, now: float) -> int:
        """Frame of the longer clip at ``now``."""
        return min(self.length - 1, int(self._t(now) * self.fps))

    def frames(self, now: float) -> tuple[int, int]:
        """Frame of the left and of the right clip at ``now``."""
        index = self.index(now)
        return min(index, self.lengths[0] - 1), min(index, self.lengths[1] - 1)

    def played(self, now: float) -> float:
        """Share of the longer clip played at ``now`` (1 during the hold)."""
        return min(1.0, self._t(now) * self.fps / self.length)

    def next_change(self, now: float) -> float:
        """When the frame shown next changes (``inf`` while paused)."""
        if self.paused_at is not None:
            return math.inf
        t, index = self._t(now), self.index(now)
        if index < self.length - 1:
            return now + (index + 1) / self.fps - t
        return now + self.period - t

    def restart(self, now: float) -> None:
        """Play from the first frame (and unpause)."""
        self.start = now
        self.paused_at = None

    def toggle_pause(self, now: float) -> None:
        if self.paused_at is None:
            self.paused_at = now
        else:
            self.start += now - self.paused_at
            self.paused_at = None
