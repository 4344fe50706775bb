"""The base of the three roles: one unit of work per ``step()``, ``run()`` loops it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from prefrl.runtime.channels import StopFlag


class Role(ABC):
    """A role (agent, labeler, reward trainer), independent of how it is run.

    ``step()`` does one unit of work and returns whether it did any (False: nothing to
    do right now). ``done`` becomes True when the role has finished its job. Backends
    call ``step()`` in a loop (:meth:`run` in a process, interleaved in-process).
    """

    name: str = "role"
    idle_sleep: float = 0.02
    done: bool = False

    @abstractmethod
    def step(self) -> bool: ...

    def run(self, stop: StopFlag) -> None:
        """Step until stopped or done, sleeping briefly whenever there is nothing to do."""
        try:
            while not stop.is_set() and not self.done:
                if not self.step():
                    time.sleep(self.idle_sleep)
        finally:
            self.close()

    def close(self) -> None:  # noqa: B027 - optional hook, most roles override it
        """Save what must survive and release resources (called once, at the end)."""
