"""Rows of docs/benchmarks/other_envs/inverted_pendulum.csv from the runs' directories.

The runs (seeds S = 0, 1, 2; about 2-3 min each here):

    prefrl train InvertedPendulum-v5 --steps 200000 --seed S --run-dir OUT/fixed-sS --no-video
    prefrl train InvertedPendulum-v5 --steps 200000 --seed S --fixed-length false --run-dir OUT/free-sS --no-video
    python docs/benchmarks/other_envs/inverted_pendulum.py OUT/*-s* > docs/benchmarks/other_envs/inverted_pendulum.csv
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from prefrl.metrics import column, read_metrics


def main() -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "run",
            "seed",
            "fixed_length",
            "clip_length",
            "labels_used",
            "steps",
            "eval_return_by_step",
            "final_eval_return",
        ]
    )
    for folder in map(Path, sys.argv[1:]):
        config = json.loads((folder / "config.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        steps, returns = column(read_metrics(folder / "metrics.csv"), "eval/mean_return")
        curve = " ".join(f"{int(step)}:{value:g}" for step, value in zip(steps, returns, strict=True))
        writer.writerow(
            [
                folder.name,
                config["seed"],
                config["fixed_length"],
                config["clip_length"],
                summary["labels_used"],
                config["steps"],
                curve,
                summary["final_eval_return"],
            ]
        )


if __name__ == "__main__":
    main()
