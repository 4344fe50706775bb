"""How many steps each landing_hold.py person's flag is on in one fixed-length episode
(seed 10000) of ``capped_overturn200``'s final policies: its references and its
preference runs of seeds 2 and 4 (docs/benchmarks/tasks.md, "A landing left early,
charged or paid"). Run from the repository root:

    python docs/benchmarks/data/backflip_landing_hold_flags.py > docs/benchmarks/data/backflip_landing_hold_flags.csv
"""

from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.tasks import get_task, trust_task

torch.set_num_threads(1)
DATA = Path("docs/benchmarks/data")
POLICIES = "docs/benchmarks/data/backflip_trials/overturn.py:capped_overturn200"
PERSONS = "docs/benchmarks/data/backflip_trials/landing_hold.py:"
RUNS = [
    *(DATA / f"backflip_reference_runs/capped_overturn200-s{s}" for s in (2, 4)),
    *(DATA / f"backflip_capped_explore_runs/capped_overturn200-s{s}" for s in (2, 4)),
]
trust_task(POLICIES)
trust_task(PERSONS + "held_landing40")
task = get_task(POLICIES)
flags = {
    name: get_task(PERSONS + name).obs_extras[-1].read
    for name in ("early_takeoff50", "lean_in_hold100", "held_landing40")
}
print("run,person,steps_flag_on,stretches")
for run in RUNS:
    env = make_env(task.gym_id, fixed_length=True)
    policy = load_policy(run, env)
    obs, _ = env.reset(seed=10_000)
    on = {name: [] for name in flags}
    for _ in range(1000):
        obs, *_ = env.step(policy.act(obs[None])[0])
        for name, read in flags.items():
            on[name].append(read(env.unwrapped))
    for name, values in on.items():
        flag = np.asarray(values)
        stretches = int((np.diff(np.r_[0.0, flag]) > 0).sum())
        print(f"{run.parent.name}/{run.name},{name},{int(flag.sum())},{stretches}")
