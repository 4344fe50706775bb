"""Is a run's reward model healthy? One row per run directory: how it ended, the largest
L2 weight its trainer reached, and whether any ensemble member has collapsed (weights
near zero: a member whose output no longer varies gives a constant reward).

    python scripts/reward_health.py runs/bench/every_seed/runs/*/prefrl-* [--csv OUT.csv] [--group NAME]

A member counts as collapsed when the sum of its squared weights is below 1e-2 (a
freshly built member of the default (64, 64) network has about 40).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from prefrl.metrics import read_metrics
from prefrl.reward import load_reward_model
from prefrl.rundir import RunDir

COLLAPSED_WEIGHT_NORM = 1e-2
COLUMNS = (
    "group",
    "run_dir",
    "env_id",
    "seed",
    "labels",
    "final_eval_return",
    "tie_share",
    "l2_max",
    "weight_norm_min",
    "members_collapsed",
)


def health(run_dir: Path, group: str) -> dict[str, object]:
    run = RunDir(run_dir)
    config, summary = run.read_config(), json.loads(run.summary_path.read_text())
    l2 = [float(r["reward/l2"]) for r in read_metrics(run.metrics_path) if r.get("reward/l2")]
    norms = load_reward_model(run_dir).net.weight_norms().detach().numpy()
    return {
        "group": group,
        "run_dir": str(run_dir),
        "env_id": config["env_id"],
        "seed": config["seed"],
        "labels": config["labels"],
        "final_eval_return": round(float(summary["final_eval_return"]), 2),
        "tie_share": summary.get("tie_share"),
        "l2_max": round(max(l2), 4) if l2 else None,
        "weight_norm_min": round(float(np.min(norms)), 5),
        "members_collapsed": int((norms < COLLAPSED_WEIGHT_NORM).sum()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--group", default="", help="a label for these runs in the CSV (e.g. the code version)"
    )
    parser.add_argument("--csv", type=Path, default=None, help="append the rows to this CSV")
    args = parser.parse_args()
    rows = [health(d, args.group) for d in args.run_dirs if (d / "summary.json").exists()]
    print(" ".join(f"{c:>18}" for c in COLUMNS[2:]))
    for row in rows:
        print(" ".join(f"{row[c]!s:>18}" for c in COLUMNS[2:]))
    if args.csv is not None:
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
