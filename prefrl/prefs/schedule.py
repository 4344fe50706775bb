"""When to ask for labels: the paper's schedule, scaled to the run length.

A share of the budget (``initial_fraction``; the paper: 25% for MuJoCo) is asked about
clips of the untrained policy before RL starts. After that the label rate at env step
``T`` is proportional to ``c / (T + c)`` (the paper: ``c = 2e6`` for MuJoCo, ``5e6``
for Atari, for runs of tens of millions of steps). Here ``c = decay_fraction *
total_steps`` (default 0.1), so the shape of the schedule is the same for any run
length, and the rate's integral brings the count to exactly the budget at the end:

    labels_wanted(T) = n0 + (N - n0) * ln(1 + T / c) / ln(1 + T_total / c)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSchedule:
    """How many labels should exist by env step ``T``."""

    total_labels: int
    total_steps: int
    initial_fraction: float = 0.25
    decay_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.total_labels < 0 or self.total_steps <= 0:
            raise ValueError("total_labels must be >= 0 and total_steps > 0")
        if not 0.0 <= self.initial_fraction <= 1.0:
            raise ValueError(f"initial_fraction must be in [0, 1], got {self.initial_fraction}")
        if self.decay_fraction <= 0:
            raise ValueError(f"decay_fraction must be > 0, got {self.decay_fraction}")

    @property
    def initial_labels(self) -> int:
        """Labels asked about the untrained policy's clips before RL starts."""
        if self.total_labels == 0:
            return 0
        return min(self.total_labels, max(1, round(self.initial_fraction * self.total_labels)))

    def labels_wanted(self, env_steps: int) -> int:
        """Labels that should have been answered once the agent has taken ``env_steps`` steps."""
        n0, n = self.initial_labels, self.total_labels
        if env_steps >= self.total_steps:
            return n
        c = self.decay_fraction * self.total_steps
        share = math.log1p(max(env_steps, 0) / c) / math.log1p(self.total_steps / c)
        return min(n, n0 + math.floor((n - n0) * share))
