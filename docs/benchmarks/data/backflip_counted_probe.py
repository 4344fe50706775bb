"""What each backflip_counted run's final reward model pays for a landing and for the
turning that counts, against the person (docs/benchmarks/tasks.md, "Which failed, the
reward model or PPO, with the turning observed"). Run from the repository root:

    python docs/benchmarks/data/backflip_counted_probe.py > docs/benchmarks/data/backflip_counted_probe.csv

For each run of backflip_counted (backflip_counted_runs), one fixed-length episode (seed
10000) of its final policy; on its steps with a landing credit (an observation extra,
0 to 1) and on its steps with turning that counts (rad/s), each run's reward model's
prediction less the prediction with that observation set to 0, per unit of it; on all
its steps, the slope of the prediction in the torso's height and in the cosine of its
angle. The person pays 80 per unit of credit (LANDING_BONUS), 1 per unit of turning
that counts, 4 per metre of height and 4 per unit of cos: ratios to the turning are
what a model's scale leaves comparable."""

import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model
from prefrl.tasks import get_task, trust_task

torch.set_num_threads(1)
TASK = "docs/benchmarks/data/backflip_trials/counted.py:backflip_counted"
trust_task(TASK)
task = get_task(TASK)
RUNS = [Path(f"docs/benchmarks/data/backflip_counted_runs/backflip_counted-s{s}") for s in range(3)]
# observation: height, 3 joint angles, 6 velocities, cos and sin of the torso angle, then
# the extras: ..., landing credit, turning that counts
HEIGHT, COS, CREDIT, COUNTED = 0, 10, -2, -1
STEP = 0.05  # of height (m) or cos, either side, for the slopes
print("policy,reward_model,what,value")
for run in RUNS:
    env = make_env(task.gym_id, fixed_length=True)
    policy = load_policy(run, env)
    obs, _ = env.reset(seed=10_000)
    seen, actions = [], []
    for _ in range(1000):
        action = policy.act(obs[None])[0]
        seen.append(obs)
        actions.append(action)
        obs, *_ = env.step(action)
    seen, actions = np.asarray(seen), np.asarray(actions)
    credit = seen[:, CREDIT] > 0
    turning = seen[:, COUNTED] > 0
    print(f"{run.name},,steps with a landing credit,{credit.sum()}")
    print(f"{run.name},,mean credit there,{seen[credit, CREDIT].mean() if credit.any() else 0:.3f}")
    print(f"{run.name},,steps turning that counts,{turning.sum()}")
    for model_run in RUNS:
        model = load_reward_model(model_run)
        for name, mask, col in (("credit", credit, CREDIT), ("turning", turning, COUNTED)):
            if not mask.any():
                continue
            off = seen[mask].copy()
            off[:, col] = 0.0
            effect = model.predict(seen[mask], actions[mask]) - model.predict(off, actions[mask])
            per_unit = float(effect.mean() / seen[mask, col].mean())
            print(f"{run.name},{model_run.name},pay per unit of {name},{per_unit:.4f}")
        for name, col in (("height", HEIGHT), ("cos(torso angle)", COS)):
            up, down = seen.copy(), seen.copy()
            up[:, col] += STEP
            down[:, col] -= STEP
            slope = (model.predict(up, actions) - model.predict(down, actions)) / (2 * STEP)
            print(f"{run.name},{model_run.name},pay per unit of {name},{float(slope.mean()):.4f}")
    sys.stdout.flush()
