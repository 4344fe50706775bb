"""Preference runs of one setting over seeds, two at a time, each in its own process.

    python scripts/bench_variants.py NAME '{"env_id": "Pendulum-v1", "labels": 25}' [--seeds 0 1 2 3 4]

Each run goes to runs/variants/NAME/s<seed> (TrainConfig fields from the JSON, seed
added); a run whose directory already holds a summary.json is not run again. Prints
the final evaluation return of each seed; `scripts/reward_health.py` tabulates the runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RUN = """
import json, sys, torch
torch.set_num_threads(1)
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
settings, seed, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
train(TrainConfig(**{**settings, "seed": seed}), out, progress=False, video=False)
"""


def run_seed(out: Path, settings: dict[str, object], seed: int) -> float | None:
    run_dir = out / f"s{seed}"
    if not (run_dir / "summary.json").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        log = (out / f"s{seed}.log").open("w")
        subprocess.run(
            [sys.executable, "-c", RUN, json.dumps(settings), str(seed), str(run_dir)], stdout=log, stderr=log
        )
    summary = run_dir / "summary.json"
    return json.loads(summary.read_text())["final_eval_return"] if summary.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name")
    parser.add_argument("settings", type=json.loads, help="TrainConfig fields as a JSON object")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    out = Path("runs/variants") / args.name
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        returns = list(pool.map(lambda s: run_seed(out, args.settings, s), args.seeds))
    for seed, ret in zip(args.seeds, returns, strict=True):
        print(f"{args.name} seed {seed}: final eval return {ret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
