#!/usr/bin/env python3
"""Env steps/s of the agent's envs stepped in its own process against spread over Ray
rollout workers (``prefrl train --backend ray --workers N``), with a snapshot every step
as the agent takes them.

Random actions, the same envs and seeds on every path; a private Ray cluster on this
machine (loopback) with one CPU per worker. Prints a table and writes a CSV.

    python scripts/bench_rollout_workers.py --envs Pendulum-v1 Hopper-v5 --workers 1 2 \\
        --out docs/benchmarks/data/rollout_workers.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv, VectorEnv
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.rollout_workers import RolloutWorkers
from prefrl.utils.ray_cluster import connect


def steps_per_second(envs: VectorEnv, steps: int, seed: int = 0) -> float:
    """Env steps/s over ``steps`` vector steps (plus snapshots), after 10 to warm up."""
    envs.reset(seed=seed)
    space = envs.action_space
    space.seed(seed)
    actions = [np.stack([space.sample() for _ in range(envs.num_envs)]) for _ in range(steps + 10)]
    for t in range(10):
        envs.step(actions[t])
        envs.snapshots()
    start = time.perf_counter()
    for t in range(10, steps + 10):
        envs.step(actions[t])
        envs.snapshots()
    return steps * envs.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "Hopper-v5"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300, help="vector steps per measurement")
    parser.add_argument("--out", type=Path, default=None, help="CSV to write")
    args = parser.parse_args()
    rows = []
    with connect(num_cpus=max(args.workers)):
        for env_id in args.envs:
            local = VecEnv([lambda env_id=env_id: make_env(env_id)] * args.num_envs, capture_snapshots=True)
            base = steps_per_second(local, args.steps)
            local.close()
            rows.append((env_id, 0, base))
            config = TrainConfig(env_id=env_id, backend="ray", ppo={"num_envs": args.num_envs}).to_dict()
            for workers in args.workers:
                spread = RolloutWorkers(config, args.num_envs, workers, capture_snapshots=True)
                rows.append((env_id, workers, steps_per_second(spread, args.steps)))
                spread.close()
    load = os.getloadavg()[0]
    print(f"{'env':<14} {'workers':>7} {'env steps/s':>12} {'vs in the agent':>16}")
    table = []
    for env_id, workers, sps in rows:
        base = next(s for e, w, s in rows if e == env_id and w == 0)
        print(f"{env_id:<14} {workers:>7} {sps:>12.0f} {sps / base:>16.2f}")
        table.append(
            {
                "env_id": env_id,
                "workers": workers,
                "num_envs": args.num_envs,
                "steps_per_sec": round(sps),
                "ratio_vs_in_agent": round(sps / base, 3),
                "loadavg_1m_after": round(load, 2),
                "machine_cpus": os.cpu_count(),
                "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            }
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
