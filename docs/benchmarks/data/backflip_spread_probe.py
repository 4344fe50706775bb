"""What the spread-schedule backflip runs do, and whether their reward models pay turning
past a whole turn. Run from the repository root:

    python docs/benchmarks/data/backflip_spread_probe.py > docs/benchmarks/data/backflip_spread_probe.csv

For each run in backflip_spread_runs, one fixed-length episode (seed 10000) of its final
policy: per stretch between restarts, the torso's largest backward turn; and, for each
run's reward model, the mean of (prediction - prediction with the turning rate set to 0)
over the steps in the air whose flight has turned past a whole turn ("past") or between
half and a whole turn ("before").
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model
from prefrl.tasks import get_task

torch.set_num_threads(1)
RUNS = [Path(f"docs/benchmarks/data/backflip_spread_runs/backflip-s{s}") for s in range(3)]
task = get_task("backflip")
print("policy,reward_model,what,value")
for run in RUNS:
    env = make_env(task.gym_id, fixed_length=True)
    policy = load_policy(run, env)
    obs, _ = env.reset(seed=10_000)
    seen, actions, trace, restarted = [], [], [], []
    for _ in range(1000):
        action = policy.act(obs[None])[0]
        seen.append(obs)
        actions.append(action)
        obs, _, _, _, info = env.step(action)
        trace.append(task.trace(env))
        restarted.append(bool(info.get("restarted", False)))
    seen, actions, trace = np.asarray(seen), np.asarray(actions), np.asarray(trace)
    starts = [0, *[i for i, r in enumerate(restarted) if r], 1000]
    turns = [
        (trace[a, 0] - trace[a : b - 1, 0].min()) / (2 * math.pi)
        for a, b in zip(starts[:-1], starts[1:], strict=True)
        if b - a >= 5
    ]
    print(f"{run.name},,restarts,{sum(restarted)}")
    print(f"{run.name},,mean backward turn per stretch,{np.mean(turns):.3f}")
    # observation: ..., touching the floor (-4), turning rate (-3), turned in this flight (-2), credit (-1)
    air = seen[:, -4] == 0
    masks = {"past": air & (seen[:, -2] > 1.0), "before": air & (seen[:, -2] > 0.5) & (seen[:, -2] < 1.0)}
    for model_run in RUNS:
        model = load_reward_model(model_run)
        for what, mask in masks.items():
            if mask.sum() == 0:
                continue
            still = seen[mask].copy()
            still[:, -3] = 0.0
            paid = model.predict(seen[mask], actions[mask]) - model.predict(still, actions[mask])
            print(f"{run.name},{model_run.name},turning paid per step {what} a whole turn ({mask.sum()} steps),{paid.mean():.3f}")
    sys.stdout.flush()
