"""What a fixed-length InvertedPendulum run's final reward model pays for a step upright and
for a step from the fall on (the step that ends the inner episode, then the frozen state), on 5 episodes of random actions (60 steps
each, seeds 0-4), and how much that frozen state's reward varies with where the pole fell.
Rows of docs/benchmarks/other_envs/inverted_pendulum_probe.csv:

    python docs/benchmarks/other_envs/inverted_pendulum_probe.py OUT/fixed-s0 OUT/fixed-s1 > docs/benchmarks/other_envs/inverted_pendulum_probe.csv
"""

from __future__ import annotations

import csv
import sys
from typing import Any

import numpy as np
import torch

from prefrl.envs.make import make_env
from prefrl.reward import load_reward_model


def rewards(model: Any, pairs: list) -> np.ndarray:
    obs = np.array([o for o, _ in pairs], np.float32)
    actions = np.array([a for _, a in pairs], np.float32)
    return np.asarray(model.predict(obs, actions))


def main() -> None:
    torch.set_num_threads(1)
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "run",
            "steps",
            "upright_steps",
            "mean_reward_upright",
            "fallen_steps",
            "mean_reward_fallen",
            "max_reward_fallen",
        ]
    )
    for run in sys.argv[1:]:
        model = load_reward_model(run)
        env = make_env("InvertedPendulum-v5", fixed_length=True)
        env.action_space.seed(0)
        upright, fallen = [], []
        for episode in range(5):
            obs, _ = env.reset(seed=episode)
            for _ in range(60):
                action = env.action_space.sample()
                next_obs, _, _, _, info = env.step(action)
                (fallen if info.get("terminated_inner") else upright).append((obs, action))
                obs = next_obs
        env.close()
        frozen = rewards(model, fallen)
        writer.writerow(
            [
                run.rstrip("/").split("/")[-1],
                len(upright) + len(fallen),
                len(upright),
                round(float(rewards(model, upright).mean()), 3),
                len(fallen),
                round(float(frozen.mean()), 3),
                round(float(frozen.max()), 3),
            ]
        )


if __name__ == "__main__":
    main()
