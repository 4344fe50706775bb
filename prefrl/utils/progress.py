"""A progress bar over env steps with a few live numbers (tqdm, on stderr)."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


class Progress:
    """``update(env_steps, **numbers)`` moves the bar to ``env_steps`` and shows ``numbers``."""

    def __init__(self, total: int, desc: str, enabled: bool = True, initial: int = 0):
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not enabled,
            mininterval=0.5,
        )
        self.n = initial

    def update(self, env_steps: int, **numbers: Any) -> None:
        shown = {k: _short(v) for k, v in numbers.items() if v is not None}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(max(0, min(env_steps, self.bar.total) - self.n))
        self.n = min(env_steps, self.bar.total)

    def close(self) -> None:
        self.bar.close()


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return value
