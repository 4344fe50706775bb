"""A run is a directory: everything a run produces, and everything needed to resume it.

::

    RUN_DIR/
      config.json         what was asked for (env, steps, seed, hyperparameters, ...)
      metrics.csv         one row per logging point, columns named like CleanRL's keys
      summary.json        the final numbers
      learning_curve.png  true return against env steps
      checkpoints/        agent (and reward model) checkpoints
      videos/             mp4s of the policy (and of queries, in preference runs)
      prefs.sqlite        the preference store (preference runs only)
      status.json         the live state of a running preference run (for the labelling window)
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from prefrl.errors import PrefrlError

RUN_FORMAT_VERSION = 1
"""the version of the run-directory format this prefrl writes (``config.json``'s
``format_version``; a config without one is format 0, written by an older prefrl whose
checkpoints ``prefrl upgrade RUN_DIR`` converts)"""


class RunFormatError(PrefrlError):
    """A run directory written by a newer prefrl."""


class RunDir:
    """Paths and small readers/writers of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path | None, kind: str, env_id: str, seed: int) -> RunDir:
        """Make a new run directory (default ``runs/<kind>-<env>-s<seed>-<time>``)."""
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path("runs") / f"{kind}-{env_id.replace('/', '_')}-s{seed}-{stamp}"
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.checkpoints.mkdir(exist_ok=True)
        run.videos.mkdir(exist_ok=True)
        return run

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    summary_path = property(lambda self: self.path / "summary.json")
    plot_path = property(lambda self: self.path / "learning_curve.png")
    checkpoints = property(lambda self: self.path / "checkpoints")
    videos = property(lambda self: self.path / "videos")
    store_path = property(lambda self: self.path / "prefs.sqlite")
    agent_checkpoint = property(lambda self: self.checkpoints / "agent.pt")
    reward_checkpoint = property(lambda self: self.checkpoints / "reward_model.pt")
    trainer_checkpoint = property(lambda self: self.checkpoints / "reward_trainer.pt")
    status_path = property(lambda self: self.path / "status.json")

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json``, stamped with the run-directory format version."""
        write_json(self.config_path, {**config, "format_version": RUN_FORMAT_VERSION})

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            raise FileNotFoundError(
                f"{self.path} is not a prefrl run directory (no config.json). "
                "Pass the directory a `prefrl train` or `prefrl baseline` run created."
            )
        config: dict[str, Any] = json.loads(self.config_path.read_text())
        version = config.get("format_version", 0) if isinstance(config, dict) else 0
        if not isinstance(version, int) or version > RUN_FORMAT_VERSION:
            raise RunFormatError(
                f"{self.path} was written by a newer prefrl (run format {version}; this prefrl "
                f"reads up to {RUN_FORMAT_VERSION}): upgrade prefrl to open it"
            )
        return config

    @property
    def format_version(self) -> int:
        """``config.json``'s format version (0: written by an older prefrl)."""
        return int(self.read_config().get("format_version", 0))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class MetricsLogger:
    """Appends rows to a CSV; a row may add new columns (the file is then rewritten).

    Every row has ``global_step`` (env steps) and ``wall_time`` (seconds since the run
    started, carried over across resumes). Missing values are left empty.
    """

    def __init__(self, path: str | Path, wall_time_offset: float = 0.0):
        self.path = Path(path)
        self._start = time.perf_counter() - wall_time_offset
        self.columns: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = list(header or [])

    @property
    def wall_time(self) -> float:
        return time.perf_counter() - self._start

    def log(self, global_step: int, values: dict[str, float | int | str | None]) -> None:
        row: dict[str, Any] = {"global_step": global_step, "wall_time": round(self.wall_time, 3)}
        row.update({k: _fmt(v) for k, v in values.items()})
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            self._rewrite_with(self.columns + new)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def _rewrite_with(self, columns: list[str]) -> None:
        rows = read_metrics(self.path) if self.path.exists() else []
        self.columns = columns
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """All rows of a metrics CSV as dicts of strings (empty string = no value)."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], key: str) -> tuple[list[float], list[float]]:
    """``(global_steps, values)`` of the rows where ``key`` has a value."""
    xs, ys = [], []
    for row in rows:
        value = row.get(key, "")
        if value != "":
            xs.append(float(row["global_step"]))
            ys.append(float(value))
    return xs, ys
