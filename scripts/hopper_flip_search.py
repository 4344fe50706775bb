"""Can Hopper-v5 do a clean backflip from standing? A search over open-loop actions.

The backflip task's go / no-go asks PPO for clean flips (``prefrl.tasks``: a full backward
turn in the air, then a landing on the foot, upright and at least 0.8 m high for 25
steps). Before blaming a scripted person or PPO, this asks whether the body can do it at
all: the cross-entropy method searches action sequences (``--knots`` values per joint,
``--every`` steps apart, linearly interpolated) played from Hopper-v5's reset state
(``terminate_when_unhealthy=False``, reset seed 0) for one that
:func:`prefrl.task_library.count_clean_flips` counts. A sequence's score, taken at the
best flight: 20 x its backward turn (in turns, at most 1), plus, weighted by the turn to
the 4th power, 3 for landing on the foot, 10 x the share of the 25 steps after the
landing that are upright, 2 x the torso height at the landing (at most 1.2 m), plus 2 x
the flight's highest torso height. It stops at the first clean flip.

Writes to ``--out``: ``actions.csv`` (the flip's actions, one row per step),
``trajectory.csv`` (per step: the torso's angle in turns, its height, the centre of
mass's height, foot and any contact with the floor) and ``flip.png`` (every 10th frame).

``--replay TASK ...`` instead plays the flip of ``--out`` in each backflip task's env
(``FILE.py:NAME`` for a task in a file) and prints its scripted person's return per step
over the flip and the stand after it (``--replay-steps``, 130), also to ``replay.csv`` in
``--out``: what that person pays for a clean flip, to set beside what PPO's policy on
that reward earns per step.

    python scripts/hopper_flip_search.py --out docs/benchmarks/data/hopper_flip_search
    python scripts/hopper_flip_search.py --out docs/benchmarks/data/hopper_flip_search --replay backflip
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import prefrl.envs.make  # noqa: F401  (sets MUJOCO_GL for rendering without a display)
from prefrl.render.frames import follow_the_body
from prefrl.task_library import count_clean_flips, flights, hopper_foot_down, hopper_touching
from prefrl.tasks import get_task, trust_task

HOLD_STEPS = 25


def actions_of(params: np.ndarray, knots: int, every: int, steps: int) -> np.ndarray:
    values = params.reshape(knots, 3)
    at = np.arange(knots) * every
    return np.stack([np.interp(np.arange(steps), at, values[:, j]) for j in range(3)], 1).clip(-1, 1)


def play(env: gym.Env, actions: np.ndarray, render: bool = False) -> tuple[np.ndarray, list[Any]]:
    """Per step: angle (rad), torso height, centre-of-mass height, foot down, touching."""
    inner = env.unwrapped
    env.reset(seed=0)
    rows, frames = [], []
    for t, action in enumerate(actions):
        env.step(action)
        data = inner.data  # type: ignore[attr-defined]
        rows.append(
            (
                float(data.qpos[2]),
                float(data.qpos[1]),
                float(data.subtree_com[1][2]),
                hopper_foot_down(inner),
                hopper_touching(inner),
            )
        )
        if render and t % 10 == 0:
            follow_the_body(env)
            frames.append(env.render())
    return np.array(rows), frames


def score(trace: np.ndarray) -> float:
    angle, height, _, foot, touching = trace.T
    best = -math.inf
    for start, t in flights(touching > 0.5):
        turned = min(
            max(((angle[start - 1] if start else angle[start]) - angle[t]) / (2 * math.pi), 0.0), 1.0
        )
        lean = np.abs((angle[t : t + HOLD_STEPS] + math.pi) % (2 * math.pi) - math.pi)
        upright = float(((lean < math.radians(30)) & (height[t : t + HOLD_STEPS] >= 0.8)).sum())
        landing = 3.0 * foot[t] + 10.0 * upright / HOLD_STEPS + 2.0 * min(height[t], 1.2)
        best = max(best, 20.0 * turned + turned**4 * landing + 2.0 * height[start:t].max())
    return best


def clean_flips(trace: np.ndarray) -> int:
    return count_clean_flips(trace[:, 0], trace[:, 1], trace[:, 3] > 0.5)


def replay(out: Path, names: list[str], steps: int) -> None:
    actions = np.loadtxt(out / "actions.csv", delimiter=",", skiprows=1)
    command = shlex.join(["python", "scripts/hopper_flip_search.py", *sys.argv[1:]])
    print("| task | scripted return per step over the flip |")
    print("|---|---:|")
    rows = []
    for name in names:
        trust_task(name)  # named on the command line
        env = gym.make(get_task(name).gym_id)
        env.reset(seed=0)  # the reset state the flip was found from
        per_step = sum(float(env.step(action)[1]) for action in actions[:steps]) / steps
        print(f"| {name} | {per_step:.2f} |")
        rows.append([name, steps, round(per_step, 4), command])
    with (out / "replay.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "steps", "scripted_return_per_step", "command"])
        writer.writerows(rows)
    print(f"wrote {out}/replay.csv")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--knots", type=int, default=16)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--steps", type=int, default=220)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--elite", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--replay", nargs="+", metavar="TASK", default=None)
    parser.add_argument("--replay-steps", type=int, default=130)
    args = parser.parse_args()
    if args.replay:
        if args.out is None:
            parser.error("--replay plays the actions.csv of --out: give --out")
        replay(args.out, args.replay, args.replay_steps)
        return
    env = gym.make("Hopper-v5", terminate_when_unhealthy=False, render_mode="rgb_array")
    rng = np.random.default_rng(args.seed)
    mean, sd = np.zeros(args.knots * 3), np.ones(args.knots * 3)
    found = None
    print("iteration  best score  median  clean flips (best sequence)")
    for iteration in range(args.iterations):
        population = mean + sd * rng.standard_normal((args.population, len(mean)))
        traces = [play(env, actions_of(p, args.knots, args.every, args.steps))[0] for p in population]
        scores = np.array([score(trace) for trace in traces])
        flips = [clean_flips(trace) for trace in traces]
        print(f"{iteration:9d}  {scores.max():10.2f}  {np.median(scores):6.2f}  {max(flips)}", flush=True)
        if max(flips) > 0:
            found = population[int(np.argmax(flips))]
            break
        elite = population[np.argsort(scores)[-args.elite :]]
        mean, sd = elite.mean(0), elite.std(0) + 0.05
    if found is None:
        print(f"no clean flip in {args.iterations} iterations")
        return
    actions = actions_of(found, args.knots, args.every, args.steps)
    trace, frames = play(env, actions, render=args.out is not None)
    print(f"a clean flip after {iteration + 1} iterations ({(iteration + 1) * args.population} sequences)")
    if args.out is None:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        args.out / "actions.csv", actions, delimiter=",", fmt="%.6f", header="thigh,leg,foot", comments=""
    )
    with (args.out / "trajectory.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "angle_turns", "torso_height", "com_height", "foot_down", "touching"])
        for t, (angle, height, com, foot, touching) in enumerate(trace):
            writer.writerow(
                [
                    t,
                    round(angle / (2 * math.pi), 4),
                    round(height, 4),
                    round(com, 4),
                    int(foot),
                    int(touching),
                ]
            )
    from PIL import Image

    strip = np.concatenate(frames[:11], axis=1)
    small = Image.fromarray(strip).resize((strip.shape[1] // 3, strip.shape[0] // 3))
    small.quantize(colors=64).save(args.out / "flip.png")  # a palette keeps the file small
    print(f"wrote {args.out}/actions.csv, trajectory.csv, flip.png")


if __name__ == "__main__":
    main()
