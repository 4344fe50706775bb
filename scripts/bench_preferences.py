"""Benchmark: learning from a synthetic oracle's preferences against RL on the true reward.

For each env, in one run of this script and on the same env settings (fixed-length
episodes where the env's defaults say so):

- ``random``: a uniformly random policy (R_random), 10 evaluation episodes per seed;
- ``ppo_true``: ``prefrl baseline`` on the true reward at the same env-step budget (R_ppo);
- ``ppo_constant``: PPO on a constant reward (``--constant`` envs: what termination or
  episode structure alone teaches);
- ``prefrl_random`` / ``prefrl_disagreement``: ``prefrl train`` with the default
  multiprocess backend and the perfect synthetic oracle at the given label budget, with
  random and with disagreement-based pair selection.

Normalised return = (R - R_random) / (R_ppo - R_random), with R_random and R_ppo the
means over seeds. Prints a table and writes ``results.csv`` / ``results.md`` to ``--out``.

    python scripts/bench_preferences.py                       # Pendulum (100 labels), CartPole (250)
    python scripts/bench_preferences.py --envs Pendulum-v1:100 --seeds 0 1 2 --selection disagreement
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.agent.evaluate import evaluate
from prefrl.baseline import run_baseline
from prefrl.envs.make import make_env
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train


def random_return(env_id: str, fixed_length: bool | int, seed: int) -> float:
    space = make_env(env_id).action_space
    space.seed(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return np.stack([space.sample() for _ in range(len(obs))])

    return float(np.mean(evaluate(act, env_id, 10, seed=10_000 + 100 * seed, fixed_length=fixed_length)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", nargs="+", default=["Pendulum-v1:100", "CartPole-v1:250"], help="ENV_ID:LABELS"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--selection", nargs="+", default=["random", "disagreement"], choices=["random", "disagreement"]
    )
    parser.add_argument("--teacher", default="perfect")
    parser.add_argument(
        "--constant", nargs="*", default=["CartPole-v1"], help="envs that get the constant-reward control"
    )
    parser.add_argument("--out", default="runs/bench_preferences")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for spec in args.envs:
        env_id, _, labels = spec.partition(":")
        probe = TrainConfig(
            env_id=env_id, labels=int(labels or 100), selection=args.selection, teacher=args.teacher
        )
        fixed = probe.fixed_length or False
        arms = ["random", "ppo_true"] + (["ppo_constant"] if env_id in args.constant else [])
        for seed in args.seeds:
            base = {"env": env_id, "fixed_length": fixed, "steps": probe.steps, "seed": seed}
            rows.append({**base, "arm": "random", "return": random_return(env_id, fixed, seed)})
            for reward in ("true", "constant"):
                if f"ppo_{reward}" not in arms:
                    continue
                s = run_baseline(
                    env_id,
                    probe.steps,
                    seed=seed,
                    reward=reward,
                    fixed_length=fixed,
                    run_dir=out / f"{env_id}-{reward}-s{seed}",
                    progress=False,
                    video=False,
                )
                rows.append(
                    {
                        **base,
                        "arm": f"ppo_{reward}",
                        "return": s["final_eval_return"],
                        "sps": s["env_steps_per_sec"],
                    }
                )
                print(rows[-1], flush=True)
            for selection in args.selection:
                config = TrainConfig(**{**probe.to_dict(), "seed": seed, "selection": selection})
                s = train(config, out / f"{env_id}-prefrl-{selection}-s{seed}", progress=False, video=False)
                answers = s["answers"]
                rows.append(
                    {
                        **base,
                        "arm": f"prefrl_{selection}",
                        "labels": s["labels_used"],
                        "return": s["final_eval_return"],
                        "sps": s["env_steps_per_sec"],
                        "tie_share": answers["equal"] / max(1, s["labels_used"]),
                        "rm_val_acc": s["reward_val_accuracy"],
                        "rm_clip_corr": s["reward_recent_clip_return_corr"],
                        "wall_s": s["wall_time_s"],
                    }
                )
                print(rows[-1], flush=True)
        env_rows = [r for r in rows if r["env"] == env_id]
        r_random = np.mean([r["return"] for r in env_rows if r["arm"] == "random"])
        r_ppo = np.mean([r["return"] for r in env_rows if r["arm"] == "ppo_true"])
        for r in env_rows:
            r["normalized"] = (r["return"] - r_random) / (r_ppo - r_random)
    write(rows, out)


def write(rows: list[dict[str, Any]], out: Path) -> None:
    columns = [
        "env",
        "fixed_length",
        "steps",
        "arm",
        "seed",
        "labels",
        "return",
        "normalized",
        "sps",
        "tie_share",
        "rm_val_acc",
        "rm_clip_corr",
        "wall_s",
    ]
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| env | arm | labels | normalized (median) | normalized (min) | return (mean) | steps/s (mean) | tie share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id in dict.fromkeys(r["env"] for r in rows):
        baseline_sps = np.mean([r["sps"] for r in rows if r["env"] == env_id and r["arm"] == "ppo_true"])
        for arm in dict.fromkeys(r["arm"] for r in rows if r["env"] == env_id):
            sel = [r for r in rows if r["env"] == env_id and r["arm"] == arm]
            norm = [r["normalized"] for r in sel]
            sps = [r["sps"] for r in sel if r.get("sps")]
            sps_text = f"{np.mean(sps):.0f} ({np.mean(sps) / baseline_sps:.2f}x)" if sps else ""
            ties = f"{np.mean([r['tie_share'] for r in sel]):.2f}" if arm.startswith("prefrl") else ""
            labels = sel[0].get("labels", "")
            lines.append(
                f"| {env_id} | {arm} | {labels} | {np.median(norm):.3f} | {np.min(norm):.3f} | "
                f"{np.mean([r['return'] for r in sel]):.1f} | {sps_text} | {ties} |"
            )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
