"""What each stood.py person would pay ``capped_overturn200``'s final policies, beside what
``capped_overturn200`` pays them and their clean flips (docs/benchmarks/tasks.md, "A
landing's credit earned by standing"): does the new person rank the runs that land clean
flips above the fast flippers that do not? Three fixed-length episodes per policy (seeds
10000-10002, in capped_overturn200's env, which the policies were trained in); each
person's pay is read off the env after every step, as the env pays its own. Run from the
repository root:

    python docs/benchmarks/data/backflip_stood_returns.py > docs/benchmarks/data/backflip_stood_returns.csv
"""

import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.task_spec import EpisodeTrace
from prefrl.tasks import get_task, trust_task
from prefrl.utils.stats import spearman

torch.set_num_threads(1)
DATA = Path("docs/benchmarks/data")
POLICIES = "docs/benchmarks/data/backflip_trials/overturn.py:capped_overturn200"
PERSONS = "docs/benchmarks/data/backflip_trials/stood.py:"
ARMS = {
    "reference": "backflip_reference_runs",
    "best arm": "backflip_capped_explore_runs",
    "labels sooner": "backflip_capped_d05_runs",
    "2M steps": "backflip_capped_2M_runs",
    "best arm again": "backflip_capped_repeat_runs",
}
EPISODES = 3

trust_task(POLICIES)
trust_task(PERSONS + "stood_credit")
task = get_task(POLICIES)
clean_flips = next(m for m in task.measures if m.name == "clean flips per episode")
persons = {name: get_task(PERSONS + name).behaviour_reward for name in ("stood_credit", "stood_credit_half")}
print("arm,run,clean_flips,capped_overturn200," + ",".join(persons))
preference_runs = []  # (clean flips, {person: return})
for arm, folder in ARMS.items():
    for run in sorted((DATA / folder).glob("**/capped_overturn200-s*")):
        env = make_env(task.gym_id, fixed_length=True)
        policy = load_policy(run, env)
        flips, returns = [], {name: [] for name in ("capped_overturn200", *persons)}
        for episode in range(EPISODES):
            obs, _ = env.reset(seed=10_000 + episode)
            paid = dict.fromkeys(returns, 0.0)
            rewards, states, restarted = [], [], []
            for _ in range(1000):
                obs, _, _, _, info = env.step(policy.act(obs[None])[0])
                rewards.append(info["true_reward"])
                for name, reward in persons.items():
                    paid[name] += reward(env, None, None, None)
                states.append(task.trace(env))
                restarted.append(bool(info.get("restarted", False)))
            paid["capped_overturn200"] = sum(rewards)
            trace = EpisodeTrace(env, rewards, np.asarray(states), np.asarray(restarted))
            flips.append(clean_flips.of(trace))
            for name, value in paid.items():
                returns[name].append(value)
        name = run.relative_to(DATA / folder)
        means = ",".join(f"{np.mean(v):.0f}" for v in returns.values())
        print(f"{arm},{name},{np.mean(flips):.2f},{means}", flush=True)
        env.close()
        if arm != "reference":
            preference_runs.append((np.mean(flips), {k: np.mean(v) for k, v in returns.items()}))
flips = np.array([f for f, _ in preference_runs])
for person in preference_runs[0][1]:
    paid = np.array([r[person] for _, r in preference_runs])
    print(
        f"{person}: Spearman with clean flips over {len(flips)} preference runs {spearman(paid, flips):.2f}",
        file=sys.stderr,
    )
