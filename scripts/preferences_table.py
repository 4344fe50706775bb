"""The table of docs/benchmarks/preferences.md, derived from the classic grid's results.csv.

Preferences against RL on the true reward: Pendulum-v1 at 100 labels and fixed-length
CartPole-v1 at 250, perfect teacher, random and disagreement pairs, with each env's
baselines (random policy, PPO on the true reward, on CartPole PPO on a constant reward).
The normalised returns are the grid's own (``normalized_return``, computed by
``prefrl bench`` / ``prefrl report`` against the random policy of
``prefrl/bench/cell.py``); nothing is recomputed here but medians, minima, maxima and means.

    python scripts/preferences_table.py                # reads docs/benchmarks/classic/results.csv
    python scripts/preferences_table.py --csv runs/bench/classic/results.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parent.parent / "docs/benchmarks/classic/results.csv"

# (grid env, label budget, title): the cells of the published table
ENVS = [
    ("Pendulum-v1", "100", "Pendulum-v1 (200k steps)"),
    ("CartPole-v1", "250", "CartPole-v1, fixed length 200 (100k steps)"),
]
BASELINES = [
    ("random", "random policy"),
    ("ppo_true", "PPO, true reward"),
    ("ppo_constant", "PPO, constant reward"),
]
SELECTIONS = [("random", "prefrl, random pairs"), ("disagreement", "prefrl, disagreement")]
TEACHER = "perfect"


def table(rows: list[dict[str, str]]) -> str:
    """The Markdown table: one line per env and arm, over the seeds the CSV holds."""
    lines = [
        "| env | arm | labels | seeds | normalised return: median [min, max] | true return: mean (per seed) |",
        "|---|---|---:|---:|---|---|",
    ]
    for env, budget, title in ENVS:
        first = True
        arms = [(r, label, {"arm": r}) for r, label in BASELINES] + [
            (
                "prefrl",
                label,
                {"arm": "prefrl", "budget": budget, "teacher": TEACHER, "selection": sel},
            )
            for sel, label in SELECTIONS
        ]
        for _, label, match in arms:
            group = [r for r in rows if r["env"] == env and all(r[k] == v for k, v in match.items())]
            if not group:
                continue
            group.sort(key=lambda r: int(r["seed"]))
            norm = [float(r["normalized_return"]) for r in group]
            returns = [float(r["final_return"]) for r in group]
            per_seed = ", ".join(f"{x:.1f}" for x in returns)
            lines.append(
                f"| {title if first else ''} | {label} | {match.get('budget', '')} | {len(group)} | "
                f"{_f(statistics.median(norm))} [{_f(min(norm))}, {_f(max(norm))}] | "
                f"{statistics.fmean(returns):.1f} ({per_seed}) |"
            )
            first = False
    return "\n".join(lines)


def _f(x: float) -> str:
    return f"{round(x, 2) + 0.0:.2f}"  # no "-0.00"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="a classic grid's results.csv")
    args = parser.parse_args()
    with args.csv.open(newline="") as f:
        print(table(list(csv.DictReader(f))))


if __name__ == "__main__":
    main()
