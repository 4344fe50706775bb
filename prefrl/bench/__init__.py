"""Benchmark grids (``prefrl bench CONFIG``, ``prefrl report OUT``).

A grid file (TOML, see :mod:`prefrl.bench.grid`) lists envs, label budgets, synthetic
teachers, query selections and seeds; every combination is a preference run, and every
env also gets its baselines at the same step budget (a random policy, PPO on the true
reward, optionally PPO on a constant reward). Each run is an ordinary run directory
under ``OUT/runs/<env>/<name>``, run in its own process (:mod:`prefrl.bench.runner`);
``OUT/results.csv``, ``OUT/report.md`` and ``OUT/figures/`` summarise them
(:mod:`prefrl.bench.results`, :mod:`prefrl.bench.report`).

    from prefrl.bench import bench, report
    bench("benchmarks/smoke.toml", "runs/bench/smoke", jobs=2)   # run (resumes), then report
    bench("benchmarks/smoke.toml", ray="127.0.0.1:6379")           # the cells as Ray tasks
    report("runs/bench/smoke")                                     # rebuild the report only
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefrl.bench.grid import Cell, EnvSettings, Grid, GridError, load_grid, parse_grid
from prefrl.bench.ray_cells import RayCells, cluster_ready
from prefrl.bench.report import rebuild, write_outputs
from prefrl.bench.runner import BenchBusy, BenchIncomplete, CellResult, GridOutcome, run_grid
from prefrl.errors import ConfigError
from prefrl.utils.ray_cluster import connect

__all__ = [
    "BenchBusy",
    "BenchIncomplete",
    "Cell",
    "CellResult",
    "EnvSettings",
    "Grid",
    "GridError",
    "GridOutcome",
    "bench",
    "default_out",
    "load_grid",
    "parse_grid",
    "rebuild",
    "report",
    "run_grid",
    "write_outputs",
]


def default_out(config: str | Path) -> Path:
    """Where ``prefrl bench CONFIG`` writes without ``--out``: ``runs/bench/<config name>``."""
    return Path("runs") / "bench" / Path(config).stem


def bench(
    config: str | Path,
    out: str | Path | None = None,
    *,
    jobs: int | None = None,
    command: str | None = None,
    echo: Callable[[str], None] = print,
    ray: bool | str = False,
    cpus_per_cell: float | None = None,
) -> dict[str, Any]:
    """``prefrl bench``: check the grid file, run its unfinished cells, write the results.

    Args:
        config: the grid file (TOML).
        out: output directory (default :func:`default_out`); rerun with the same one to
            resume: finished cells are skipped, interrupted preference runs continued.
        jobs: runs at a time (default: the grid's ``jobs``, else 1).
        command: the command line for the report (default ``sys.argv``).
        echo: where progress lines go.
        ray: run each cell as a Ray task (docs/ray.md): True on a private cluster of this
            machine, ``"HOST:PORT"`` or ``"auto"`` on that cluster; False: subprocesses here.
            With Ray, ``jobs`` defaults to every cell at once (Ray queues them).
        cpus_per_cell: CPUs Ray reserves for each cell (default 1; only with ``ray``).

    Returns:
        ``{"out", "cells", "finished", "results", "report", "figures"}`` (paths as strings).

    Raises:
        GridError: the grid file is invalid (nothing has run).
        ConfigError: ``cpus_per_cell`` without ``ray``, or more than any node has.
        RayMissingError, RayConnectError: ``ray`` asked for, and Ray is not installed or
            the cluster cannot be joined (nothing has run).
        FileNotFoundError: no such grid file.
        BenchBusy: another bench is running in ``out``.
        BenchIncomplete: some cells failed, are stale or did not start; the message lists
            them. Everything finished is in the results all the same.
        KeyboardInterrupt: Ctrl-C; running cells are stopped, results written.
    """
    grid = load_grid(config)
    if jobs is not None and jobs < 1:
        raise GridError(f"jobs must be at least 1, not {jobs}")
    if cpus_per_cell is not None and (ray is False or cpus_per_cell <= 0):
        raise ConfigError(
            f"--cpus-per-cell {cpus_per_cell:g}: give a positive number of CPUs"
            if ray is not False
            else "--cpus-per-cell is what each Ray task reserves: use it with --ray"
        )
    out = Path(out) if out is not None else default_out(config)
    if ray is False:
        outcome = run_grid(grid, out, jobs=jobs, echo=echo, command=command)
    else:
        cpus = cpus_per_cell or 1
        with connect(None if ray is True else ray) as ray_module:
            cluster_ready(ray_module, cpus)
            cells = RayCells(ray_module, cpus_per_cell=cpus)
            outcome = run_grid(grid, out, jobs=jobs, echo=echo, command=command, executor=cells)
    summary = {
        "out": str(out),
        "cells": len(outcome.results),
        "finished": sum(r.complete for r in outcome.results),
        "results": str(outcome.outputs["results"]),
        "report": str(outcome.outputs["report"]),
        "figures": [str(f) for f in outcome.outputs["figures"]],
    }
    if not outcome.ok:
        bad = [r for r in outcome.results if not r.complete]
        listing = "\n".join(f"  {r.cell.key}: {r.status}" for r in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise BenchIncomplete(
            f"{outcome.describe()}:\n{listing}{more}\nEach failed cell's log is RUN_DIR/bench.log. "
            f"Rerun the same command to retry them (finished cells are skipped)."
        )
    return summary


def report(out: str | Path) -> dict[str, Any]:
    """``prefrl report OUT``: rebuild ``results.csv``, ``report.md`` and the figures of a
    bench output directory from its run directories, running nothing.

    Returns ``{"results", "report", "figures", "rows"}`` (paths as strings).

    Raises:
        FileNotFoundError: ``out`` is not a bench output directory.
        GridError: its ``grid.toml`` no longer parses.
    """
    paths = rebuild(out)
    return {
        "results": str(paths["results"]),
        "report": str(paths["report"]),
        "figures": [str(f) for f in paths["figures"]],
        "rows": paths["rows"],
    }
