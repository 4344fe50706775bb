"""One grid cell, run in its own process: ``python -m prefrl.bench.cell RUN_DIR SPEC_JSON``.

``SPEC_JSON`` is a :attr:`prefrl.bench.grid.Cell.spec` (``kind`` plus arguments), or
``{"kind": "resume"}`` to continue an interrupted preference run. The process writes an
ordinary run directory and exits 0 once its ``summary.json`` is written, 130 when Ctrl-C
stopped it; anything else (an exception, a signal) leaves another non-zero exit status and
the traceback on stderr.

It also holds the random-policy "baseline", :func:`run_random_policy`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefrl import __version__
from prefrl.agent.evaluate import evaluate
from prefrl.baseline import run_baseline
from prefrl.bench.grid import INTERRUPTED_EXIT
from prefrl.envs.make import make_env
from prefrl.metrics import MetricsLogger
from prefrl.rundir import RunDir
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunInterrupted
from prefrl.runtime.run import resume, train
from prefrl.tasks import get_task

RANDOM_EVAL_SEED = 10_000
"""First episode seed of the random policy's evaluation: the same starts every trained
policy is evaluated on (``prefrl.agent.evaluate.evaluate``'s default)."""


def run_random_policy(
    env_id: str,
    *,
    seed: int = 0,
    run_dir: str | Path,
    fixed_length: bool | int = False,
    episodes: int = 10,
    steps: int = 0,
) -> dict[str, Any]:
    """Evaluate a uniformly random policy and write it as a run directory.

    The policy samples the env's action space (seeded with ``seed``) on ``episodes``
    evaluation episodes that start like every trained policy's evaluation
    (:data:`RANDOM_EVAL_SEED`). ``steps`` is only recorded: the step budget of the
    runs this one is a baseline for. Writes ``config.json`` (``kind: "random"``),
    ``metrics.csv`` (one row at step 0 with ``eval/mean_return``) and ``summary.json``
    (``final_eval_return``: the mean true return over the episodes); returns the summary.

    Raises:
        EnvError: unknown env id or unsupported spaces (before anything is written).
    """
    start = time.perf_counter()
    space = make_env(env_id, fixed_length=fixed_length).action_space
    space.seed(seed)
    run = RunDir(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(
        {
            "kind": "random",
            "env_id": env_id,
            "steps": steps,
            "seed": seed,
            "fixed_length": fixed_length,
            "eval_episodes": episodes,
            "prefrl_version": __version__,
        }
    )
    steps_taken = 0

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal steps_taken
        steps_taken += len(obs)
        return np.stack([space.sample() for _ in range(len(obs))])

    returns = evaluate(act, env_id, episodes, seed=RANDOM_EVAL_SEED, fixed_length=fixed_length)
    wall = time.perf_counter() - start
    MetricsLogger(run.metrics_path).log(0, {"eval/mean_return": float(np.mean(returns))})
    summary = {
        "env_id": env_id,
        "seed": seed,
        "env_steps": 0,
        "eval_env_steps": steps_taken,
        "final_eval_return": float(np.mean(returns)),
        "eval_returns": returns,
        "env_steps_per_sec": round(steps_taken / max(wall, 1e-9), 1),
        "wall_time_s": round(wall, 2),
    }
    run.write_summary(summary)
    return {"run_dir": str(run.path), **summary}


def run_spec(run_dir: str | Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one cell's ``spec`` into ``run_dir`` in this process; returns the run's summary.

    Raises:
        ValueError: an unknown ``kind`` (or whatever the run itself raises).
    """
    import torch

    torch.set_num_threads(1)
    kind = spec["kind"]
    if kind == "train":
        config = TrainConfig.from_dict(spec["config"])
        return train(config, run_dir, progress=False, video=bool(spec.get("video", False)))
    if kind == "resume":
        return resume(run_dir, progress=False, video=bool(spec.get("video", False)))
    if kind == "baseline":
        args = {k: v for k, v in spec.items() if k not in ("kind", "env_id", "steps")}
        return run_baseline(spec["env_id"], spec["steps"], run_dir=run_dir, progress=False, **args)
    if kind == "random":
        args = {k: v for k, v in spec.items() if k not in ("kind", "task")}
        if spec.get("task"):
            get_task(spec["task"])  # registers its env id here (the grid named it: trusted)
        return run_random_policy(run_dir=run_dir, **args)
    raise ValueError(f"unknown cell kind {kind!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m prefrl.bench.cell RUN_DIR SPEC_JSON", file=sys.stderr)
        return 2
    try:
        summary = run_spec(args[0], json.loads(args[1]))
    except (KeyboardInterrupt, RunInterrupted) as err:
        print(f"interrupted: {err}", file=sys.stderr)
        return INTERRUPTED_EXIT
    print(f"final_eval_return={summary.get('final_eval_return')} wall_time_s={summary.get('wall_time_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
