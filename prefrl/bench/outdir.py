"""A grid's output directory: where each cell's run lives, which state it is in, and the
invocations recorded there (``OUT/bench.json``).

The bench modules form one chain: ``grid`` <- ``outdir`` <- ``results`` <- ``report``
<- ``runner``; each imports only the ones before it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from prefrl.baseline import reference_ppo_config
from prefrl.bench.grid import Cell
from prefrl.errors import PrefrlError
from prefrl.rundir import RunDir
from prefrl.runtime.config import TrainConfig

GRID_COPY = "grid.toml"
INVOCATIONS = "bench.json"


class BenchFileError(PrefrlError, ValueError):
    """A file of a grid's output directory that prefrl cannot read (``bench.json`` cut
    short or edited); the message names it."""


# TrainConfig fields that do not change what a preference run measures.
_IRRELEVANT_TRAIN_FIELDS = ("backend", "checkpoint_every", "query_videos")

# Baseline settings that a baseline's config.json did not always record: a run made before
# they were written there lacks them. Its eval_episodes is read from its summary (the
# episodes of its final evaluation, see cell_state); its num_evals is unknown and not
# compared: it only spaces the points of the run's learning curve (evaluation has its own
# random numbers, so training and the final evaluation do not depend on it).
_LATER_BASELINE_FIELDS = ("eval_episodes", "num_evals")


def cell_state(cell: Cell, out: str | Path) -> tuple[str, str]:
    """``(state, why)`` of ``cell`` under ``out``: state is done, interrupted, new or stale
    (``why`` then names the settings that differ)."""
    run = RunDir(cell.run_dir(out))
    if not run.config_path.exists():
        return ("done" if run.summary_path.exists() else "new"), ""
    try:
        stored = run.read_config()
        if cell.spec["kind"] == "baseline" and "eval_episodes" not in stored:
            stored = {**stored, **_final_eval_episodes(run)}
        differences = config_differences(cell, stored)
    except (OSError, ValueError, TypeError, KeyError) as err:
        return "stale", f"{run.config_path} cannot be read as this cell's ({type(err).__name__}: {err})"
    if differences:
        return "stale", (
            f"{run.path} holds a run with other settings ({'; '.join(differences)}). "
            "Delete that directory to run the cell again, or use another output directory."
        )
    return ("done" if run.summary_path.exists() else "interrupted"), ""


def config_differences(cell: Cell, stored: dict[str, Any]) -> list[str]:
    """``["steps: 1000 in the run, 2000 in the grid", ...]``: the settings where a run's
    ``config.json`` and the cell disagree (empty: the run is this cell's)."""
    expected = expected_config(cell)
    kind = {"train": "train", "baseline": "baseline", "random": "random"}[cell.spec["kind"]]
    if stored.get("kind") != kind:
        return [f"kind: {stored.get('kind')!r} in the run, {kind!r} in the grid"]
    if kind == "train":
        stored = _jsonable(TrainConfig.from_dict(stored).to_dict())
    out = []
    for key, want in expected.items():
        if kind == "baseline" and key in _LATER_BASELINE_FIELDS and key not in stored:
            continue  # a run of an older prefrl, which did not record it: unknown
        have = stored.get(key)
        if have != want:
            out.append(f"{key}: {have!r} in the run, {want!r} in the grid")
    return out


def expected_config(cell: Cell) -> dict[str, Any]:
    """The ``config.json`` entries that must match for a run directory to be ``cell``'s."""
    spec = cell.spec
    if spec["kind"] == "train":
        config = _jsonable(TrainConfig.from_dict(spec["config"]).to_dict())
        return {k: v for k, v in config.items() if k not in _IRRELEVANT_TRAIN_FIELDS}
    if spec["kind"] == "baseline":
        ppo = dataclasses.asdict(reference_ppo_config(spec["env_id"], spec["ppo_overrides"]))
        keys = ("env_id", "steps", "seed", "reward", "fixed_length", *_LATER_BASELINE_FIELDS)
        return {**{k: spec[k] for k in keys}, "ppo": _jsonable(ppo)}
    return {
        "env_id": spec["env_id"],
        "seed": spec["seed"],
        "fixed_length": spec["fixed_length"],
        "eval_episodes": spec["episodes"],
    }


def _final_eval_episodes(run: RunDir) -> dict[str, int]:
    """``{"eval_episodes": N}`` of a finished baseline run whose ``config.json`` does not
    record it: the number of returns of its final evaluation; empty if it has no
    ``summary.json`` or that holds none (unknown)."""
    try:
        returns = run.read_summary().get("eval_returns")
    except (OSError, ValueError):  # none (not finished: it is restarted anyway), or damaged
        return {}
    return {"eval_episodes": len(returns)} if isinstance(returns, list) else {}


def read_invocations(out: str | Path) -> list[dict[str, Any]]:
    """The invocations recorded in ``OUT/bench.json`` (oldest first; empty if none).

    Raises:
        BenchFileError: the file is not JSON, or not the record ``prefrl bench`` writes.
    """
    path = Path(out) / INVOCATIONS
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_bytes())
    except ValueError as err:  # not JSON, or not UTF-8
        raise BenchFileError(f"{path} is damaged (not JSON: {err})") from None
    invocations = data.get("invocations", []) if isinstance(data, dict) else None
    if not isinstance(invocations, list) or not all(isinstance(inv, dict) for inv in invocations):
        raise BenchFileError(f"{path} is damaged (not a record of invocations)")
    return invocations


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(data)))
