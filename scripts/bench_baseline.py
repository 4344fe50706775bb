"""Benchmark: prefrl's PPO on the true reward against stable-baselines3 PPO.

Both arms use the same hyperparameters (prefrl's per-env table), the same number of
envs, one torch thread, and run one after another in this process, so their env steps
per second are comparable. Each arm is evaluated on 10 episodes with the deterministic
policy. Prints a table and writes ``results.csv`` and ``results.md`` to ``--out``.

    pip install -e ".[bench]"     # stable-baselines3, kept out of prefrl's dependencies
    python scripts/bench_baseline.py                        # CartPole-v1 and Pendulum-v1, 3 seeds
    python scripts/bench_baseline.py --envs Hopper-v5 --seeds 0 --no-sb3
"""

from __future__ import annotations

import argparse
import csv
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.agent.evaluate import evaluate
from prefrl.agent.hyperparams import default_steps, resolve_ppo_config
from prefrl.agent.ppo import PPOConfig
from prefrl.baseline import run_baseline


def sb3_settings(cfg: PPOConfig) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """prefrl's PPO settings as stable-baselines3's: ``(PPO keyword arguments (n_envs
    included), VecNormalize keyword arguments or None)``."""
    lr = (lambda f: f * cfg.learning_rate) if cfg.anneal_lr else cfg.learning_rate
    clip = (lambda f: f * cfg.clip_coef) if cfg.anneal_clip else cfg.clip_coef
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation]
    ppo = dict(
        n_envs=cfg.num_envs,
        n_steps=cfg.num_steps,
        batch_size=cfg.minibatch_size,
        n_epochs=cfg.update_epochs,
        learning_rate=lr,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=clip,
        clip_range_vf=cfg.clip_coef if cfg.clip_vloss else None,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.target_kl,
        normalize_advantage=cfg.norm_adv,
        policy_kwargs=dict(
            net_arch=dict(pi=list(cfg.hidden_sizes), vf=list(cfg.hidden_sizes)),
            activation_fn=activation,
            log_std_init=cfg.log_std_init,
            ortho_init=cfg.ortho_init,
        ),
    )
    normalize = None
    if cfg.norm_obs or cfg.norm_reward:
        normalize = dict(
            norm_obs=cfg.norm_obs,
            norm_reward=cfg.norm_reward,
            clip_obs=cfg.clip_obs,
            clip_reward=cfg.clip_reward,
            gamma=cfg.gamma,
        )
    return ppo, normalize


def train_sb3(
    env_id: str,
    steps: int,
    seed: int,
    ppo: dict[str, Any],
    normalize: dict[str, Any] | None = None,
    make_env: Callable[[], Any] | None = None,
    fixed_length: bool | int = False,
) -> dict[str, Any]:
    """Train stable-baselines3 PPO (``ppo``: its keyword arguments, ``n_envs`` included;
    ``normalize``: VecNormalize's, or None for none) on the envs ``make_env`` builds
    (default ``gym.make(env_id)``), then evaluate it on the true reward (10
    deterministic episodes, prefrl's evaluation). Returns eval return, env steps/s, time."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    kwargs = dict(ppo)
    n_envs = kwargs.pop("n_envs", 1)
    venv = make_vec_env(make_env or env_id, n_envs=n_envs, seed=seed)
    if normalize is not None:
        venv = VecNormalize(venv, **normalize)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    start = time.perf_counter()
    model.learn(steps)
    train_time = time.perf_counter() - start
    if isinstance(venv, VecNormalize):
        venv.training = False

    def act(obs: np.ndarray) -> np.ndarray:
        if isinstance(venv, VecNormalize):
            obs = venv.normalize_obs(obs)
        actions, _ = model.predict(obs, deterministic=True)
        space = venv.action_space
        return np.clip(actions, space.low, space.high) if isinstance(space, gym.spaces.Box) else actions

    returns = evaluate(act, env_id, 10, seed=10_000, fixed_length=fixed_length)
    return {"eval": float(np.mean(returns)), "sps": steps / train_time, "time": train_time}


def sb3_arm(env_id: str, cfg: PPOConfig, steps: int, seed: int) -> dict[str, Any]:
    """Train stable-baselines3 PPO with prefrl's hyperparameters; time and evaluate it."""
    ppo, normalize = sb3_settings(cfg)
    return train_sb3(env_id, steps, seed, ppo, normalize)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=0, help="env steps (default: per env)")
    parser.add_argument("--no-sb3", action="store_true", help="prefrl arm only")
    parser.add_argument("--out", default="runs/bench_baseline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for env_id in args.envs:
        steps = args.steps or default_steps(env_id)
        cfg = resolve_ppo_config(env_id)
        for seed in args.seeds:
            run_dir = out / f"{env_id}-s{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)  # measured again: a run never overwrites one
            summary = run_baseline(env_id, steps, seed=seed, run_dir=run_dir, progress=False)
            row: dict[str, Any] = {
                "env": env_id,
                "seed": seed,
                "steps": steps,
                "prefrl_eval": round(summary["final_eval_return"], 1),
                "prefrl_sps": round(summary["env_steps_per_sec"]),
            }
            if not args.no_sb3:
                sb3 = sb3_arm(env_id, cfg, steps, seed)
                row.update(
                    sb3_eval=round(sb3["eval"], 1),
                    sb3_sps=round(sb3["sps"]),
                    speedup=round(row["prefrl_sps"] / sb3["sps"], 2),
                )
            rows.append(row)
            print(row, flush=True)
    columns = list(rows[0])
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    for env_id in args.envs:
        env_rows = [r for r in rows if r["env"] == env_id]
        mean = {c: np.mean([r[c] for r in env_rows]) for c in columns if c not in ("env", "seed", "steps")}
        lines.append(f"| {env_id} mean | | | " + " | ".join(f"{mean[c]:.2f}" for c in columns[3:]) + " |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
