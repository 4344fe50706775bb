"""The flights of the explore runs' final policies, and how long each landing stays
upright (docs/benchmarks/tasks.md, "Exploring first, pairs chosen to differ"). Run from
the repository root:

    python docs/benchmarks/data/backflip_explore_landings.py > docs/benchmarks/data/backflip_explore_landings.csv
    python docs/benchmarks/data/backflip_explore_landings.py backflip docs/benchmarks/data/backflip_explore_builtin_runs/backflip-s* > docs/benchmarks/data/backflip_explore_builtin_landings.csv

(the second: the task and runs to trace; the first traces the counted task's explore runs;
runs of the same name, repeats of one run, are named by their folder too: r1/NAME).
For each run, one fixed-length episode (seed 10000) of its final
policy; for each flight (the foot off the floor) that turns more than half a turn either
way: its first step, its steps in the air, its backward turns in the air (negative:
forwards), and the steps upright after it lands (torso within 30 degrees of vertical and
at least 0.8 m high, the clean-flip measure's pose, which asks for 25)."""

import math
import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.tasks import get_task, trust_task

torch.set_num_threads(1)
TASK = "docs/benchmarks/data/backflip_trials/counted.py:backflip_counted"
RUNS = [Path(f"docs/benchmarks/data/backflip_explore_runs/backflip_counted-s{s}") for s in range(3)]
if len(sys.argv) > 2:
    TASK, RUNS = sys.argv[1], [Path(run) for run in sys.argv[2:]]
trust_task(TASK)
task = get_task(TASK)
print("run,flight_start,steps_in_air,turns_in_air,upright_steps_after")
same_names = len({run.name for run in RUNS}) < len(RUNS)  # repeats of one run: named by their folder too
for run in RUNS:
    name = f"{run.parent.name}/{run.name}" if same_names else run.name
    env = make_env(task.gym_id, fixed_length=True)
    policy = load_policy(run, env)
    obs, _ = env.reset(seed=10_000)
    trace = []
    for _ in range(1000):
        obs, *_ = env.step(policy.act(obs[None])[0])
        trace.append(task.trace(env))  # torso angle, torso height, foot on the floor
    angle, height, foot = np.asarray(trace).T
    upright = (np.cos(angle) > math.cos(math.radians(30))) & (height >= 0.8)
    step = 0
    while step < len(foot):
        if foot[step]:
            step += 1
            continue
        landed = step
        while landed < len(foot) and not foot[landed]:
            landed += 1
        turns = (angle[step] - angle[landed - 1]) / (2 * math.pi)
        stood = landed
        while stood < len(upright) and upright[stood]:
            stood += 1
        if abs(turns) > 0.5:
            print(f"{name},{step},{landed - step},{turns:.2f},{stood - landed}")
        step = landed
