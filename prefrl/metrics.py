"""A run's ``metrics.csv``: one row per logging point, columns named like CleanRL's keys
(``charts/SPS``, ``reward/val_accuracy``, ...). :class:`MetricsLogger` appends rows,
:func:`read_metrics` reads back the whole ones, :func:`column` and :func:`curve` turn
them into series."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefrl.rundir import refused
from prefrl.utils.io import atomic_write


class MetricsLogger:
    """Appends rows to a CSV; a row may add new columns (the file is then rewritten).

    Every row has ``global_step`` (env steps) and ``wall_time`` (seconds since the run
    started, carried over across resumes). Missing values are left empty. An existing
    file is first cut back to its last whole line: a row cut short by a crash, a full
    disk or a power loss (a tail of NUL bytes) is dropped, not glued to the next one.
    """

    def __init__(self, path: str | Path, wall_time_offset: float = 0.0):
        self.path = Path(path)
        self._start = time.perf_counter() - wall_time_offset
        self.columns: list[str] = []
        if self.path.exists():
            self._drop_torn_tail()
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = list(header or [])

    @property
    def wall_time(self) -> float:
        return time.perf_counter() - self._start

    def log(self, global_step: int, values: Mapping[str, float | int | str | None]) -> None:
        """Append a row (in one write call; what a full disk takes of it is taken back).

        Raises:
            RunDirError: the OS refused to write the file (disk full, read-only, ...).
        """
        row: dict[str, Any] = {"global_step": global_step, "wall_time": round(self.wall_time, 3)}
        row.update({k: _fmt(v) for k, v in values.items()})
        new = [k for k in row if k not in self.columns]
        try:
            if new or not self.path.exists():
                self._rewrite_with(self.columns + new)
            line = io.StringIO()
            csv.DictWriter(line, fieldnames=self.columns).writerow(row)
            data = line.getvalue().encode("utf-8")
            with self.path.open("ab", buffering=0) as f:
                end = f.seek(0, os.SEEK_END)
                try:
                    if f.write(data) != len(data):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                except OSError:
                    with contextlib.suppress(OSError):
                        f.truncate(end)
                    raise
        except OSError as err:
            raise refused(err, self.path, "writing") from None

    def _rewrite_with(self, columns: list[str]) -> None:
        rows = read_metrics(self.path) if self.path.exists() else []
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path, text.getvalue())
        self.columns = columns

    def _drop_torn_tail(self) -> None:
        """Cut the file back to its last whole line (said in one line on stderr)."""
        try:
            with self.path.open("rb") as f:
                end = size = f.seek(0, os.SEEK_END)
                keep = 0
                while end > 0:
                    start = max(0, end - 65536)
                    f.seek(start)
                    newline = f.read(end - start).rfind(b"\n")
                    if newline >= 0:
                        keep = start + newline + 1
                        break
                    end = start
            if keep == size:
                return
            os.truncate(self.path, keep)
        except OSError as err:
            raise refused(err, self.path, "writing") from None
        print(
            f"prefrl: {self.path} ended in a row cut short (a crash or a full disk): "
            f"dropped its last {size - keep} bytes",
            file=sys.stderr,
            flush=True,
        )


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """The whole rows of a metrics CSV as dicts of strings (empty string = no value). A row
    with fields missing or extra (cut short, or glued to the next one) or whose step or
    clock is neither empty nor a number is skipped, and so is a last row without its
    newline (cut inside its last field: ``300,3.0,-98`` may have been ``-98.5``)."""
    with Path(path).open(newline="") as f:
        text = f.read()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the row a kill or a power loss cut short
    return [row for row in csv.DictReader(io.StringIO(text, newline="")) if _whole(row)]


def _whole(row: dict[Any, Any]) -> bool:
    if None in row or None in row.values():  # csv.DictReader's marks of extra / missing fields
        return False
    return all(
        row.get(key) in (None, "") or _number(row[key]) is not None for key in ("global_step", "wall_time")
    )


def _number(value: str | None) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def column(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    """``(global_steps, values)`` of the rows where ``key`` has a value (a value that is
    not a number, e.g. from a damaged file, is skipped)."""
    xs, ys = [], []
    for row in rows:
        x, y = _number(row.get("global_step")), _number(row.get(key))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def curve(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    """:func:`column` in step order, one point per step: a step logged more than once (a
    role restarted from its last checkpoint logs the steps since then again) has its last
    value."""
    xs, ys = column(rows, key)
    points = dict(zip(xs, ys, strict=True))
    steps = sorted(points)
    return steps, [points[step] for step in steps]
