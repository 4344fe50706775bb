"""``results.csv``: one row per finished run of a grid, with its normalised return.

Normalised return (the paper's Figure 2 scale, per env label and step budget)::

    (R - R_random) / (R_ppo_true - R_random)

with ``R`` the run's final evaluation return (mean true return over the evaluation
episodes), ``R_random`` and ``R_ppo_true`` the means over seeds of the finished
``random`` and ``ppo_true`` runs of the same env table (same steps and env settings).
0 is a random policy, 1 is PPO on the true reward. Empty when either baseline has no
finished run or the two means are equal.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.bench.grid import Grid, slug
from prefrl.bench.outdir import cell_state
from prefrl.rundir import RunDir
from prefrl.utils.io import replacing

RESULTS_FILE = "results.csv"
COLUMNS = (
    "env",
    "env_id",
    "task",
    "arm",
    "steps",
    "budget",
    "teacher",
    "selection",
    "seed",
    "final_return",
    "normalized_return",
    "final_return_stochastic",
    "labels_used",
    "tie_share",
    "complete",
    "reward_accuracy",
    "wall_time_s",
    "steps_per_sec",
    "run_dir",
)
"""``final_return``: mean true return of the final evaluation (deterministic policy: the
most likely action); ``final_return_stochastic``: the same with actions sampled as in
training (empty for runs made before it was recorded); ``labels_used``: labels
answered; ``tie_share``: the share of them answered "equally good" (empty for baselines); ``complete``: False for a preference run that ended short of its label budget
(its ``summary.json`` says why), empty for baselines; ``reward_accuracy``: the reward model's accuracy on held-out labels;
``wall_time_s``: the run's own wall time (resumed runs: all sessions); ``steps_per_sec``:
the agent's env steps per second of training (random policy: evaluation steps per
second); ``run_dir``: relative to the output directory."""


def collect_rows(grid: Grid, out: str | Path) -> list[dict[str, Any]]:
    """The rows of every finished cell of ``grid`` under ``out`` (grid order), normalised.

    Cells whose run directory holds other settings than the grid's are left out.
    """
    out = Path(out)
    rows = []
    for cell in grid.cells():
        if cell_state(cell, out)[0] != "done":
            continue
        summary = RunDir(cell.run_dir(out)).read_summary()
        rows.append(
            {
                "env": cell.env,
                "env_id": cell.env_id,
                "task": cell.task,
                "arm": cell.arm,
                "steps": cell.steps,
                "budget": cell.budget,
                "teacher": cell.teacher,
                "selection": cell.selection,
                "seed": cell.seed,
                "final_return": summary.get("final_eval_return"),
                "normalized_return": None,
                "final_return_stochastic": summary.get("final_eval_return_stochastic"),
                "labels_used": summary.get("labels_used"),
                "tie_share": summary.get("tie_share"),
                "complete": summary.get("complete"),
                "reward_accuracy": summary.get("reward_val_accuracy"),
                "wall_time_s": summary.get("wall_time_s"),
                "steps_per_sec": summary.get("env_steps_per_sec"),
                "run_dir": str(cell.run_dir(out).relative_to(out)),
            }
        )
    rows += collect_peer_rows(grid, out)
    normalize(rows)
    return rows


PEER_KIND = "peer"


def collect_peer_rows(grid: Grid, out: str | Path) -> list[dict[str, Any]]:
    """Rows of finished peer runs (other implementations, e.g. ``scripts/peer_imitation.py``)
    placed by hand beside the grid's own runs of an env, in ``OUT/runs/<env>/<name>/``
    (``<env>``: the env's label made a file name, as :meth:`Cell.run_dir` does:
    ``ALE/Pong-v5`` -> ``ALE_Pong-v5``; the label itself, where it differs, is read too): a
    ``config.json`` with ``"kind": "peer"``, ``arm``, ``labels``, ``steps``, ``seed``, and a
    ``summary.json`` with ``final_eval_return``. They are normalised against the same env's
    baselines."""
    out = Path(out)
    rows = []
    for env in grid.envs:
        folders = dict.fromkeys([out / "runs" / slug(env.label), out / "runs" / env.label])
        config_paths = [p for folder in folders for p in sorted(folder.glob("*/config.json"))]
        for config_path in config_paths:
            run = RunDir(config_path.parent)
            config = run.read_config()
            if config.get("kind") != PEER_KIND or not run.summary_path.exists():
                continue
            summary = run.read_summary()
            rows.append(
                {
                    "env": env.label,
                    "env_id": config.get("env_id", env.env_id),
                    "task": env.task,
                    "arm": config["arm"],
                    "steps": config.get("steps"),
                    "budget": config.get("labels"),
                    "teacher": "perfect",
                    "selection": None,
                    "seed": config.get("seed"),
                    "final_return": summary.get("final_eval_return"),
                    "normalized_return": None,
                    "final_return_stochastic": summary.get("final_eval_return_stochastic"),
                    "labels_used": summary.get("labels_used"),
                    "tie_share": summary.get("tie_share"),
                    "complete": summary.get("complete"),
                    "reward_accuracy": summary.get("reward_accuracy"),
                    "wall_time_s": summary.get("wall_time_s"),
                    "steps_per_sec": summary.get("env_steps_per_sec"),
                    "run_dir": str(run.path.relative_to(out)),
                }
            )
    return rows


def baseline_means(rows: list[dict[str, Any]]) -> dict[str, tuple[float | None, float | None]]:
    """``{env: (R_random, R_ppo_true)}``: the means over seeds of the two reference arms
    (None where an arm has no finished run)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for env in dict.fromkeys(r["env"] for r in rows):
        means = []
        for arm in ("random", "ppo_true"):
            values = [
                r["final_return"]
                for r in rows
                if r["env"] == env and r["arm"] == arm and _finite(r["final_return"])
            ]
            means.append(float(np.mean(values)) if values else None)
        out[env] = (means[0], means[1])
    return out


def normalize(rows: list[dict[str, Any]]) -> None:
    """Fill each row's ``normalized_return`` in place (see the module docstring)."""
    means = baseline_means(rows)
    for row in rows:
        r_random, r_ppo = means[row["env"]]
        value = row["final_return"]
        if r_random is None or r_ppo is None or r_ppo == r_random or not _finite(value):
            row["normalized_return"] = None
        else:
            row["normalized_return"] = (float(value) - r_random) / (r_ppo - r_random)


def write_results(grid: Grid, out: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """Write ``OUT/results.csv`` (atomically) from the run directories; returns its path and rows."""
    out = Path(out)
    rows = collect_rows(grid, out)
    path = out / RESULTS_FILE
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell_text(row[k]) for k in COLUMNS})
    return path, rows


def read_results(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` as strings (empty string: no value)."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def _cell_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
