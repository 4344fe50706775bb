"""Does each run's reward model rank the runs' policies as the scripted person does?

Each run's policy plays ``--episodes`` fixed-length episodes of the task (acting
deterministically, from the seeds the task's measures use); each episode is scored by the
task's scripted person (its return) and by the reward model of every run (the sum of its
prediction over the episode). A reward model that scores a policy the person pays less
above one the person pays more would teach the agent the worse of the two. One row per
(policy, reward model) to ``--csv``, with the per-step correlation of the model's
reward with the person's on that policy's episodes.

    python scripts/rank_policies.py --task backflip RUN_DIR [RUN_DIR ...] --csv OUT.csv
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model
from prefrl.tasks import get_task, trust_task

COLUMNS = (
    "policy",
    "reward_model",
    "episodes",
    "person_return",
    "model_return",
    "model_rank",
    "person_rank",
    "step_correlation",
    "command",
)


def play(
    run_dir: Path, gym_id: str, episodes: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``episodes`` of the run's policy: (obs the action was taken on, actions, person's rewards)."""
    env = make_env(gym_id, fixed_length=True)
    policy = load_policy(run_dir, env)
    out = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        seen, actions, rewards = [], [], []
        done = False
        while not done:
            action = policy.act(obs[None])[0]
            seen.append(obs)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            rewards.append(info["true_reward"])
            done = terminated or truncated
        out.append((np.asarray(seen), np.asarray(actions), np.asarray(rewards)))
    env.close()
    return out


def ranks(values: list[float]) -> list[int]:
    """1 for the largest."""
    order = np.argsort(-np.asarray(values))
    rank = np.empty(len(values), dtype=int)
    rank[order] = np.arange(1, len(values) + 1)
    return rank.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", type=Path, nargs="+", help="run directories with agent and reward-model checkpoints"
    )
    parser.add_argument("--task", required=True, help="the runs' task, NAME or FILE.py:NAME")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=10_000, help="the first episode's seed (the measures')")
    parser.add_argument("--csv", type=Path, help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trust_task(args.task)  # named on the command line
    task = get_task(args.task)
    names = [str(run) for run in args.runs]
    models = {name: load_reward_model(run) for name, run in zip(names, args.runs, strict=True)}
    played = {
        name: play(run, task.gym_id, args.episodes, args.seed)
        for name, run in zip(names, args.runs, strict=True)
    }
    person = {name: float(np.mean([r.sum() for _, _, r in eps])) for name, eps in played.items()}
    rows = []
    for model_name, model in models.items():
        learned, correlation = {}, {}
        for name, eps in played.items():
            predicted = [model.predict(obs, actions) for obs, actions, _ in eps]
            learned[name] = float(np.mean([p.sum() for p in predicted]))
            correlation[name] = float(
                np.corrcoef(np.concatenate(predicted), np.concatenate([r for *_, r in eps]))[0, 1]
            )
        model_rank, person_rank = ranks(list(learned.values())), ranks(list(person.values()))
        for i, name in enumerate(names):
            rows.append(
                {
                    "policy": name,
                    "reward_model": model_name,
                    "episodes": args.episodes,
                    "person_return": round(person[name], 1),
                    "model_return": round(learned[name], 2),
                    "model_rank": model_rank[i],
                    "person_rank": person_rank[i],
                    "step_correlation": round(correlation[name], 3),
                    "command": shlex.join(["python", *sys.argv]),
                }
            )
    print("| policy | person's return | " + " | ".join(f"model of {Path(m).name}" for m in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for name in names:
        mine = [row for row in rows if row["policy"] == name]
        cells = [f"{row['model_return']:.1f} (#{row['model_rank']})" for row in mine]
        print(
            f"| {Path(name).name} | {person[name]:.0f} (#{mine[0]['person_rank']}) | "
            + " | ".join(cells)
            + " |"
        )
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
