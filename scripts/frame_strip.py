"""A strip of frames from one episode of a trained policy, for the docs: every
``--every``-th frame from step ``--start`` on, ``--frames`` of them side by side, a third of
the render size, in a 64-colour palette (small files).

    python scripts/frame_strip.py RUN_DIR --task backflip --start 0 --every 10 --frames 11 --out strip.png

The policy acts deterministically in the task's (or ``--env``'s) fixed-length episode
seeded ``--seed``; ``--task FILE.py:NAME`` trusts that file, as ``prefrl train`` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from prefrl.agent.checkpoint import load_policy
from prefrl.render.frames import make_render_env, render_frame
from prefrl.tasks import get_task, trust_task


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", help="the run's task (NAME or FILE.py:NAME)")
    what.add_argument("--env", help="the run's env id")
    parser.add_argument("--start", type=int, default=0, help="the first frame's step")
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--frames", type=int, default=11)
    parser.add_argument("--seed", type=int, default=10_000, help="the episode's seed (bench_tasks' first)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.task:
        trust_task(args.task)
        env_id = get_task(args.task).gym_id
    else:
        env_id = args.env
    env = make_render_env(env_id, fixed_length=True)
    policy = load_policy(args.run_dir, env)
    obs, _ = env.reset(seed=args.seed)
    last = args.start + args.every * (args.frames - 1)
    frames = []
    for step in range(last + 1):
        obs, *_ = env.step(policy.act(obs[None])[0])
        if step >= args.start and (step - args.start) % args.every == 0:
            frames.append(render_frame(env))
    env.close()
    from PIL import Image

    strip = np.concatenate(frames, axis=1)
    small = Image.fromarray(strip).resize((strip.shape[1] // 3, strip.shape[0] // 3))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    small.quantize(colors=64).save(args.out)
    print(f"wrote {args.out}: steps {args.start} to {last}, every {args.every}")


if __name__ == "__main__":
    main()
