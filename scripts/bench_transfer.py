"""Benchmark: does a learned reward teach a fresh agent? prefrl's PPO and stable-baselines3.

Per seed, on one env, one after another in this process:

1. ``prefrl``: a preference run (``prefrl train ENV --labels N``, perfect synthetic oracle);
2. ``random``, ``ppo_true``: a random policy and PPO on the true reward, the two ends of
   the normalised return;
3. ``ppo_learned``: ``prefrl baseline ENV --reward RUN_DIR``, PPO from scratch on that
   run's final reward model, frozen, with its defaults (the run's fixed length and PPO
   overrides, reward scaling, a discount of at least 0.99);

and, where the env's PPO discount is below 0.99 (Pendulum's 0.95):

4. ``ppo_learned_run_gamma``: the same with the run's discount (``--ppo gamma=0.95``);
   ``ppo_true_gamma099``: PPO on the true reward with the discount 0.99;
   ``prefrl_gamma099``: a preference run whose agent learns with 0.99, and
   ``ppo_learned_gamma099_run``: PPO from scratch on that run's reward;

and stable-baselines3 PPO on the ``prefrl`` run's frozen reward through
``prefrl.LearnedRewardWrapper`` (``--sb3-seeds``: only for some seeds):

5. labels outliving their run: ``reused``, a preference run with no labels of its own
   that trains on the ``prefrl`` run's (``prefrl train ENV --labels-from RUN_DIR --labels
   0``), and ``ppo_fitted``, PPO from scratch on a reward model fitted offline on those
   labels (``prefrl fit-reward RUN_DIR``, then ``prefrl baseline ENV --reward FIT_DIR``);
6. ``sb3_prefrl``: prefrl's retraining settings as SB3's (``ppo_learned``'s, with
   VecNormalize for observation and reward normalisation); ``sb3_prefrl_run_gamma``:
   the same with the run's discount; where rl-baselines3-zoo has tuned settings
   (Pendulum-v1): ``sb3_zoo`` with them, ``sb3_zoo_vecnorm`` with VecNormalize
   (observations and rewards) added, ``sb3_zoo_gamma099`` with the discount 0.99, and
   ``sb3_zoo_true``, the zoo's settings on the true reward.

Every arm trains for the same env steps and is evaluated on the true reward (10
deterministic episodes from the same starts). Normalised return = (R - R_random) /
(R_ppo_true - R_random), with the means over seeds of both ends
(``prefrl.bench.results.normalize``, as ``prefrl bench`` computes it); ``of_run`` is an
arm's normalised return over that of the preference run (same seed) whose reward it
learned from. Prints a table and writes one row per run to ``--csv`` as each finishes;
a run whose directory under ``--out`` already holds a ``summary.json`` is read, not run
again.

    pip install -e ".[bench]"      # stable-baselines3, outside prefrl's dependencies
    python scripts/bench_transfer.py --seeds 0 1 2 3 4 5 --sb3-seeds 0 1 2 \\
        --csv docs/benchmarks/data/transfer_pendulum.csv
    python scripts/bench_transfer.py --env Hopper-v5 --labels 700 --steps 1000000 --seeds 0 \\
        --csv runs/bench_transfer/hopper.csv
    python scripts/bench_transfer.py --table docs/benchmarks/data/transfer_pendulum.csv   # print only
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_baseline's SB3 arm

from bench_baseline import sb3_settings, train_sb3

import prefrl
from prefrl.agent.hyperparams import default_steps, resolve_ppo_config
from prefrl.agent.ppo import PPOConfig
from prefrl.baseline import LEARNED_MIN_GAMMA, BaselineSettings, run_baseline
from prefrl.bench.cell import run_random_policy
from prefrl.bench.results import normalize
from prefrl.fit_reward import fit_reward
from prefrl.rundir import RunDir
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train

ZOO: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(
        n_envs=4,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        use_sde=True,
        sde_sample_freq=4,
    ),
}
"""rl-baselines3-zoo's tuned PPO settings (hyperparams/ppo.yml; no ``normalize`` for Pendulum-v1)"""

ARMS = {
    "random": "random policy",
    "ppo_true": "prefrl PPO, true reward",
    "ppo_true_gamma099": "prefrl PPO, true reward, gamma 0.99",
    "prefrl": "prefrl preference run",
    "ppo_learned": "prefrl baseline --reward RUN_DIR",
    "ppo_learned_run_gamma": "prefrl baseline --reward RUN_DIR, the run's gamma",
    "reused": "prefrl train --labels-from RUN_DIR --labels 0",
    "ppo_fitted": "prefrl fit-reward RUN_DIR, then prefrl baseline --reward on it",
    "prefrl_gamma099": "prefrl preference run, gamma 0.99",
    "ppo_learned_gamma099_run": "prefrl baseline --reward RUN_DIR of the gamma 0.99 run",
    "sb3_prefrl": "SB3, prefrl's retraining settings",
    "sb3_prefrl_run_gamma": "SB3, prefrl's retraining settings, the run's gamma",
    "sb3_zoo": "SB3, rl-zoo settings",
    "sb3_zoo_vecnorm": "SB3, rl-zoo + VecNormalize",
    "sb3_zoo_gamma099": "SB3, rl-zoo, gamma 0.99",
    "sb3_zoo_true": "SB3, rl-zoo settings, true reward",
}
"""every arm, in the order they are printed; on the ``prefrl`` run's learned reward unless
it says otherwise"""

RUN_OF = {"prefrl_gamma099": "prefrl_gamma099", "ppo_learned_gamma099_run": "prefrl_gamma099"}
"""``of_run`` divides by the preference run whose reward an arm learned from: this one's, else ``prefrl``"""

COLUMNS = (
    "env",
    "seed",
    "steps",
    "labels",
    "arm",
    "gamma",
    "reward_scaling",
    "final_return",
    "normalized_return",
    "of_run",
    "reward_version",
    "wall_s",
)


def run_arms(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run (or read back) every arm of every seed; write the CSV after each."""
    torch.set_num_threads(1)
    steps = args.steps or default_steps(args.env)
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        run_seed(args, steps, seed, rows)
    finish(rows)
    write_csv(args.csv, rows)
    return rows


def run_seed(args: argparse.Namespace, steps: int, seed: int, rows: list[dict[str, Any]]) -> None:
    """Every arm of one seed, appending a row to ``rows`` as each finishes."""
    env_id, labels = args.env, args.labels
    base = Path(args.out) / f"{env_id.replace('/', '_')}-s{seed}"

    def cached(arm: str, run: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """``run(run_dir)``'s summary, or the one a finished earlier run left there."""
        run_dir = base / arm
        if RunDir(run_dir).summary_path.exists():
            return RunDir(run_dir).read_summary()
        shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished one starts again
        start = time.perf_counter()
        summary = run(run_dir)
        summary.setdefault("wall_time_s", round(time.perf_counter() - start, 1))
        if not RunDir(run_dir).summary_path.exists():  # an SB3 arm: no run directory of its own
            run_dir.mkdir(parents=True, exist_ok=True)
            RunDir(run_dir).write_summary(summary)
        return summary

    def add(arm: str, summary: dict[str, Any], gamma: float | None = None, **extra: Any) -> None:
        rows.append(
            {
                "env": env_id,
                "seed": seed,
                "steps": steps,
                "labels": labels if arm.startswith("prefrl") else "",
                "arm": arm,
                "gamma": gamma,
                "final_return": summary["final_eval_return"],
                "wall_s": summary.get("wall_time_s"),
                **extra,
            }
        )
        write_csv(args.csv, rows)
        print(f"{env_id} seed {seed} {arm}: {summary['final_eval_return']:.1f}", flush=True)

    def preference_run(arm: str, ppo: dict[str, Any]) -> Path:
        config = TrainConfig(env_id=env_id, labels=labels, seed=seed, steps=steps, ppo=ppo)
        summary = cached(arm, lambda d: train(config, d, progress=False, video=False))
        agent = resolve_ppo_config(env_id, {"norm_reward": True, **ppo})  # as the run's agent role
        version = prefrl.load_reward_model(base / arm).version
        add(arm, summary, agent.gamma, reward_scaling=agent.norm_reward, reward_version=version)
        return base / arm

    def baseline(arm: str, reward: str | Path = "true", **ppo: Any) -> None:
        # on a learned reward: the run's fixed length, by default
        fixed = fixed_length if reward == "true" else None
        settings = BaselineSettings(env_id=env_id, reward=str(reward), fixed_length=fixed)
        cfg = settings.ppo_config(ppo)
        summary = cached(
            arm,
            lambda d: run_baseline(
                env_id,
                steps,
                seed=seed,
                run_dir=d,
                reward=reward,
                fixed_length=fixed,
                ppo_overrides=ppo,
                video=False,
                progress=False,
            ),
        )
        version = settings.learned.model.version if settings.learned else None
        add(arm, summary, cfg.gamma, reward_scaling=cfg.norm_reward, reward_version=version)

    fixed_length = TrainConfig(env_id=env_id).fixed_length or False  # the runs' (per-env default)
    run_dir = preference_run("prefrl", {})
    rand = cached(
        "random",
        lambda d: run_random_policy(env_id, seed=seed, run_dir=d, fixed_length=fixed_length, steps=steps),
    )
    add("random", rand)
    baseline("ppo_true")
    baseline("ppo_learned", run_dir)
    reuse = TrainConfig(env_id=env_id, labels=0, labels_from=str(run_dir), seed=seed, steps=steps)
    add(
        "reused",
        cached("reused", lambda d: train(reuse, d, progress=False, video=False)),
        resolve_ppo_config(env_id, {"norm_reward": True}).gamma,
        reward_scaling=True,
        reward_version=prefrl.load_reward_model(base / "reused").version,
    )
    if not RunDir(base / "fitted_reward").summary_path.exists():
        shutil.rmtree(base / "fitted_reward", ignore_errors=True)
        fit_reward(run_dir, base / "fitted_reward", seed=seed)
    baseline("ppo_fitted", base / "fitted_reward")
    run_gamma = resolve_ppo_config(env_id).gamma
    if run_gamma < LEARNED_MIN_GAMMA:
        baseline("ppo_learned_run_gamma", run_dir, gamma=run_gamma)
        baseline("ppo_true_gamma099", gamma=0.99)
        run99 = preference_run("prefrl_gamma099", {"gamma": 0.99})
        baseline("ppo_learned_gamma099_run", run99)
    if args.sb3_seeds is not None and seed not in args.sb3_seeds:
        return
    model = prefrl.load_reward_model(run_dir)

    def wrapped() -> Any:
        return prefrl.LearnedRewardWrapper(prefrl.make_env(env_id, fixed_length=fixed_length), model)

    def true_env() -> Any:
        return prefrl.make_env(env_id, fixed_length=fixed_length)

    retrain = BaselineSettings(env_id=env_id, reward=str(run_dir)).ppo_config()
    sb3_arms: list[tuple[str, PPOConfig | dict[str, Any], dict[str, Any] | None, Callable[[], Any]]] = [
        ("sb3_prefrl", retrain, None, wrapped)
    ]
    if run_gamma < LEARNED_MIN_GAMMA:
        sb3_arms.append(("sb3_prefrl_run_gamma", retrain.replace(gamma=run_gamma), None, wrapped))
    zoo = ZOO.get(env_id)
    if zoo is not None:
        vecnorm = dict(norm_obs=True, norm_reward=True, gamma=zoo["gamma"])
        sb3_arms += [
            ("sb3_zoo", zoo, None, wrapped),
            ("sb3_zoo_vecnorm", zoo, vecnorm, wrapped),
            ("sb3_zoo_gamma099", {**zoo, "gamma": 0.99}, None, wrapped),
            ("sb3_zoo_true", zoo, None, true_env),
        ]
    for arm, settings, norm, make in sb3_arms:
        if isinstance(settings, PPOConfig):  # prefrl's settings, as SB3's
            kwargs, norm = sb3_settings(settings)
        else:
            kwargs = settings

        def run_sb3(
            d: Path,
            kwargs: dict[str, Any] = kwargs,
            norm: dict[str, Any] | None = norm,
            make: Callable[[], Any] = make,
        ) -> dict[str, Any]:
            result = train_sb3(env_id, steps, seed, kwargs, norm, make_env=make, fixed_length=fixed_length)
            return {"final_eval_return": result["eval"], "wall_time_s": round(result["time"], 1)}

        add(
            arm,
            cached(arm, run_sb3),
            kwargs["gamma"],
            reward_scaling=bool(norm and norm.get("norm_reward")),
            reward_version=None if arm.endswith("_true") else model.version,
        )


def finish(rows: list[dict[str, Any]]) -> None:
    """Fill ``normalized_return`` (as ``prefrl bench``) and ``of_run`` in place."""
    normalize(rows)
    runs = {
        (r["env"], r["seed"], r["arm"]): r["normalized_return"] for r in rows if r["arm"].startswith("prefrl")
    }
    for row in rows:
        run_arm = RUN_OF.get(row["arm"], "prefrl")
        own, run = row["normalized_return"], runs.get((row["env"], row["seed"], run_arm))
        row["of_run"] = own / run if own is not None and run else None


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _text(row.get(k)) for k in COLUMNS})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(newline="") as f:
        rows: list[dict[str, Any]] = list(csv.DictReader(f))
    for row in rows:
        for key in ("final_return", "normalized_return", "of_run"):
            row[key] = float(row[key]) if row[key] != "" else None
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per env and arm, the mean true return, the normalised return and the
    share of the preference run's, each with its per-seed values."""
    lines = [
        "| env | arm | gamma | reward scaling | seeds | true return: mean (per seed) "
        "| normalised: mean (per seed) | of the preference run: mean (per seed) |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for env in dict.fromkeys(r["env"] for r in rows):
        first = True
        for arm, words in ARMS.items():
            group = [r for r in rows if r["env"] == env and r["arm"] == arm]
            if not group:
                continue
            label = f"{env} ({int(group[0]['steps']) // 1000}k steps)" if first else ""
            first = False
            scaling = {"True": "yes", "False": "no", True: "yes", False: "no"}.get(
                group[0]["reward_scaling"], ""
            )
            lines.append(
                f"| {label} | {words} | {group[0]['gamma']} | {scaling} | {len(group)} | "
                f"{_spread(group, 'final_return', 1)} | {_spread(group, 'normalized_return', 2)} | "
                f"{_spread(group, 'of_run', 2)} |"
            )
    return "\n".join(lines)


def _spread(group: list[dict[str, Any]], key: str, digits: int) -> str:
    values = [r[key] for r in group]
    if any(v is None for v in values):
        return ""
    mean = f"{np.mean(values):.{digits}f}"
    if len(values) == 1:
        return mean
    return f"{mean} (" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--labels", type=int, default=100, help="label budget of the preference runs")
    parser.add_argument("--steps", type=int, default=0, help="env steps of every arm (default: the env's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--sb3-seeds",
        nargs="*",
        type=int,
        default=None,
        help="the seeds that also get the SB3 arms (default: all; none given: none)",
    )
    parser.add_argument("--out", default="runs/bench_transfer", help="where the run directories go")
    parser.add_argument("--csv", default="runs/bench_transfer/results.csv", help="one row per run")
    parser.add_argument(
        "--table", metavar="CSV", help="print the table of a CSV this script wrote; run nothing"
    )
    args = parser.parse_args()
    if args.table:
        rows = read_csv(args.table)
    else:
        rows = run_arms(args)
        rows = read_csv(args.csv)  # the table prints what the file holds
    print(table(rows))


if __name__ == "__main__":
    main()
