"""One process at a time: an exclusive ``flock`` on a lock file, held for as long as a
process works in a directory (a run's ``run.lock``, a grid's ``bench.lock``).

The kernel lets go of the lock when the process ends, however it ends (``kill -9``, a
crash, a power loss), so a lock is never left behind: a lock file nobody holds says
nothing. The holder writes its pid into the file, for the message another process gives.
Linux and macOS (``fcntl``); where there is no ``flock`` (or a file system without it)
nothing is locked, :func:`exclusive` says so (it yields False) and :func:`lock_held`
cannot tell: the caller must tell another way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None  # type: ignore[assignment]

_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
BUSY_TRIES = 5
BUSY_WAIT_S = 0.02
"""a lock found busy is tried again this many times in all, this far apart: a process
testing it (:func:`lock_held`, a brief shared lock) holds it for a moment only"""
_held_here: set[str] = set()
"""the lock files this process holds (its own lock is no other process's)"""


class LockBusy(Exception):
    """Another process holds the lock; ``pid``: its process id, when it wrote it."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is held by {'process ' + str(pid) if pid else 'another process'}")
        self.path, self.pid = path, pid


@contextlib.contextmanager
def exclusive(path: str | Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (made if missing) for the ``with`` block; yields
    whether it is really held: False where there is no ``flock`` (or the file system has
    none), and then nothing is locked. Waits at most :data:`BUSY_TRIES` x
    :data:`BUSY_WAIT_S` (a process testing the lock holds it a moment), then raises.

    Raises:
        LockBusy: another process (or another ``exclusive`` of this one) holds it.
        OSError: the lock file cannot be opened (a read-only directory, a full disk).
    """
    path = Path(path)
    with path.open("a+") as f:
        if fcntl is None or not _lock_retrying(f):
            yield False  # no flock here (or on this file system): nothing to hold
            return
        key = os.path.realpath(path)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _held_here.add(key)
        try:
            yield True
        finally:
            _held_here.discard(key)
            fcntl.flock(f, fcntl.LOCK_UN)


def _lock_retrying(f: IO[str]) -> bool:
    """:func:`_lock` ``LOCK_EX``, tried again while busy, :data:`BUSY_TRIES` times in all."""
    assert fcntl is not None
    for _ in range(BUSY_TRIES - 1):
        try:
            return _lock(f, fcntl.LOCK_EX)
        except LockBusy:
            time.sleep(BUSY_WAIT_S)
    return _lock(f, fcntl.LOCK_EX)


def lock_held(path: str | Path) -> bool | None:
    """Whether another process holds ``path``'s lock now: False when nobody does, the
    file is missing, or this process holds it; None where locks cannot be told (no
    ``flock``, or a file system without it). Writes nothing."""
    path = Path(path)
    if os.path.realpath(path) in _held_here:
        return False
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        f = path.open("r")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    with f:
        try:
            # shared: two processes asking at once do not see each other as the holder
            if not _lock(f, fcntl.LOCK_SH):
                return None
        except LockBusy:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def lock_holder(path: str | Path) -> int | None:
    """The pid the holder of ``path``'s lock wrote in it, or None (not yet written,
    unreadable)."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _lock(f: IO[str], kind: int) -> bool:
    """Take the lock ``kind`` on ``f`` without waiting: True once taken, False where the
    file system does not lock.

    Raises:
        LockBusy: another process holds it.
    """
    assert fcntl is not None
    try:
        fcntl.flock(f, kind | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in _BUSY:
            raise LockBusy(Path(f.name), lock_holder(f.name)) from None
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return False
        raise
    return True
