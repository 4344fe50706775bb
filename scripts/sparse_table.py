"""The table of docs/benchmarks/sparse.md: preference runs on a sparse task, normalised.

Reads finished run directories (``prefrl train`` and ``prefrl baseline``) and writes one
CSV row per run: its settings, tie share, final deterministic and stochastic evaluation,
and the return normalised between the random policy (``--random``, -200 on fixed-length
MountainCar: it never reaches the flag) and the mean of the PPO-on-the-true-reward runs
given with ``--ppo`` (the same env and steps).

    python scripts/sparse_table.py --ppo runs/ppo_s0 runs/ppo_s1 runs/ppo_s2 \\
        --runs runs/pref_s0 runs/pref_s1 runs/pref_s2 --csv docs/benchmarks/data/sparse_mountaincar.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

COLUMNS = (
    "run",
    "arm",
    "seed",
    "steps",
    "labels",
    "explore_labels",
    "selection",
    "initial_fraction",
    "reward_use_actions",
    "tie_share",
    "final_eval_return",
    "final_eval_return_stochastic",
    "normalized_return",
    "normalized_return_stochastic",
)


def read(run: str) -> tuple[dict, dict]:
    path = Path(run)
    return json.loads((path / "config.json").read_text()), json.loads((path / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo", nargs="+", required=True, help="prefrl baseline runs (true reward)")
    parser.add_argument("--runs", nargs="+", required=True, help="prefrl train runs")
    parser.add_argument("--random", type=float, default=-200.0, help="the random policy's return")
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    rows = []
    for run in args.ppo:
        config, summary = read(run)
        rows.append(
            {
                "run": Path(run).name,
                "arm": "ppo_true",
                "seed": config["seed"],
                "steps": config["steps"],
                "final_eval_return": summary["final_eval_return"],
                "final_eval_return_stochastic": summary.get("final_eval_return_stochastic"),
            }
        )
    r_ppo = statistics.mean(r["final_eval_return"] for r in rows)
    for run in args.runs:
        config, summary = read(run)
        rows.append(
            {
                "run": Path(run).name,
                "arm": "prefrl",
                "seed": config["seed"],
                "steps": config["steps"],
                "labels": config["labels"],
                "explore_labels": config.get("explore_labels", 0),
                "selection": config["selection"],
                "initial_fraction": config["initial_fraction"],
                "reward_use_actions": config["reward_model"].get("use_actions", True),
                "tie_share": summary["tie_share"],
                "final_eval_return": summary["final_eval_return"],
                "final_eval_return_stochastic": summary.get("final_eval_return_stochastic"),
            }
        )
    for row in rows:
        for key, out in (
            ("final_eval_return", "normalized_return"),
            ("final_eval_return_stochastic", "normalized_return_stochastic"),
        ):
            if row.get(key) is not None:
                row[out] = round((row[key] - args.random) / (r_ppo - args.random), 3)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print("  ".join(f"{k}={row.get(k)}" for k in COLUMNS if row.get(k) is not None))
    print(f"PPO on the true reward, mean over {len(args.ppo)} seeds: {r_ppo:.1f}")


if __name__ == "__main__":
    main()
