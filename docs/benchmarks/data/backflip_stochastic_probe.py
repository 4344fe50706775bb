"""Clean flips of each backflip run's final policy, deterministic (the mean action, as
the published measures) and stochastic (sampling with the run's own action noise, as in
training), over 10 fixed-length episodes (seed 10000); docs/benchmarks/tasks.md, "The stochastic
policy's measure". Run from the repository root:

    D=docs/benchmarks/data
    python $D/backflip_stochastic_probe.py $D/backflip_preference_runs/* $D/backflip_spread_runs/* \
        $D/backflip_explore_builtin_runs/* $D/backflip_counted_runs/* $D/backflip_explore_runs/* \
        $D/backflip_overturn_runs/* > $D/backflip_stochastic_probe.csv
"""

import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.tasks import get_task, measure_all, trust_task

torch.set_num_threads(1)
print("run,task,noise_beta,policy,clean_flips_mean,clean_flips_sd,backward_turns_mean")
for run in map(Path, sys.argv[1:]):
    config = json.loads((run / "config.json").read_text())
    name = config.get("task") or config.get("env_id")
    name = name.replace(f"{Path.cwd()}/", "")  # a task file's path, as the run was given it
    trust_task(name)
    task = get_task(name)
    env = make_env(task.gym_id, fixed_length=True)
    for mode in ("deterministic", "stochastic"):
        policy = load_policy(run, env)
        out = measure_all(
            partial(policy.act, deterministic=mode == "deterministic"), task, episodes=10, seed=10_000
        )
        flips = np.asarray(out["clean flips per episode"])
        turns = np.asarray(out["backward turns per episode"])
        beta = (config.get("ppo") or {}).get("noise_beta", 0.0)
        print(
            f"{run},{name},{beta},{mode},{flips.mean():.2f},{flips.std():.2f},{turns.mean():.2f}", flush=True
        )
