"""Peer arm: the `imitation` library's preference comparisons on the same task and budget.

imitation 1.0.1 pins gymnasium 0.29 and stable-baselines3 2.2, so it lives in its own
virtual environment; this script runs there and imports nothing from prefrl:

    python3 -m venv .venv-imitation
    .venv-imitation/bin/pip install torch==2.13.0 imitation==1.0.1
    .venv-imitation/bin/python scripts/peer_imitation.py --labels 100 --steps 200000 --seed 0 \\
        --run-dir runs/bench/classic/runs/Pendulum-v1/imitation-b100-s0
    prefrl report runs/bench/classic

It writes a run directory like prefrl's (``config.json`` with ``"kind": "peer"``,
``summary.json`` with ``final_eval_return`` over 10 deterministic evaluation episodes on
the true reward, ``labels_used``, ``env_steps``, ``wall_time_s``). Placed under a bench
output's ``runs/<env>/``, ``prefrl report`` puts it in the same report as prefrl's runs,
normalised against the same baselines (arm ``imitation``).

Settings: imitation's own quickstart for Pendulum (its documented example: PPO with
FeedForward32Policy, 100-step fragments, hyperbolic query schedule, 10% initial
comparisons), with ``--reward-epochs`` raised from its quickstart's 3, because with 3
its reward model underfits (training loss ~0.8 here). ``--preset quickstart`` keeps 3.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--labels", type=int, default=100, help="total comparisons")
    parser.add_argument("--steps", type=int, default=200_000, help="agent env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=20, help="preference-comparison iterations")
    parser.add_argument("--reward-epochs", type=int, default=20)
    parser.add_argument("--preset", choices=["tuned", "quickstart"], default="tuned")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()

    import torch
    from imitation.algorithms import preference_comparisons
    from imitation.policies.base import FeedForward32Policy, NormalizeFeaturesExtractor
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reward_epochs = 3 if args.preset == "quickstart" else args.reward_epochs
    config = {
        "kind": "peer",
        "arm": "imitation",
        "env_id": args.env,
        "labels": args.labels,
        "steps": args.steps,
        "seed": args.seed,
        "iterations": args.iterations,
        "reward_epochs": reward_epochs,
        "preset": args.preset,
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    rng = np.random.default_rng(args.seed)
    venv = make_vec_env(args.env, rng=rng, n_envs=1)
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    fragmenter = preference_comparisons.RandomFragmenter(warning_threshold=0, rng=rng)
    gatherer = preference_comparisons.SyntheticGatherer(rng=rng)
    preference_model = preference_comparisons.PreferenceModel(reward_net)
    reward_trainer = preference_comparisons.BasicRewardTrainer(
        preference_model=preference_model,
        loss=preference_comparisons.CrossEntropyRewardLoss(),
        epochs=reward_epochs,
        rng=rng,
    )
    agent = PPO(
        policy=FeedForward32Policy,
        policy_kwargs=dict(
            features_extractor_class=NormalizeFeaturesExtractor,
            features_extractor_kwargs=dict(normalize_class=RunningNorm),
        ),
        env=venv,
        seed=args.seed,
        n_steps=2048 // venv.num_envs,
        batch_size=64,
        ent_coef=0.01,
        learning_rate=2e-3,
        clip_range=0.1,
        gae_lambda=0.95,
        gamma=0.97,
        n_epochs=10,
        device="cpu",
    )
    trajectory_generator = preference_comparisons.AgentTrainer(
        algorithm=agent, reward_fn=reward_net, venv=venv, exploration_frac=0.05, rng=rng
    )
    pref = preference_comparisons.PreferenceComparisons(
        trajectory_generator,
        reward_net,
        num_iterations=args.iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=100,
        transition_oversampling=1,
        initial_comparison_frac=0.1,
        allow_variable_horizon=False,
        initial_epoch_multiplier=4,
        query_schedule="hyperbolic",
    )
    start = time.perf_counter()
    stats = pref.train(total_timesteps=args.steps, total_comparisons=args.labels)
    wall = time.perf_counter() - start

    import gymnasium as gym

    returns = []
    for episode in range(10):
        env = gym.make(args.env)
        obs, _ = env.reset(seed=10_000 + episode)
        total, done = 0.0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    summary = {
        "env_id": args.env,
        "arm": "imitation",
        "seed": args.seed,
        "labels_used": len(pref.dataset),
        "env_steps": int(agent.num_timesteps),
        "final_eval_return": float(np.mean(returns)),
        "eval_returns": returns,
        "reward_loss": float(stats["reward_loss"]),
        "reward_accuracy": float(stats["reward_accuracy"]),
        "wall_time_s": round(wall, 2),
        "env_steps_per_sec": round(agent.num_timesteps / wall, 1),
        "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
