"""Benchmark: a person's time to teach a task, through the real labelling window.

A real run (``prefrl train --task TASK --oracle human``: agent, labeler and reward
trainer as processes, the agent waiting for the person as ``--pace wait`` does) and the
real window on it, driven by a scripted person at a human pace: an answer about
``--think`` seconds after each pair appears (uniform jitter of ``--jitter`` s), wrong
with probability ``--mistake`` (B-Pref's mistake teacher on the task's scripted taste).
Reported: the person's wall time (window open to last answer), labels used against
the budget, the agent's env steps/s, the share of time the agent waited, and the task's
measure of the final policy (10 fixed-length episodes). Prints a table and appends a
row to ``--csv``.

Uses the display in ``DISPLAY`` (e.g. ``Xvfb :99 -screen 0 1280x720x24 & DISPLAY=:99
python scripts/bench_person_time.py``) or, without one, SDL's dummy driver.

    python scripts/bench_person_time.py --task spin --seed 0
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRAINING_RUN = """
import sys
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
task, run_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
train(TrainConfig(task=task, oracle="human", seed=seed), run_dir, progress=False, video=False)
"""
COLUMNS = (
    "task",
    "seed",
    "think_s",
    "jitter_s",
    "mistake",
    "person_wall_s",
    "labels_used",
    "labels_budget",
    "complete",
    "agent_steps_per_s",
    "agent_wait_share",
    "measure_mean",
    "measure_sd",
    "measure_name",
    "run_wall_s",
    "command",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="spin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--think", type=float, default=3.0, help="seconds to each answer (default 3)")
    parser.add_argument("--jitter", type=float, default=1.0, help="uniform jitter of that, s (default 1)")
    parser.add_argument("--mistake", type=float, default=0.1, help="chance of a wrong answer (default 0.1)")
    parser.add_argument("--out", default="runs/bench_person_time", help="where the run directory goes")
    parser.add_argument("--csv", default="docs/benchmarks/data/person_time.csv")
    args = parser.parse_args()
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

    import torch

    from prefrl.agent.checkpoint import load_policy
    from prefrl.envs.make import make_env
    from prefrl.oracles import make_oracle
    from prefrl.rundir import RunDir
    from prefrl.tasks import get_task, measure_behaviour
    from prefrl.ui.run_info import open_run
    from prefrl.ui.scripted import ScriptedPerson
    from prefrl.ui.window import LabelingWindow

    torch.set_num_threads(1)
    task = get_task(args.task)
    run_path = Path(args.out) / f"{args.task}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.monotonic()
    run_process = subprocess.Popen(
        [sys.executable, "-c", TRAINING_RUN, args.task, str(run_path), str(args.seed)], start_new_session=True
    )
    run = RunDir(run_path)
    while not (run.status_path.exists() and run.store_path.exists()):
        if run_process.poll() is not None:
            raise SystemExit(f"the run ended before the window could open (exit {run_process.returncode})")
        time.sleep(0.2)
    oracle = make_oracle("mistake", seed=args.seed, eps=args.mistake)
    person = ScriptedPerson(run.store_path, oracle, think_s=args.think, jitter_s=args.jitter, seed=args.seed)
    opened = time.perf_counter()  # the clock of the window's events
    try:
        window = LabelingWindow(open_run(run.path), on_event=person)
        try:
            given = window.run(stop_with_run=True, finish_linger_s=0)
        finally:
            window.close()
    except BaseException:
        os.killpg(run_process.pid, signal.SIGTERM)  # never leave the run training on its own
        raise
    finally:
        person.close()
    person_wall_s = max((e.time for e in person.answered), default=opened) - opened
    try:
        run_process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(run_process.pid, signal.SIGTERM)  # as Ctrl-C; a background job ignores SIGINT
        run_process.wait(120)
    summary = json.loads(run.summary_path.read_text())
    env = make_env(task.gym_id, fixed_length=True)
    policy = load_policy(run.path, env)
    env.close()
    measure = measure_behaviour(policy.act, task, episodes=10)
    row = {
        "task": args.task,
        "seed": args.seed,
        "think_s": args.think,
        "jitter_s": args.jitter,
        "mistake": args.mistake,
        "person_wall_s": round(person_wall_s, 1),
        "labels_used": summary["labels_used"],
        "labels_budget": summary["labels_budget"],
        "complete": summary["complete"],
        "agent_steps_per_s": summary.get("env_steps_per_sec"),
        "agent_wait_share": summary.get("agent_wait_share"),
        "measure_mean": round(float(np.mean(measure)), 3),
        "measure_sd": round(float(np.std(measure)), 3),
        "measure_name": task.measure_name,
        "run_wall_s": round(time.monotonic() - started, 1),
        "command": "python scripts/bench_person_time.py " + shlex.join(sys.argv[1:]),
    }
    print(f"{given} answers in the window")
    print("| " + " | ".join(COLUMNS[:-1]) + " |")
    print("|" + " --- |" * (len(COLUMNS) - 1))
    print("| " + " | ".join(str(row[c]) for c in COLUMNS[:-1]) + " |")
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(f"appended to {path}")
    return 0 if row["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
