"""Behaviour tasks: does the agent learn a behaviour from a scripted person's labels?

For each task: a preference run (``prefrl train --task NAME``, perfect scripted behaviour
oracle, default multiprocess backend) unless its run directory already holds a finished
run (an interrupted one is resumed); then the task's own measure (e.g. rotations per episode) of the untrained policy
(same seed, before any update), of uniformly random actions, and of the trained policy,
each over 10 fixed-length episodes; and videos of the untrained and the trained policy
in ``--videos`` (the repository's ``videos/``). A task with several measures (backflip:
backward turns and clean flips) reports each. Prints a table, writes ``results.md`` in
``--out`` and one CSV row per task, seed, arm (``untrained``, ``random_actions``,
``trained``, ``scripted_reward``) and measure to ``--csv``: the measure's mean and sd over
the episodes, the scripted person's return (its behaviour reward summed over an episode,
mean), labels, env steps, the trained run's tie share and reward-model accuracy, and the
command. Rows of other tasks, seeds or arms already in that file are kept.

``--scripted-reward-steps N`` also trains PPO for N steps on the scripted person's own
per-step reward (``prefrl baseline prefrl/<Task>-v0``): what a hand-written reward
reaches, the reference the labels are measured against (its video: ``NAME_scripted_reward.mp4``).
``--reference-only`` measures that reference (and the untrained and random arms) without
a preference run: the go / no-go for a task before any labels are spent.

    python scripts/bench_tasks.py --tasks spin:200:200000 right:400:300000 --csv docs/benchmarks/data/tasks.csv
    python scripts/bench_tasks.py --tasks backflip:900:1000000 --selection random --scripted-reward-steps 300000
    python scripts/bench_tasks.py --tasks backflip:900:1000000 --scripted-reward-steps 1000000 --reference-only
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from prefrl.agent.checkpoint import TrainedPolicy, load_policy
from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.baseline import run_baseline
from prefrl.envs.make import make_env
from prefrl.errors import ConfigError
from prefrl.render.video import record_policy
from prefrl.rundir import RunDir
from prefrl.runtime.config import SELECTIONS, TrainConfig
from prefrl.runtime.run import resume, train
from prefrl.tasks import Measure, get_task, measure_all, trust_task
from prefrl.utils.checkpoint import load_checkpoint
from prefrl.utils.io import replacing

SCRIPTED_RETURN = Measure("scripted return", lambda episode: float(sum(episode.rewards)))
"""the scripted person's return of an episode: its behaviour reward summed over the steps"""


def task_budget(text: str) -> tuple[str, int, int]:
    """``NAME:LABELS:STEPS`` (the name may be ``FILE.py:NAME``) -> ``(NAME, LABELS, STEPS)``."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r}: give NAME:LABELS:STEPS, e.g. spin:200:200000 (a task file's: FILE.py:NAME:LABELS:STEPS)"
        )
    return parts[0], int(parts[1]), int(parts[2])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        type=task_budget,
        default=["spin:200:200000"],
        help="NAME:LABELS:STEPS (NAME may be FILE.py:NAME)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/tasks")
    parser.add_argument("--videos", default="videos")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument(
        "--csv", help="the per-arm rows (default: OUT/results.csv); other tasks' rows are kept"
    )
    parser.add_argument(
        "--selection",
        choices=SELECTIONS,
        help="how pairs are chosen (default: the run's default)",
    )
    parser.add_argument(
        "--scripted-reward-steps",
        type=int,
        default=0,
        help="also train PPO this many steps on the scripted person's reward, as a reference",
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="measure the runs already in --out as they are (a stopped run: its latest checkpoint)",
    )
    parser.add_argument(
        "--reference-only",
        action="store_true",
        help="no preference run: measure the untrained policy, random actions and (with "
        "--scripted-reward-steps) PPO on the scripted reward",
    )
    args = parser.parse_args()
    budgets = []
    for source, labels, steps in args.tasks:
        trust_task(source)  # named on the command line
        try:
            budgets.append((source, get_task(source), labels, steps))
        except ConfigError as err:  # a wrong name or file: said before any run starts
            parser.error(f"--tasks: {err}")
    torch.set_num_threads(1)
    out, videos = Path(args.out), Path(args.videos)
    command = shlex.join(["python", "scripts/bench_tasks.py", *sys.argv[1:]])
    rows: list[dict[str, Any]] = []
    lines = [
        "| task | env | labels | env steps | measure | untrained policy | random actions | trained | "
        "PPO on the scripted reward (steps) |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for source, task, labels, steps in budgets:
        name = task.name
        run_dir = out / f"{name}-s{args.seed}"
        preference = not args.reference_only
        if preference and not (run_dir / "summary.json").exists() and not args.no_train:
            config = TrainConfig(task=source, labels=labels, steps=steps, seed=args.seed)
            if args.selection:
                config.selection = args.selection
            _run_preferences(config, run_dir)
        env = make_env(task.gym_id, fixed_length=True)
        torch.manual_seed(args.seed)  # the untrained policy the run started from
        untrained = TrainedPolicy(resolve_ppo_config(task.gym_id), env.observation_space, env.action_space)
        env.action_space.seed(args.seed)

        def record(act: Any, file: str, gym_id: str = task.gym_id) -> Path:
            record_policy(act, gym_id, videos / file, fixed_length=True, max_frames=600)
            return videos / file

        def random_actions(obs: np.ndarray, space: gym.Space = env.action_space) -> np.ndarray:
            return np.stack([space.sample() for _ in range(len(obs))])

        summary = _summary(run_dir)
        base = {"task": name, "env": task.env_id, "seed": args.seed, "measure_name": task.measure_name}

        def measured(
            arm: str, act: Any, task: Any = task, base: Any = base, **extra: Any
        ) -> dict[str, list[float]]:
            values = measure_all(act, task, args.episodes, extra=(SCRIPTED_RETURN,))
            returns = values.pop(SCRIPTED_RETURN.name)
            for measure_name, per_episode in values.items():
                rows.append(
                    {
                        **base,
                        "arm": arm,
                        "measure_name": measure_name,
                        "measure_mean": round(float(np.mean(per_episode)), 4),
                        "measure_sd": round(float(np.std(per_episode)), 4),
                        "scripted_return_mean": round(float(np.mean(returns)), 2),
                        "episodes": args.episodes,
                        **extra,
                        "command": command,
                    }
                )
            return values

        before = measured("untrained", untrained.act)
        rand = measured("random_actions", random_actions)
        after: dict[str, list[float]] = {}
        labels_used, env_steps = 0, 0
        if preference:
            labels_used, env_steps = _progress(run_dir)
            trained = load_policy(run_dir, env)
            after = measured(
                "trained",
                trained.act,
                labels=labels_used,
                env_steps=env_steps,
                tie_share=_tie_share(summary),
                reward_val_accuracy=summary.get("reward_val_accuracy", ""),
                reward_clip_corr=summary.get("reward_recent_clip_return_corr", ""),
            )
        reference: dict[str, list[float]] = {}
        ref_steps = 0
        ref_dir = out / f"{name}-scripted-reward-s{args.seed}"
        if args.scripted_reward_steps and not args.no_train and not (ref_dir / "summary.json").exists():
            shutil.rmtree(ref_dir, ignore_errors=True)  # an unfinished one starts again
            run_baseline(
                task=source,
                steps=args.scripted_reward_steps,
                seed=args.seed,
                run_dir=ref_dir,
                fixed_length=True,
                video=False,
                progress=False,
            )
        if args.scripted_reward_steps and ref_dir.exists():
            ref_policy = load_policy(ref_dir, env)
            # the steps it was trained for (a stopped run: its latest checkpoint's)
            ref_steps = load_checkpoint(RunDir(ref_dir).agent_checkpoint, "agent")["env_steps"]
            reference = measured("scripted_reward", ref_policy.act, env_steps=ref_steps)
            record(ref_policy.act, f"{name}_scripted_reward.mp4")
        if preference:
            record(trained.act, f"{name}_trained.mp4")
        record(untrained.act, f"{name}_untrained.mp4")
        for measure_name in before:
            row = (
                f"| {name} | {task.env_id} | {labels_used} | {env_steps} | {measure_name} | "
                f"{np.mean(before[measure_name]):.2f} | {np.mean(rand[measure_name]):.2f} | "
                f"{_mean_sd(after.get(measure_name))} | {_mean_sd(reference.get(measure_name))}"
                + (f" ({ref_steps:,})" if reference else "")
                + " |"
            )
            lines.append(row)
            print(row, flush=True)
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    _write_csv(Path(args.csv) if args.csv else out / "results.csv", rows)
    print(table)


CSV_COLUMNS = [
    "task",
    "env",
    "seed",
    "arm",
    "measure_name",
    "measure_mean",
    "measure_sd",
    "scripted_return_mean",
    "episodes",
    "labels",
    "env_steps",
    "tie_share",
    "reward_val_accuracy",
    "reward_clip_corr",
    "command",
]


def _run_preferences(config: TrainConfig, run_dir: Path) -> None:
    """The task's preference run: a new one, or the one an interrupted invocation left in
    ``run_dir`` (its config.json, no summary.json) continued with every stored label."""
    if (run_dir / "config.json").exists():
        resume(run_dir, progress=False, video=False)
    else:
        train(config, run_dir, progress=False, video=False)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows``, keeping the rows of ``path`` whose (task, seed, arm) this run did not
    measure (atomically: a failed write leaves the file as it was)."""
    done = {(str(r["task"]), str(r["seed"]), str(r["arm"])) for r in rows}
    kept: list[dict[str, Any]] = []
    if path.exists():
        with path.open(newline="") as f:
            kept = [r for r in csv.DictReader(f) if (r["task"], r["seed"], r["arm"]) not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept + rows)


def _mean_sd(values: list[float] | None) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if values else "–"


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _tie_share(summary: dict[str, Any]) -> Any:
    answers, labels = summary.get("answers"), summary.get("labels_used")
    if not answers or not labels:
        return ""
    return round(answers.get("equal", 0) / labels, 3)


def _progress(run_dir: Path) -> tuple[int, int]:
    """Labels and env steps of a finished run (summary.json), else of a stopped one (status.json)."""
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        return summary["labels_used"], summary["env_steps"]
    status = json.loads((run_dir / "status.json").read_text())
    return status["labels_answered"], status["agent_step"]


if __name__ == "__main__":
    main()
