#!/usr/bin/env python3
"""Env steps/s of PPO's rollouts collected in the agent's own process against collected
by Ray rollout workers (``prefrl train --backend ray --workers N``), with a snapshot
every step as the agent takes them.

The same PPO settings (8 envs, 128 steps a rollout), envs and seeds on every path, the
policy untrained; a private Ray cluster on this machine (loopback) with one CPU per
worker. The time is that of ``PPOAgent.collect`` alone (no learning). Prints a table
and writes a CSV.

    python scripts/bench_rollout_workers.py --envs Pendulum-v1 Hopper-v5 ALE/Pong-v5 \\
        --workers 1 2 --out docs/benchmarks/data/rollout_workers.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

from prefrl.agent.ppo import PPOAgent
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.rollout_workers import RolloutWorkers
from prefrl.utils.ray_cluster import connect


def steps_per_second(agent: PPOAgent, rollouts: int) -> float:
    """Env steps/s over ``rollouts`` rollouts with snapshots, after one to warm up."""
    agent.collect(capture_snapshots=True)
    start, before = time.perf_counter(), agent.env_steps
    for _ in range(rollouts):
        agent.collect(capture_snapshots=True)
    return (agent.env_steps - before) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "Hopper-v5"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=128, help="steps per env per rollout")
    parser.add_argument("--rollouts", type=int, default=3, help="rollouts timed per measurement")
    parser.add_argument("--out", type=Path, default=None, help="CSV to write")
    args = parser.parse_args()
    rows = []
    with connect(num_cpus=max(args.workers)):
        for env_id in args.envs:
            ppo_overrides = {"num_envs": args.num_envs, "num_steps": args.num_steps}
            config = TrainConfig(env_id=env_id, backend="ray", ppo=ppo_overrides)
            ppo = config.ppo_config()
            fixed = config.fixed_length or False
            make = lambda env_id=env_id, fixed=fixed: make_env(env_id, fixed_length=fixed)  # noqa: E731
            local = PPOAgent(VecEnv([make] * args.num_envs, capture_snapshots=True), ppo, total_steps=1)
            rows.append((env_id, 0, steps_per_second(local, args.rollouts)))
            local.envs.close()
            for workers in args.workers:
                spread = RolloutWorkers(config.to_dict(), ppo, workers, seed=0, capture_snapshots=True)
                rows.append(
                    (env_id, workers, steps_per_second(PPOAgent(spread, ppo, total_steps=1), args.rollouts))
                )
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
