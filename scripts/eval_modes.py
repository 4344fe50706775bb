"""Deterministic against stochastic evaluation of a run's final policy, and why they differ.

For each run directory (prefrl train or prefrl baseline) it evaluates the saved policy on
the same episode starts twice: taking the most likely action (deterministic, the
headline ``final_eval_return``) and sampling as in training (stochastic). For each mode it
reports the mean return, the share of episodes that end before the horizon would allow
(the inner episode terminated: MountainCar's flag), and, along the deterministic
episodes, how sure the policy is of its action (mean probability of the most likely
action) and how often the car stands nearly still (|velocity| < 0.001) at the end.

    python scripts/eval_modes.py RUN_DIR [RUN_DIR ...] [--episodes 50] [--csv OUT.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env


def rollout(policy, env_id: str, fixed_length, episodes: int, deterministic: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    returns, reached, still, confidence = [], [], [], []
    for i in range(episodes):
        env = make_env(env_id, fixed_length=fixed_length)
        obs, _ = env.reset(seed=seed + i)
        total, done, goal = 0.0, False, False
        while not done:
            x = policy.obs_norm(obs[None]).reshape(1, -1)
            logits = policy.actor._forward(policy.actor.actor, x)[0]
            probs = np.exp(logits - logits.max())
            confidence.append(float(probs.max() / probs.sum()))
            action = policy.act(obs[None], deterministic=deterministic, rng=rng)[0]
            obs, _, terminated, truncated, info = env.step(action)
            total += float(info.get("true_reward", 0.0))
            goal |= bool(info.get("terminated_inner", False))
            done = terminated or truncated
        returns.append(total)
        reached.append(goal)
        still.append(abs(float(np.ravel(obs)[-1])) < 1e-3 and not goal)
        env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "goal_share": float(np.mean(reached)),
        "stuck_share": float(np.mean(still)),
        "mean_confidence": float(np.mean(confidence)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        config = json.loads((Path(run) / "config.json").read_text())
        env_id, fixed_length = config["env_id"], config.get("fixed_length") or False
        env = make_env(env_id, fixed_length=fixed_length)
        policy = load_policy(run, env)
        env.close()
        for deterministic in (True, False):
            stats = rollout(policy, env_id, fixed_length, args.episodes, deterministic, seed=10_000)
            row = {"run": Path(run).name, "mode": "deterministic" if deterministic else "stochastic", **stats}
            rows.append(row)
            print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
