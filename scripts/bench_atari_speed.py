"""Benchmark: env steps per second of prefrl's CNN PPO against stable-baselines3's
``PPO("CnnPolicy")`` on Atari frames, with the same network and settings.

Both learn on the same env: ``ALE/Pong-v5`` (``frameskip=1``, no sticky actions) under
gymnasium's ``AtariPreprocessing`` (0-30 no-op starts, frame-skip 4 with a max over the
last two frames, 84x84 grayscale) and ``FrameStackObservation(4)``: uint8 observations
``(4, 84, 84)``, channels first, which SB3 takes as they are (no transpose). The network
is the Nature CNN with a shared trunk for both (SB3's ``CnnPolicy`` has ``net_arch=[]``);
the settings are prefrl's table for the env (CleanRL's ``ppo_atari``: 8 envs x 128 steps,
minibatches of 256, 4 epochs, clip 0.1 also on the value loss, entropy 0.01, reward
scaling by the return's std, SB3 through ``VecNormalize(norm_obs=False)``).

Each arm first learns one rollout (warm-up, not timed), then learns ``--steps`` env steps;
steps/s counts that second call (acting, env stepping and updates). The arms alternate,
``--repeats`` times for each torch thread count, so a change of load on the machine
touches both; each row keeps the machine's 1-minute load average before/after its run
(other processes share the cores). Extra prefrl rows (``--variants``) change one setting to show its cost.
Prints a table and writes one row per timed run to ``--csv``.

    pip install -e ".[bench]"          # stable-baselines3, kept out of prefrl's dependencies
    python scripts/bench_atari_speed.py                      # 8192 steps per run, 1 thread
    python scripts/bench_atari_speed.py --threads 1 2 --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.agent.ppo import PPOAgent, PPOConfig
from prefrl.envs.vector import VecEnv
from prefrl.reward import TrueReward

DEFAULT_CSV = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "data" / "atari_speed.csv"

# name -> PPO overrides for an extra prefrl row ("same" is the row compared with SB3)
VARIANTS: dict[str, dict[str, Any]] = {
    "same": {},
    "no_channels_last": {"channels_last": False},
    "epochs_2": {"update_epochs": 2},
    "minibatch_512": {"minibatch_size": 512},
}


def atari_env_fn(env_id: str) -> Callable[[], gym.Env]:
    """A constructor of ``env_id`` as the paper preprocesses it (see the module's text)."""

    def make() -> gym.Env:
        import ale_py

        gym.register_envs(ale_py)
        env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0)
        env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
        return gym.wrappers.FrameStackObservation(env, 4)

    return make


def run_prefrl(env_id: str, cfg: PPOConfig, steps: int, seed: int) -> tuple[float, int]:
    """``(seconds for steps env steps after a one-rollout warm-up, parameter count)``."""
    envs = VecEnv([atari_env_fn(env_id)] * cfg.num_envs)
    rollout = cfg.num_envs * cfg.num_steps
    agent = PPOAgent(envs, cfg, total_steps=steps + rollout, seed=seed)
    agent.learn(rollout, TrueReward())
    start = time.perf_counter()
    agent.learn(steps, TrueReward())
    seconds = time.perf_counter() - start
    envs.close()
    return seconds, sum(p.numel() for p in agent.policy.parameters() if p.requires_grad)


def run_sb3(env_id: str, cfg: PPOConfig, steps: int, seed: int) -> tuple[float, int]:
    """The same as :func:`run_prefrl` with stable-baselines3's PPO and ``CnnPolicy``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    venv: Any = VecMonitor(DummyVecEnv([atari_env_fn(env_id)] * cfg.num_envs))
    if cfg.norm_reward:
        venv = VecNormalize(
            venv, norm_obs=False, norm_reward=True, clip_reward=cfg.clip_reward, gamma=cfg.gamma
        )
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=cfg.num_steps,
        batch_size=cfg.minibatch_size,
        n_epochs=cfg.update_epochs,
        learning_rate=(lambda f: f * cfg.learning_rate) if cfg.anneal_lr else cfg.learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_coef,
        clip_range_vf=cfg.clip_coef if cfg.clip_vloss else None,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        normalize_advantage=cfg.norm_adv,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    rollout = cfg.num_envs * cfg.num_steps
    model.learn(rollout)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    venv.close()
    return seconds, sum(p.numel() for p in model.policy.parameters() if p.requires_grad)


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="ALE/Pong-v5", help="an ALE id (default: ALE/Pong-v5)")
    parser.add_argument("--steps", type=int, default=8192, help="timed env steps per run (default: 8192)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1], help="torch thread counts (default: 1)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each arm per thread count (default: 1)"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["no_channels_last"],
        choices=[v for v in VARIANTS if v != "same"],
        help="extra prefrl rows, one setting changed (default: no_channels_last)",
    )
    parser.add_argument("--no-sb3", action="store_true", help="prefrl rows only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--csv", type=Path, default=DEFAULT_CSV, help=f"rows written here (default: {DEFAULT_CSV})"
    )
    args = parser.parse_args()

    base = resolve_ppo_config(args.env)
    arms: list[tuple[str, str, PPOConfig]] = [("prefrl", "same", base)]
    if not args.no_sb3:
        arms.append(("sb3", "same", base))
    arms += [("prefrl", name, base.replace(**VARIANTS[name])) for name in args.variants]

    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for repeat in range(args.repeats):
            for library, variant, cfg in arms:
                run = run_prefrl if library == "prefrl" else run_sb3
                load_before = os.getloadavg()[0]
                seconds, params = run(args.env, cfg, args.steps, args.seed)
                row = {
                    "env": args.env,
                    "library": library,
                    "variant": variant,
                    "threads": threads,
                    "repeat": repeat,
                    "steps": args.steps,
                    "seconds": round(seconds, 3),
                    "steps_per_s": round(args.steps / seconds, 1),
                    "params": params,
                    "num_envs": cfg.num_envs,
                    "num_steps": cfg.num_steps,
                    "minibatch_size": cfg.minibatch_size,
                    "update_epochs": cfg.update_epochs,
                    "channels_last": cfg.channels_last if library == "prefrl" else False,
                    "load_avg_1min": f"{load_before:.2f}/{os.getloadavg()[0]:.2f}",
                    "torch": torch.__version__,
                    "cpu": cpu_name(),
                }
                rows.append(row)
                print(
                    f"{library:6} {variant:16} threads={threads} repeat={repeat}: {row['steps_per_s']} steps/s"
                )

    params = {r["library"]: r["params"] for r in rows if r["variant"] == "same"}
    if len(set(params.values())) > 1:
        raise SystemExit(f"the two networks differ: trainable parameters {params}")

    print(f"\n{args.env}, {args.steps} timed env steps per run, median over {args.repeats} run(s)")
    print(f"{'library':8} {'variant':18} {'threads':>7} {'steps/s':>9} {'vs SB3':>7}")
    for threads in args.threads:
        median = {
            (lib, var): statistics.median(
                r["steps_per_s"]
                for r in rows
                if (r["library"], r["variant"], r["threads"]) == (lib, var, threads)
            )
            for lib, var, _ in arms
        }
        sb3 = median.get(("sb3", "same"))
        for (lib, var), value in median.items():
            ratio = f"{value / sb3:.2f}x" if sb3 else "-"
            print(f"{lib:8} {var:18} {threads:>7} {value:>9.1f} {ratio:>7}")

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nrows: {args.csv}")


if __name__ == "__main__":
    main()
