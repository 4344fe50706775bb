"""Can a reward model learn a task's scripted person from clip comparisons? Checked offline.

Before a long preference run, and without one: clips of several policies (agent
checkpoints, e.g. of PPO on the scripted person's own reward at several points of its
training, the untrained policy and uniformly random actions), cut from fixed-length
episodes as a run cuts them (the task's clip length), split by episode into a training
and a held-out pool. ``--labels`` random pairs of the training pool are answered by the
perfect scripted person (the larger sum of its per-step reward wins, equal sums tie) and
prefrl's reward model (the task's env's reward-model settings) is trained on them for
``--rounds`` rounds, as ``prefrl fit-reward`` does. Reported on the held-out pool: the
share of ``--test-pairs`` random pairs with a strict preference that the ensemble orders
as the person does, and the Pearson and Spearman correlation of the ensemble's clip sums
with the person's, over all held-out clips and within each policy's clips.

Prints a table and appends one CSV row per (task, seed, labels, group) to ``--csv``.

    python scripts/bench_learnability.py --task backflip --policies runs/ckpt/*.pt --labels 900 \\
        --csv docs/benchmarks/data/backflip_learnability.csv
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.agent.checkpoint import TrainedPolicy
from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.envs.make import base_env_id, make_env
from prefrl.prefs.clips import Clip
from prefrl.reward.model import RewardModel, RewardModelConfig
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.runtime.config import PREFERENCE_DEFAULTS
from prefrl.tasks import get_task, trust_task
from prefrl.utils.checkpoint import load_checkpoint
from prefrl.utils.stats import spearman


@dataclass
class Source:
    """Clips of one policy, each ``(clip, episode index)``."""

    name: str
    clips: list[tuple[Clip, int]]


def collect(task: Any, name: str, act: Any, episodes: int, seed: int) -> Source:
    """Cut ``episodes`` fixed-length episodes of ``act`` into the task's clips."""
    env = make_env(task.gym_id, fixed_length=True)
    length = task.clip_length
    clips: list[tuple[Clip, int]] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        observations, actions, rewards = [], [], []
        done = False
        while not done:
            action = act(obs[None])[0]
            observations.append(obs)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            rewards.append(info["true_reward"])
            done = terminated or truncated
        for start in range(0, len(rewards) - length + 1, length):
            window = slice(start, start + length)
            clip = Clip(
                np.asarray(observations[window]),
                np.asarray(actions[window]),
                np.asarray(rewards[window], dtype=np.float64),
                None,
                task.gym_id,
                episode_step=start,
            )
            clips.append((clip, episode))
    env.close()
    return Source(name, clips)


def load_acting_on_prefix(path: str, space_obs: gym.spaces.Box, space_act: gym.spaces.Box) -> Any:
    """``act(obs[B, D])`` of an agent checkpoint. A policy whose network takes fewer
    inputs, ``d < D``, was trained before the task appended observation extras (they
    come last): it acts on the first ``d`` entries, and its clips are still clips of the
    task's env, with the full observation the reward model sees."""
    inputs = int(load_checkpoint(path, "agent")["obs_norm"]["mean"].shape[0])
    prefix = gym.spaces.Box(space_obs.low[:inputs], space_obs.high[:inputs], dtype=space_obs.dtype)
    policy = TrainedPolicy.load(path, prefix, space_act)
    return lambda obs: policy.act(obs[:, :inputs])


def label(left: Clip, right: Clip) -> float:
    """The perfect scripted person's answer as mu = P(left preferred)."""
    if left.true_return > right.true_return:
        return 1.0
    if left.true_return < right.true_return:
        return 0.0
    return 0.5


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="backflip", help="NAME or FILE.py:NAME")
    parser.add_argument(
        "--policies",
        nargs="*",
        default=[],
        help="agent checkpoints: PATH or NAME=PATH (NAME: the file's stem)",
    )
    parser.add_argument("--episodes", type=int, default=8, help="episodes per policy")
    parser.add_argument("--labels", type=int, nargs="+", default=[900])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--test-pairs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", help="append the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = shlex.join(["python", "scripts/bench_learnability.py", *sys.argv[1:]])
    trust_task(args.task)  # named on the command line
    task = get_task(args.task)
    env = make_env(task.gym_id, fixed_length=True)
    space_obs, space_act = env.observation_space, env.action_space
    env.close()
    if not (isinstance(space_obs, gym.spaces.Box) and isinstance(space_act, gym.spaces.Box)):
        parser.error(f"{task.name}: a flat Box observation and a Box action are needed here")

    sources = []
    named = [spec.partition("=")[::2] if "=" in spec else (Path(spec).stem, spec) for spec in args.policies]
    if len({name for name, _ in named}) < len(named):
        parser.error("--policies: two policies of one name; name them NAME=PATH")
    for k, (name, path) in enumerate(named):
        act = load_acting_on_prefix(path, space_obs, space_act)
        sources.append(collect(task, name, act, args.episodes, 20_000 + 100 * k))
    torch.manual_seed(args.seed)
    untrained = TrainedPolicy(resolve_ppo_config(task.gym_id), space_obs, space_act)
    sources.append(collect(task, "untrained", untrained.act, args.episodes, 30_000))
    rng = np.random.default_rng(args.seed)
    sources.append(
        collect(
            task,
            "random_actions",
            lambda obs: rng.uniform(space_act.low, space_act.high, (len(obs), *space_act.shape)),
            args.episodes,
            40_000,
        )
    )
    # even episodes train, odd ones are held out: no held-out clip shares an episode with a trained one
    train_pool = [c for s in sources for c, e in s.clips if e % 2 == 0]
    test_pool = [(s.name, c) for s in sources for c, e in s.clips if e % 2 == 1]
    test_clips = [c for _, c in test_pool]
    person = np.array([c.true_return for c in test_clips])

    settings = PREFERENCE_DEFAULTS.get(base_env_id(task.gym_id), {}).get("reward_model", {})
    rows: list[dict[str, Any]] = []
    print(f"{task.name}: {len(train_pool)} training clips, {len(test_clips)} held-out clips")
    print("| labels | group | held-out pair accuracy | pearson | spearman | clips |")
    print("|---:|---|---:|---:|---:|---:|")
    for labels in args.labels:
        model = RewardModel(
            space_obs.shape, space_act, RewardModelConfig().override(settings), seed=args.seed
        )
        trainer = PreferenceTrainer(model, seed=args.seed)
        for key in range(labels):
            i, j = rng.choice(len(train_pool), size=2, replace=False)
            left, right = train_pool[i], train_pool[j]
            trainer.add(key, left, right, label(left, right))
        metrics: dict[str, float] = {}
        for _ in range(args.rounds):
            metrics = trainer.train_round()
        predicted = np.array([float(model.predict(c.obs, c.actions).sum()) for c in test_clips])
        pairs = rng.choice(len(test_clips), size=(args.test_pairs, 2))
        strict = person[pairs[:, 0]] != person[pairs[:, 1]]
        agree = (predicted[pairs[:, 0]] > predicted[pairs[:, 1]]) == (
            person[pairs[:, 0]] > person[pairs[:, 1]]
        )
        groups = [("all", np.ones(len(test_clips), dtype=bool))] + [
            (s.name, np.array([n == s.name for n, _ in test_pool])) for s in sources
        ]
        for group, mask in groups:
            row = {
                "task": task.name,
                "seed": args.seed,
                "labels": labels,
                "group": group,
                "clips": int(mask.sum()),
                "pair_accuracy": round(float(agree[strict].mean()), 4) if group == "all" else "",
                "pearson": round(float(np.corrcoef(predicted[mask], person[mask])[0, 1]), 4),
                "spearman": round(spearman(predicted[mask], person[mask]), 4),
                "person_return_mean": round(float(person[mask].mean()), 2),
                "person_return_sd": round(float(person[mask].std()), 2),
                "val_accuracy": round(metrics["reward/val_accuracy"], 4),
                "train_accuracy": round(metrics["reward/train_accuracy"], 4),
                "command": command,
            }
            rows.append(row)
            print(
                f"| {labels} | {group} | {row['pair_accuracy']} | {row['pearson']} | {row['spearman']} | {row['clips']} |",
                flush=True,
            )
    if args.csv:
        path = Path(args.csv)
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
