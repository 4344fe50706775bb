"""How fast can Atari be stepped here, with and without the snapshots prefrl needs?

Rows, each stepping ``--envs`` envs of one game with random actions for ``--steps`` agent
steps (frame-skip 4, 84x84 grayscale, 4 stacked frames):

- ``prefrl``: prefrl's :class:`~prefrl.envs.vector.VecEnv` of ``make_env`` envs, a
  snapshot of every env taken at every step (what a preference run does);
- ``prefrl_no_snapshots``: the same loop without the snapshots;
- ``ale_vector``: ale-py's native ``AtariVectorEnv`` (C++ threads; no per-env state to
  snapshot, so it cannot serve clips that are re-rendered later), with ``--threads``.

Then the bytes one clip of 25 steps (after 200 random steps) takes in the preference
store, observations and snapshots, against their size in memory (``--sizes-out``).

    python scripts/bench_atari_stepping.py --out docs/benchmarks/data/atari_stepping.csv \
        --sizes-out docs/benchmarks/data/atari_clip_sizes.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from prefrl.envs import VecEnv, make_env, snapshotter_for
from prefrl.prefs.blobs import encode

SIZE_GAMES = ("Pong", "Breakout", "SpaceInvaders", "Seaquest")


def time_prefrl(game: str, envs: int, steps: int, snapshots: bool) -> float:
    vec = VecEnv([lambda: make_env(f"ALE/{game}-v5", fixed_length=True)] * envs, capture_snapshots=snapshots)
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    n = vec.action_space.n  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(steps):
        if snapshots:
            vec.snapshots()
        vec.step(rng.integers(n, size=envs))
    return envs * steps / (time.perf_counter() - start)


def time_ale_vector(game: str, envs: int, steps: int, threads: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    vec = AtariVectorEnv(
        game.lower() if game != "SpaceInvaders" else "space_invaders", envs, num_threads=threads
    )
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    n = vec.single_action_space.n
    start = time.perf_counter()
    for _ in range(steps):
        vec.step(rng.integers(n, size=envs))
    rate = envs * steps / (time.perf_counter() - start)
    vec.close()
    return rate


def clip_sizes(game: str) -> dict[str, int]:
    """Bytes of a 25-step clip's observations and snapshots, in memory and as stored."""
    env = make_env(f"ALE/{game}-v5", fixed_length=True)
    env.reset(seed=0)
    snapshotter = snapshotter_for(env)
    rng = np.random.default_rng(0)
    n = env.action_space.n  # type: ignore[attr-defined]
    for _ in range(200):
        env.step(int(rng.integers(n)))
    obs, snapshots = [], []
    for _ in range(25):
        obs.append(env.step(int(rng.integers(n)))[0])
        snapshots.append(snapshotter.capture(env))
    o, s = np.stack(obs), np.stack(snapshots)
    return {
        "obs_bytes": o.nbytes,
        "obs_stored_bytes": len(encode(o)),
        "snapshot_bytes": s.nbytes,
        "snapshot_stored_bytes": len(encode(s)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="Pong")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500, help="agent steps per env")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=None, help="CSV to write the rows to")
    parser.add_argument("--sizes-out", type=Path, default=None, help="CSV to write the clip sizes to")
    args = parser.parse_args()
    rows = [
        ("prefrl", 1, time_prefrl(args.game, args.envs, args.steps, snapshots=True)),
        ("prefrl_no_snapshots", 1, time_prefrl(args.game, args.envs, args.steps, snapshots=False)),
    ]
    rows += [("ale_vector", t, time_ale_vector(args.game, args.envs, args.steps, t)) for t in args.threads]
    load = os.getloadavg()[0]
    print(f"{args.game}, {args.envs} envs, {args.steps} steps each; load average {load:.1f}")
    print(f"{'path':<22} {'threads':>7} {'agent steps/s':>14} {'frames/s':>9} {'vs prefrl':>9}")
    base = rows[0][2]
    for name, threads, rate in rows:
        print(f"{name:<22} {threads:>7} {rate:>14.0f} {4 * rate:>9.0f} {rate / base:>9.2f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["game", "path", "threads", "envs", "steps_per_env", "agent_steps_per_s", "load_average"]
            )
            for name, threads, rate in rows:
                writer.writerow(
                    [args.game, name, threads, args.envs, args.steps, round(rate), round(load, 2)]
                )
    sizes = {game: clip_sizes(game) for game in SIZE_GAMES}
    print(f"\n{'game':<14} {'obs kB':>7} {'stored':>7} {'snapshots kB':>13} {'stored':>7}")
    for game, size in sizes.items():
        print(
            f"{game:<14} {size['obs_bytes'] / 1e3:>7.0f} {size['obs_stored_bytes'] / 1e3:>7.0f} "
            f"{size['snapshot_bytes'] / 1e3:>13.0f} {size['snapshot_stored_bytes'] / 1e3:>7.0f}"
        )
    if args.sizes_out is not None:
        args.sizes_out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.sizes_out, "w", newline="") as f:
            fields = ["game", "obs_bytes", "obs_stored_bytes", "snapshot_bytes", "snapshot_stored_bytes"]
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows({"game": game, **size} for game, size in sizes.items())


if __name__ == "__main__":
    main()
