"""Telling a hung role from a busy one, for the backends that supervise roles.

A role's loop says it is alive (a message ``alive``, :class:`Beating`) about once a
second while it waits, and after every unit of work. A unit of work can take minutes (a
reward-model round over thousands of Atari labels), but it uses the CPU the whole time.
So a role counts as hung (stopped by SIGSTOP, deadlocked, blocked on a file system that
stopped answering) once it has, for ``HANG_S`` seconds, neither sent a message nor used
``HANG_CPU_S`` seconds of CPU (read from Linux's ``/proc``; where there is none, no role
is ever judged hung). Silence while the supervisor itself stood still (Ctrl-Z, then
``fg``) is forgiven. What this cannot see: a role that hangs while spinning (an endless
loop uses the CPU), and one stuck in an uninterruptible read of a dead disk (it is sent
SIGKILL, but the kernel ends it only when the read returns).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

from prefrl.errors import ConfigError
from prefrl.runtime.channels import StopFlag

HEARTBEAT_S = 1.0
"""a role's loop says it is alive at most this often"""
HANG_S = 120.0
"""seconds without a message and without CPU use after which a role counts as hung
(the environment variable ``PREFRL_HANG_S`` sets it for a run; 0 never ends a role)"""
HANG_CPU_S = 0.5
"""CPU seconds a silent role must use within ``HANG_S`` to count as working"""
PARENT_GAP_S = 5.0
"""a gap this long between two looks of the supervisor means it was stopped itself"""

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Outgoing(Protocol):
    """Where a role's messages go (an :class:`~prefrl.runtime.multiprocess.Outbox`)."""

    def put(self, kind: str, payload: Any) -> bool: ...


class Beating:
    """A role's stop flag that also says the role is alive (``put("alive", None)`` on
    its outbox, at most every ``HEARTBEAT_S``) each time the role's loop asks it."""

    def __init__(self, stop: StopFlag, outbox: Outgoing):
        self.stop, self.outbox = stop, outbox
        self._last = float("-inf")

    def is_set(self) -> bool:
        now = time.monotonic()
        if now - self._last >= HEARTBEAT_S:
            self.outbox.put("alive", None)
            self._last = now
        return self.stop.is_set()


def cpu_seconds(pid: int | None, tid: int | None = None) -> float | None:
    """The CPU time (user and system) process ``pid`` has used, all its threads, or only
    its thread ``tid``; None where there is no ``/proc`` or no such process."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # from the state on: the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def hung_message(seconds: float) -> str:
    return (
        f"hung: it sent nothing and used under {HANG_CPU_S:g} s of CPU in {seconds:.0f} s "
        "(stopped, or waiting for something that never came), so it was ended"
    )


def hang_s() -> float:
    """``PREFRL_HANG_S`` if set, else ``HANG_S``.

    Raises:
        ConfigError: ``PREFRL_HANG_S`` is not a number of seconds >= 0.
    """
    text = os.environ.get("PREFRL_HANG_S")
    if text is None:
        return HANG_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(
            f"PREFRL_HANG_S={text!r}: give the seconds after which a silent role counts as hung "
            f"(default {HANG_S:g}), or 0 to never end one"
        )
    return value


class HangWatch:
    """When each role last gave a sign of life: a message, or CPU used."""

    def __init__(self) -> None:
        self.hang_s = hang_s()
        self.last_look = time.monotonic()
        self.last_sign: dict[str, float] = {}
        self.cpu_at_sign: dict[str, float | None] = {}

    def sign(self, role: str) -> None:
        """``role`` sent a message, or (re)started."""
        self.last_sign[role], self.cpu_at_sign[role] = time.monotonic(), None

    def look(self) -> None:
        """Call once before each round of :meth:`silent_for`: forgives every role its
        silence if the supervisor has not looked for ``PARENT_GAP_S``."""
        now = time.monotonic()
        if now - self.last_look > PARENT_GAP_S:  # Ctrl-Z and fg
            for role in self.last_sign:
                self.sign(role)
        self.last_look = now

    def silent_for(self, role: str, cpu: float | None) -> float:
        """Seconds ``role`` (whose CPU time is now ``cpu``) has been hung for, 0.0 if it is not."""
        if cpu is None or role not in self.last_sign or not self.hang_s:
            return 0.0
        now = time.monotonic()
        before = self.cpu_at_sign[role]
        if before is None:
            self.cpu_at_sign[role] = cpu
        elif cpu - before >= HANG_CPU_S:
            self.last_sign[role], self.cpu_at_sign[role] = now, cpu
        silent = now - self.last_sign[role]
        return silent if silent > self.hang_s else 0.0
