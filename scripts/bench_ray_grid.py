#!/usr/bin/env python3
"""Wall time of one grid with ``prefrl bench --ray`` on one loopback Ray node with 1 CPU
and on two such nodes (docs/ray.md, "Benchmark grids on a cluster").

Each setting starts its own cluster with ``ray start`` (ports 6500-6599, every node in a
session of its own, so that only this script's Ray processes are stopped at the end),
runs ``prefrl bench GRID --out TMP --ray 127.0.0.1:PORT`` in a fresh output directory,
and times that command (the cluster's start is not counted; the driver's is). Prints a
table and writes a CSV with the load average of the machine before and after each run.

Usage: ``python scripts/bench_ray_grid.py [--steps N] [--csv PATH] [--max-load L]``; with ``--table CSV``
it only prints the Markdown table of a CSV it wrote (docs/ray.md shows that table).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / "docs" / "benchmarks" / "data" / "ray_grid.csv"

GRID = """
[grid]
description = "prefrl bench --ray timing: six cells, four of them preference runs of similar length"
seeds = [0]
teachers = ["perfect", "mistake:eps=0.1"]
selections = ["random"]
backend = "inprocess"
num_evals = 2

[envs.Pendulum-v1]
steps = {steps}
budgets = [25, 50]
clip_length = 25
ppo = {{ num_envs = 4, num_steps = 256 }}
"""


def session_processes(sessions: list[int]) -> list[tuple[int, str]]:
    """``(pid, program)`` of the live processes in ``sessions`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            program = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) in sessions:
            found.append((int(entry.name), program))
    return found


class LoopbackNodes:
    """Ray nodes on this machine, started with ``ray start`` on 127.0.0.1, each in a
    session of its own: :meth:`stop` kills exactly their processes (``ray stop`` would
    stop every Ray of the machine, other people's too)."""

    def __init__(self, port: int, env: dict[str, str] | None = None):
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.env = env if env is not None else node_env()
        self.sessions: list[int] = []

    def start(self, *args: str) -> int:
        """``ray start ARGS`` on loopback; returns the session id of the node's processes."""
        ray = Path(sys.executable).parent / "ray"
        proc = subprocess.Popen(
            [str(ray), "start", "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.sessions.append(proc.pid)
        output, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{output}")
        return proc.pid

    def head(self, cpus: int = 1) -> int:
        return self.start(
            "--head", "--port", str(self.port), "--num-cpus", str(cpus), "--include-dashboard", "false"
        )

    def join(self, cpus: int = 1) -> int:
        return self.start("--address", self.address, "--num-cpus", str(cpus))

    def raylet(self, session: int) -> int:
        """The pid of the raylet of the node started in ``session``."""
        return next(pid for pid, program in session_processes([session]) if program.endswith("raylet"))

    def stop(self) -> None:
        for pid, _ in session_processes(self.sessions):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> LoopbackNodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_env(health_check_ms: int = 1000) -> dict[str, str]:
    """The environment of the nodes and the driver: this checkout importable (workers
    inherit it from ``ray start``), token authentication as the head asks for it, and a
    dead node noticed within seconds."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RAY_AUTH_MODE": "token",
        "RAY_health_check_period_ms": str(health_check_ms),
        "RAY_health_check_failure_threshold": "3",
    }


def free_port(low: int = 6500, high: int = 6600, step: int = 10) -> int:
    """A port in ``[low, high)`` where nothing listens (Ray takes a few above it too)."""
    for port in range(low, high, step):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


def wait_for_load(max_load: float | None, wait_s: float) -> None:
    """On a shared machine: wait (at most ``wait_s``) until the 1-minute load average is
    at most ``max_load``, so that the nodes' CPUs are free (None: do not wait)."""
    deadline = time.monotonic() + wait_s
    while max_load is not None and os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


def timed_grid(
    nodes: int, grid: Path, work: Path, max_load: float | None = None, wait_s: float = 0
) -> tuple[float, float, float, int]:
    """``(wall s, load before, load after, cells)`` of the grid on ``nodes`` 1-CPU nodes."""
    out = work / f"out-{nodes}"
    with LoopbackNodes(free_port()) as cluster:
        cluster.head(cpus=1)
        for _ in range(nodes - 1):
            cluster.join(cpus=1)
        wait_for_load(max_load, wait_s)
        load_before = os.getloadavg()[0]
        cmd = [
            sys.executable,
            "-m",
            "prefrl.cli",
            "bench",
            str(grid),
            "--out",
            str(out),
            "--ray",
            cluster.address,
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    cells = len(list((out / "runs").glob("*/*/summary.json")))
    return wall, load_before, load_after, cells


def table(rows: list[dict[str, str]]) -> str:
    """The Markdown table of docs/ray.md from the CSV's rows."""
    lines = [
        "| nodes x CPUs | cells | wall s | vs one node | load avg (1 min) before / after |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['nodes']} x {r['cpus_per_node']} | {r['cells']} | {float(r['wall_s']):.1f} "
            f"| {float(r['ratio_vs_one_node']):.2f} | {r['loadavg_1m_before']} / {r['loadavg_1m_after']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps of every cell (default 20000)")
    parser.add_argument(
        "--csv", type=Path, default=DEFAULT_CSV, help=f"where to write (default {DEFAULT_CSV})"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="before each run, wait until the 1-minute load average is at most this (a shared machine)",
    )
    parser.add_argument("--wait-s", type=float, default=900, help="the longest such wait (default 900)")
    parser.add_argument("--table", type=Path, default=None, help="only print the table of this CSV")
    args = parser.parse_args(argv)
    if args.table is not None:
        with args.table.open(newline="") as f:
            print(table(list(csv.DictReader(f))))
        return 0
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-grid-") as tmp:
        grid = Path(tmp) / "ray_grid.toml"
        grid.write_text(GRID.format(steps=args.steps))
        for nodes in (1, 2):
            wall, before, after, cells = timed_grid(nodes, grid, Path(tmp), args.max_load, args.wait_s)
            rows.append(
                {
                    "nodes": nodes,
                    "cpus_per_node": 1,
                    "cells": cells,
                    "steps_per_cell": args.steps,
                    "wall_s": round(wall, 1),
                    "ratio_vs_one_node": round(wall / rows[0]["wall_s"], 3) if rows else 1.0,
                    "loadavg_1m_before": round(before, 2),
                    "loadavg_1m_after": round(after, 2),
                    "machine_cpus": os.cpu_count(),
                    "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                }
            )
    print(table([{k: str(v) for k, v in r.items()} for r in rows]))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
