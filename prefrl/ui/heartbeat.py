"""The labelling window's heartbeat, ``RUN_DIR/window.json``: a person is there.

:class:`WindowHeartbeat` counts the window in (``sessions``: how many labelling windows
have been opened on the run), rewrites the file about once a second while the window is
open, and marks it closed when the window closes. The run (or anyone) reads it with
:func:`prefrl.rundir.window_open`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prefrl.rundir import RunDir, read_window, write_json

BEAT_S = 1.0
"""how often the file is rewritten while the window is open"""


class WindowHeartbeat:
    """Writes ``RUN_DIR/window.json`` for one labelling window.

    Creating it counts the window in (``sessions`` one more than the file said) and writes
    the file; :meth:`beat` rewrites it when :data:`BEAT_S` has passed; :meth:`close` marks it
    closed (``"open": false``) unless another window has taken the file over meanwhile. A
    run directory that cannot be written (a read-only copy) is left alone: the heartbeat
    is for the run's information, never a reason to refuse labelling.
    """

    def __init__(self, run_dir: str | Path):
        self.path = RunDir(run_dir).window_path
        self.pid = os.getpid()
        before = read_window(run_dir) or {}
        sessions = before.get("sessions")
        self.sessions = (sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else 0) + 1
        """labelling windows opened on the run, this one included"""
        self.closed = False
        self._run_dir = run_dir
        self._last = -float("inf")
        self.beat(force=True)

    def _data(self, open_: bool) -> dict[str, Any]:
        return {"pid": self.pid, "updated_at": time.time(), "sessions": self.sessions, "open": open_}

    def beat(self, force: bool = False) -> None:
        """Rewrite the file if :data:`BEAT_S` has passed since the last write (or ``force``)."""
        if self.closed:
            return
        now = time.monotonic()
        if not force and now - self._last < BEAT_S:
            return
        self._last = now
        self._write(self._data(True))

    def close(self) -> None:
        """Mark the window closed (idempotent)."""
        if self.closed:
            return
        self.closed = True
        current = read_window(self._run_dir)
        if current is not None and current.get("pid") not in (None, self.pid):
            return  # another window writes the file now
        self._write(self._data(False))

    def _write(self, data: dict[str, Any]) -> None:
        try:
            write_json(self.path, data, durable=False)  # a heartbeat: no fsync each second
        except OSError:
            pass  # read-only run directory, disk full: labelling goes on without it
