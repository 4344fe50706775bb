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


def test_time_to_score_curve_of_the_variants_is_its_episodes() -> None:
    episodes = ROOT / "docs/benchmarks/data/time_to_score_variants_episodes.csv"
    command = [sys.executable, str(ROOT / "scripts/bench_time_to_score.py"), "--curve", str(episodes)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    assert printed.count("\n") == 6  # header, rule, 5 runs
    assert printed in (ROOT / "docs/benchmarks/atari_speed.md").read_text()


def test_pong_reward_check_groups_are_its_heldout_clips() -> None:
    clips = ROOT / "docs/benchmarks/data/pong_reward_check_balanced_heldout.csv"
    command = [sys.executable, str(ROOT / "scripts/pong_reward_check.py"), "--groups", str(clips)]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    by_score = printed.split("\n\n")[0].splitlines()
    assert by_score[2:] == [
        "| score 1 | 14 | 0.69 | 0.49 |",
        "| score 0 | 155 | -0.09 | 0.43 |",
        "| score -1 | 71 | -0.39 | 0.19 |",
    ]
