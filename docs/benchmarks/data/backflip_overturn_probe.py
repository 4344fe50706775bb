"""What the over-rotation-charged backflip runs do, and whether their reward models learned
the charge. Run from the repository root:

    python docs/benchmarks/data/backflip_overturn_probe.py RUN ... > docs/benchmarks/data/backflip_overturn_probe.csv

RUN: run directories of the `capped_overturn200` person (backflip_trials/overturn.py);
the spread-schedule runs of the built-in person (backflip_spread_runs), whose persons
never charged for over-rotation, are probed alongside as the control. For each RUN, one
fixed-length episode (seed 10000) of its final policy: restarts, and per stretch between
restarts the torso's largest backward turn. For each reward model, over the steps of that
episode in the air whose flight has turned past a whole turn: the mean of (prediction -
prediction with the flight's turn set back to one whole turn), the charge the model has
learned (the person's: -200 times the excess), and the mean of (prediction - prediction
with the turning rate set to 0), the turning it pays there (the person: nothing).
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model
from prefrl.tasks import get_task, trust_task

torch.set_num_threads(1)
TASK = "docs/benchmarks/data/backflip_trials/overturn.py:capped_overturn200"
trust_task(TASK)
task = get_task(TASK)
RUNS = [Path(run) for run in sys.argv[1:]]
CONTROLS = [Path(f"docs/benchmarks/data/backflip_spread_runs/backflip-s{s}") for s in range(3)]
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
    past = (seen[:, -4] == 0) & (seen[:, -2] > 1.0)
    print(f"{run.name},,steps in the air past a whole turn,{past.sum()}")
    if past.sum() == 0:
        continue
    excess = float(np.mean(seen[past, -2] - 1.0))
    print(f"{run.name},,mean turn past a whole one (turns),{excess:.3f}")
    print(f"{run.name},,the person's charge per step there,{-200.0 * excess:.2f}")
    for model_run in [*RUNS, *CONTROLS]:
        model = load_reward_model(model_run)
        at_one, still = seen[past].copy(), seen[past].copy()
        at_one[:, -2] = 1.0
        still[:, -3] = 0.0
        now = model.predict(seen[past], actions[past])
        charged = float(np.mean(now - model.predict(at_one, actions[past])))
        paid = float(np.mean(now - model.predict(still, actions[past])))
        print(f"{run.name},{model_run.name},charge learned per step past a whole turn,{charged:.3f}")
        print(f"{run.name},{model_run.name},turning paid per step past a whole turn,{paid:.3f}")
    sys.stdout.flush()
