"""Published tables that are derived from a CSV in the repository print as they stand in the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_preferences_table_is_the_classic_grids() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts/preferences_table.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert printed.count("\n") >= 8
    assert printed in (ROOT / "docs/benchmarks/preferences.md").read_text()


def table_of(script: str, csv: str) -> str:
    """What ``script --table CSV`` prints."""
    command = [sys.executable, str(ROOT / script), "--table", str(ROOT / csv)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_transfer_table_is_its_csvs() -> None:
    printed = table_of("scripts/bench_transfer.py", "docs/benchmarks/data/transfer_pendulum.csv")
    assert printed.count("\n") >= 10
    assert printed in (ROOT / "docs/learned_reward.md").read_text()


def test_ray_grid_table_is_its_csv() -> None:
    printed = table_of("scripts/bench_ray_grid.py", "docs/benchmarks/data/ray_grid.csv")
    assert printed.count("\n") >= 3
    assert printed in (ROOT / "docs/ray.md").read_text()


def test_time_to_score_table_is_its_csv() -> None:
    printed = table_of("scripts/bench_time_to_score.py", "docs/benchmarks/data/time_to_score.csv")
    assert printed.count("\n") == 8  # header, rule, 4 targets, run length, final return, steps
    assert printed in (ROOT / "docs/benchmarks/atari_speed.md").read_text()
