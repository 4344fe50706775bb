"""The agent waits for the person: pacing a run by the answers given.

With ``pace = "wait"`` (the default when a person labels) the agent does not take its
next rollout while the answers lag behind the label schedule by more than
``max(2, 5% of the budget)``; it goes on once they have caught up. So a person who
labels slowly still gives the run its whole budget, spread as the schedule wants, instead
of the agent running out its steps first. With ``pace = "free"`` (the default for
synthetic oracles, which keep up) the agent never waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prefrl.prefs.schedule import LabelSchedule


def allowed_lag(budget: int) -> int:
    """How many answers the person may be behind the schedule before the agent waits."""
    return max(2, round(0.05 * budget))


@dataclass
class Pacer:
    """Decides, before each rollout, whether the agent waits for answers; keeps the time
    it waited. ``answered`` is read from the store at most every ``poll_s`` seconds."""

    schedule: LabelSchedule
    enabled: bool
    poll_s: float = 0.5
    waited_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    _waiting_since: float | None = None
    _checked: float = -1e9
    _behind: bool = False

    def behind(self, env_steps: int, answered: int) -> int:
        """Answers missing beyond the allowed lag at ``env_steps`` (0: no need to wait)."""
        lag = self.schedule.labels_wanted(env_steps) - answered
        return max(0, lag - allowed_lag(self.schedule.total_labels))

    def must_wait(self, env_steps: int, read_answered: Callable[[], int]) -> bool:
        """Whether the agent waits now; ``read_answered()`` counts the answers given."""
        if not self.enabled:
            return False
        now = time.monotonic()
        if now - self._checked >= self.poll_s:
            self._checked = now
            self._behind = self.behind(env_steps, read_answered()) > 0
        if self._behind and self._waiting_since is None:
            self._waiting_since = now
        elif not self._behind and self._waiting_since is not None:
            self.waited_s += now - self._waiting_since
            self._waiting_since = None
        return self._behind

    @property
    def waiting(self) -> bool:
        return self._waiting_since is not None

    def wait_share(self) -> float:
        """Share of the time since the start that the agent spent waiting for answers."""
        now = time.monotonic()
        waited = self.waited_s + (now - self._waiting_since if self._waiting_since is not None else 0.0)
        return waited / max(now - self.started, 1e-9)
