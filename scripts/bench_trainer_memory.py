"""Peak memory of the reward trainer on image labels: one training round of the paper's
CNN ensemble over ``--labels`` labels of two 25-step clips of 84x84x4 frames each.

    python scripts/bench_trainer_memory.py --labels 100 400 --csv OUT.csv

Each count is measured in a fresh process (its peak resident memory, ``ru_maxrss``), next
to the frames the labels hold, so that what the trainer adds on top of them shows.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHAPE = (4, 84, 84)
CLIP = 25


def measure(labels: int) -> dict[str, float]:
    """One round over ``labels`` random image labels, in this process."""
    import gymnasium as gym
    import numpy as np
    import torch

    from prefrl.prefs.clips import Clip
    from prefrl.reward.model import RewardModel, RewardModelConfig
    from prefrl.reward.trainer import PreferenceTrainer
    from prefrl.runtime.config import preference_defaults

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    config = RewardModelConfig().override(
        {
            **preference_defaults("ALE/Pong-v5")["reward_model"],
            "epochs_per_round": 1,
            "first_round_multiplier": 1,
            "min_steps_per_round": 4,
        }
    )
    model = RewardModel(SHAPE, gym.spaces.Discrete(6), config, seed=0)
    trainer = PreferenceTrainer(model, seed=0)

    def clip() -> Clip:
        obs = rng.integers(0, 255, size=(CLIP, *SHAPE), dtype=np.uint8)
        return Clip(obs, np.zeros(CLIP, np.int64), np.zeros(CLIP, np.float32), None, "ALE/Pong-v5")

    for key in range(labels):
        trainer.add(key, clip(), clip(), float(key % 2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    trainer.train_round()
    return {
        "labels": labels,
        "frames_mb": round(labels * 2 * CLIP * int(np.prod(SHAPE)) / 2**20, 1),
        "peak_rss_before_round_mb": round(before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "round_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--csv", type=Path, help="write the rows here too")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a single count, in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for labels in args.labels:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(labels)], check=True, capture_output=True, text=True
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " ---: |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
