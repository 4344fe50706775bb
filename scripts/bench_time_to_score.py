"""Benchmark: wall-clock time for PPO to reach a score from pixels, prefrl's PPO with its
defaults for the env against stable-baselines3's ``PPO("CnnPolicy")`` with SB3's own
defaults, the same network.

The game is a MinAtar one (default ``MinAtar/Breakout-v1``, 10x10 object channels),
built by ``prefrl.make_env`` for both, episodes ending at game over as the game has them
(at most 1,000 steps); the score is the episode's true return. The network is prefrl's
small CNN for images under 36x36 (16 3x3 filters, 128 units) with a trunk shared by the
actor and critic heads; SB3 gets that trunk as its features extractor (``net_arch=[]``,
inputs not divided by 255: MinAtar's channels are already 0 or 1). Settings: prefrl's
defaults for the env (CleanRL's ``ppo_atari``: 8 envs x 128 steps, minibatches of 256, 4
epochs, lr 2.5e-4 annealed, clip 0.1, entropy 0.01, rewards scaled by the return's std)
against SB3's defaults (1 env x 2048 steps, minibatches of 64, 10 epochs, lr 3e-4, clip
0.2, no entropy bonus, raw rewards). Both at one torch thread, on the CPU.

Every finished episode is clocked (seconds since the run's start, env steps, return).
The time to a score is when the mean return of the last ``--window`` episodes first
reaches it; a median is given only where every seed reached the target. Each library learns its own number of env steps (``--prefrl-steps``,
``--sb3-steps``: SB3's defaults take several times longer per step, so fewer steps make
runs of about the same length). The arms alternate per seed. Prints a table; writes each
run's episodes to ``--episodes-csv`` and the per-run times to ``--csv``.

    pip install -e ".[bench,minatar]"
    python scripts/bench_time_to_score.py --prefrl-steps 1500000 --sb3-steps 450000 --targets 2 5 10 15 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.agent.cnn import small_trunk
from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.agent.ppo import PPOAgent
from prefrl.cli import parse_overrides
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.reward import TrueReward

DATA = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "data"


class EpisodeClock(gym.Wrapper):
    """Appends ``(seconds since start, env steps of all envs, return)`` to ``log`` at the
    end of each episode; ``counter`` (one per run) counts every env's steps."""

    def __init__(
        self, env: gym.Env, log: list[tuple[float, int, float]], counter: list[int], start: list[float]
    ):
        super().__init__(env)
        self.log, self.counter, self.start = log, counter, start
        self._return = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._return = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.counter[0] += 1
        self._return += float(reward)
        if terminated or truncated:
            self.log.append((time.perf_counter() - self.start[0], self.counter[0], self._return))
        return obs, reward, terminated, truncated, info


def clocked_env_fns(env_id: str, n: int, log: list, counter: list[int], start: list[float]) -> list[Any]:
    return [lambda: EpisodeClock(make_env(env_id), log, counter, start)] * n


def run_prefrl(
    env_id: str, steps: int, seed: int, overrides: dict[str, Any] | None = None
) -> tuple[list[tuple[float, int, float]], int]:
    log: list[tuple[float, int, float]] = []
    counter, start = [0], [0.0]
    cfg = resolve_ppo_config(env_id, overrides)
    envs = VecEnv(clocked_env_fns(env_id, cfg.num_envs, log, counter, start))
    agent = PPOAgent(envs, cfg, total_steps=steps, seed=seed)
    start[0] = time.perf_counter()
    agent.learn(steps, TrueReward())
    envs.close()
    return log, sum(p.numel() for p in agent.policy.parameters() if p.requires_grad)


def run_sb3(env_id: str, steps: int, seed: int) -> tuple[list[tuple[float, int, float]], int]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    class SmallTrunk(BaseFeaturesExtractor):
        def __init__(self, observation_space: gym.spaces.Box):
            trunk, hidden = small_trunk(*observation_space.shape)
            super().__init__(observation_space, hidden)
            self.trunk: nn.Module = trunk

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.trunk(obs)

    log: list[tuple[float, int, float]] = []
    counter, start = [0], [0.0]
    venv = DummyVecEnv(clocked_env_fns(env_id, 1, log, counter, start))
    model = PPO(
        "CnnPolicy",
        venv,
        policy_kwargs={"features_extractor_class": SmallTrunk, "net_arch": [], "normalize_images": False},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start[0] = time.perf_counter()
    model.learn(steps)
    venv.close()
    return log, sum(p.numel() for p in model.policy.parameters() if p.requires_grad)


def time_to(log: list[tuple[float, int, float]], target: float, window: int) -> tuple[float, int] | None:
    """``(seconds, env steps)`` at the first episode end where the mean return of the last
    ``window`` episodes is at least ``target``; None if it never is."""
    returns = np.array([r for _, _, r in log])
    for i in range(window - 1, len(log)):
        if returns[i - window + 1 : i + 1].mean() >= target:
            return log[i][0], log[i][1]
    return None


def table(runs: list[dict[str, Any]], window: int) -> str:
    """The published table of per-run rows (as written to, or read from, ``--csv``):
    seconds to each target, per seed and median, and SB3's median over prefrl's."""

    def number(value: Any) -> float | None:
        return None if value in (None, "") else float(value)

    def cells(name: str, library: str) -> tuple[str, float | None]:
        values = [number(r[name]) for r in runs if r["library"] == library]
        shown = " / ".join("not reached" if v is None else f"{v:.1f}" for v in values)
        reached = [v for v in values if v is not None]
        return shown, statistics.median(reached) if len(reached) == len(values) else None

    seeds = " / ".join(str(r["seed"]) for r in runs if r["library"] == "prefrl")
    lines = [
        f"| {runs[0]['env']}, seeds {seeds} | prefrl | median | SB3 | median | SB3 / prefrl |",
        "|---|---|---:|---|---:|---:|",
    ]
    targets = [k.removeprefix("seconds_to_") for k in runs[0] if k.startswith("seconds_to_")]
    rows = [(f"seconds to a mean return of {t} (last {window} episodes)", f"seconds_to_{t}") for t in targets]
    rows += [
        ("seconds of the run", "seconds"),
        (f"mean return of the last {window} episodes", "final_mean_return"),
    ]
    for label, name in rows:
        (ours, ours_median), (sb3, sb3_median) = cells(name, "prefrl"), cells(name, "sb3")
        ratio = f"{sb3_median / ours_median:.2f}x" if ours_median and sb3_median is not None else "-"
        medians = ["-" if m is None else f"{m:.1f}" for m in (ours_median, sb3_median)]
        lines.append(f"| {label} | {ours} | {medians[0]} | {sb3} | {medians[1]} | {ratio} |")
    steps = {r["library"]: int(r["steps"]) for r in runs}
    lines.append(f"| env steps per run | {steps['prefrl']:,} | | {steps['sb3']:,} | | |")
    return "\n".join(lines)


def curve(episodes: list[dict[str, Any]], bucket: int) -> str:
    """A table of the mean return of each run's episodes (rows of an ``--episodes-csv``:
    a run is a library, its overrides and a seed) that ended in each ``bucket`` env steps."""
    runs: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for e in episodes:
        key = (e["library"], e.get("overrides") or "defaults", e["seed"])
        runs.setdefault(key, []).append((int(e["env_steps"]), float(e["return"])))
    # runs end a rollout past their budget: no column for those last few steps
    width = max(1, round(max(steps for points in runs.values() for steps, _ in points) / bucket))
    head = [f"{(i + 1) * bucket // 1000}k" for i in range(width)]
    lines = [
        "| library | settings | seed | " + " | ".join(f"to {h}" for h in head) + " |",
        "|---|---|---:|" + "---:|" * width,
    ]
    for (library, overrides, seed), points in runs.items():
        cells = []
        for i in range(width):
            returns = [r for steps, r in points if i * bucket <= steps < (i + 1) * bucket]
            cells.append(f"{np.mean(returns):.2f}" if returns else "")
        lines.append(f"| {library} | {overrides} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MinAtar/Breakout-v1")
    parser.add_argument("--prefrl-steps", type=int, default=1_500_000, help="env steps of a prefrl run")
    parser.add_argument("--sb3-steps", type=int, default=450_000, help="env steps of an SB3 run")
    parser.add_argument("--targets", type=float, nargs="+", default=[5.0, 10.0, 15.0])
    parser.add_argument("--window", type=int, default=20, help="episodes in the running mean")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--csv", type=Path, default=DATA / "time_to_score.csv")
    parser.add_argument("--episodes-csv", type=Path, default=DATA / "time_to_score_episodes.csv")
    parser.add_argument("--table", type=Path, help="print the table of a --csv written before, and stop")
    parser.add_argument(
        "--curve",
        type=Path,
        metavar="EPISODES_CSV",
        help="print the mean return per --bucket env steps of each run in an --episodes-csv, and stop",
    )
    parser.add_argument("--bucket", type=int, default=100_000, help="env steps per column of --curve")
    parser.add_argument(
        "--prefrl-ppo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a prefrl PPO setting instead of its default (repeatable)",
    )
    parser.add_argument(
        "--libraries", nargs="+", choices=["prefrl", "sb3"], default=["prefrl", "sb3"], help="the arms to run"
    )
    args = parser.parse_args()
    if args.table:
        with args.table.open() as f:
            print(table(list(csv.DictReader(f)), args.window))
        return
    if args.curve:
        with args.curve.open() as f:
            print(curve(list(csv.DictReader(f)), args.bucket))
        return
    torch.set_num_threads(1)

    runs: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    params: dict[str, int] = {}
    overrides = parse_overrides(args.prefrl_ppo)
    arms = {
        "prefrl": (lambda env, steps, seed: run_prefrl(env, steps, seed, overrides), args.prefrl_steps),
        "sb3": (run_sb3, args.sb3_steps),
    }
    for seed in args.seeds:
        for library in args.libraries:
            run, steps = arms[library]
            load_before = os.getloadavg()[0]
            log, params[library] = run(args.env, steps, seed)
            settings = " ".join(args.prefrl_ppo) if library == "prefrl" else ""
            episodes += [
                {
                    "library": library,
                    "seed": seed,
                    "overrides": settings,
                    "seconds": round(s, 2),
                    "env_steps": n,
                    "return": r,
                }
                for s, n, r in log
            ]
            last = np.array([r for _, _, r in log[-args.window :]])
            row: dict[str, Any] = {
                "env": args.env,
                "library": library,
                "seed": seed,
                "steps": steps,
                "overrides": settings,
                "seconds": round(log[-1][0], 1) if log else None,
                "final_mean_return": round(float(last.mean()), 2) if len(last) else None,
                "load_avg_1min": f"{load_before:.2f}/{os.getloadavg()[0]:.2f}",
            }
            for target in args.targets:
                hit = time_to(log, target, args.window)
                row[f"seconds_to_{target:g}"] = round(hit[0], 1) if hit else None
                row[f"steps_to_{target:g}"] = hit[1] if hit else None
            runs.append(row)
            print({k: v for k, v in row.items() if k != "env"}, flush=True)
    if len(set(params.values())) > 1:
        raise SystemExit(f"the two networks differ: trainable parameters {params}")
    for path, rows in ((args.csv, runs), (args.episodes_csv, episodes)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if set(args.libraries) == set(arms):
        print()
        print(table(runs, args.window))
    print(f"\nrows: {args.csv}, episodes: {args.episodes_csv}")


if __name__ == "__main__":
    main()
