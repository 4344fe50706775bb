"""Running a grid: each cell in its own process, at most ``jobs`` at a time, resumable.

A cell's state is read from its run directory (``OUT/runs/<env>/<name>``):

* ``summary.json`` exists: finished, skipped;
* ``config.json`` but no ``summary.json``: interrupted. A preference run is continued
  with ``prefrl.runtime.run.resume`` (its labels and checkpoints are kept); a baseline or
  random-policy run is cheap and restarted from scratch;
* neither: new, started;
* a ``config.json`` that asks for something else than the grid (the grid file was
  edited): stale, not run and reported, so old and new settings never mix in one table.

Each cell's output (and, on failure, its traceback) goes to ``RUN_DIR/bench.log``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prefrl import __version__
from prefrl.bench.grid import INTERRUPTED_EXIT, Cell, Grid
from prefrl.bench.outdir import GRID_COPY, INVOCATIONS, BenchFileError, cell_state, read_invocations
from prefrl.bench.report import write_outputs
from prefrl.bench.results import write_results
from prefrl.rundir import RunDir, write_json
from prefrl.runtime.errors import RunError
from prefrl.utils.io import atomic_write
from prefrl.utils.locking import LockBusy, exclusive

LOG_NAME = "bench.log"
LOCK_NAME = "bench.lock"
LOG_TAIL_LINES = 15
INTERRUPT_GRACE_S = 30.0


class BenchIncomplete(RunError):
    """Some cells of a grid did not finish; the message lists them and how to go on."""


class BenchBusy(RunError):
    """Another bench holds the output directory."""


@dataclass
class CellResult:
    """What became of one cell in one invocation."""

    cell: Cell
    status: str
    """finished (run now), done (finished before), failed, stopped (by Ctrl-C), stale (its
    directory holds other settings) or not_run (the grid stopped before it started)"""
    wall_time_s: float = 0.0
    """seconds this invocation spent on it (process start included)"""
    summary: dict[str, Any] | None = None
    message: str = ""
    """for failed and stale cells: what went wrong, with the tail of the log"""

    @property
    def complete(self) -> bool:
        return self.status in ("finished", "done")


@dataclass
class GridOutcome:
    """The result of :func:`run_grid`."""

    out: Path
    results: list[CellResult]
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """what :func:`prefrl.bench.report.write_outputs` wrote (results, report, figures)"""

    @property
    def ok(self) -> bool:
        """Every cell of the grid has its ``summary.json``."""
        return all(r.complete for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def describe(self) -> str:
        """One line: ``18 of 20 cells finished (2 before, 16 now); 1 failed, 1 not run``."""
        total = len(self.results)
        complete = sum(r.complete for r in self.results)
        text = f"{complete} of {total} cells finished ({self.count('done')} before, {self.count('finished')} now)"
        problems = [
            f"{self.count(s)} {s.replace('_', ' ')}"
            for s in ("failed", "stopped", "stale", "not_run")
            if self.count(s)
        ]
        return text + ("; " + ", ".join(problems) if problems else "")


def run_grid(
    grid: Grid,
    out: str | Path,
    *,
    jobs: int | None = None,
    should_stop: Callable[[CellResult], bool] | None = None,
    echo: Callable[[str], None] = print,
    command: str | None = None,
    executor: CellExecutor | None = None,
) -> GridOutcome:
    """Run every unfinished cell of ``grid`` under ``out``, then write the results.

    Args:
        grid: a checked grid (:func:`prefrl.bench.grid.load_grid`).
        out: the output directory; rerunning with the same one skips finished cells.
        jobs: runs at a time (default: the grid's ``jobs``).
        should_stop: called with each cell that ends in this invocation; once it returns
            True no further cell starts (those running finish). For tests and callers
            that want only part of a grid.
        echo: where progress lines go (one per ended cell, plus a header and a total).
        command: the command line recorded in ``report.md`` (default: ``sys.argv``).
        executor: where the cells run (default :class:`LocalCells`: subprocesses here).

    Returns:
        the outcome of every cell; ``outcome.ok`` says whether all have finished.
        ``results.csv``, ``report.md`` and the figures are written even when not.

    Raises:
        BenchBusy: another bench is running in ``out``.
        KeyboardInterrupt: after stopping the running cells (they can be resumed) and
            writing the results of the finished ones.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        return _run_grid(grid, out, jobs, should_stop, echo, command, executor or LocalCells())


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``OUT/bench.lock`` so that two benches never run the same cells at once."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(out / LOCK_NAME))
        except LockBusy as busy:
            raise BenchBusy(
                f"another prefrl bench (pid {busy.pid or '?'}) is running in {out}; "
                "wait for it or stop it, or use another --out"
            ) from None
        yield


def _run_grid(
    grid: Grid,
    out: Path,
    requested_jobs: int | None,
    should_stop: Callable[[CellResult], bool] | None,
    echo: Callable[[str], None],
    command: str | None,
    executor: CellExecutor,
) -> GridOutcome:
    atomic_write(out / GRID_COPY, grid.source)
    cells = grid.cells()
    states = {cell.key: cell_state(cell, out) for cell in cells}
    results: dict[str, CellResult] = {}
    todo: list[Cell] = []
    for cell in cells:
        state, why = states[cell.key]
        if state == "done":
            results[cell.key] = CellResult(cell, "done", summary=RunDir(cell.run_dir(out)).read_summary())
        elif state == "stale":
            results[cell.key] = CellResult(cell, "stale", message=why)
        else:
            todo.append(cell)
    jobs = executor.jobs(requested_jobs, grid, len(todo))
    where = executor.describe()
    command = command if command is not None else command_line()
    record_invocation(out, command, jobs, grid, where, echo)
    resumed = sum(states[c.key][0] == "interrupted" for c in todo)
    stale = sum(r.status == "stale" for r in results.values())
    echo(
        f"bench {grid.name}: {len(cells)} cells: {len(results) - stale} done before, "
        + (f"{stale} stale, " if stale else "")
        + f"{len(todo)} to run"
        + (f" ({resumed} interrupted: preference runs resume, baselines restart)" if resumed else "")
        + f"; jobs={jobs}"
        + (
            f" on Ray ({where['ray']['nodes']} nodes, {where['ray']['cpus']:g} CPUs)"
            if "ray" in where
            else ""
        )
        + f"; output: {out}"
    )
    for result in results.values():
        if result.status == "stale":
            echo(f"STALE {result.cell.key}: {result.message}")
    pool = _Pool(out, grid, states, echo, len(todo), should_stop, executor)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # a scheduler's SIGTERM stops the grid as cleanly as Ctrl-C

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    try:
        pool.run(todo, jobs)
    except KeyboardInterrupt:
        pool.interrupt()
        results.update(pool.results)
        _finish(grid, out, cells, results, echo)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    results.update(pool.results)
    return _finish(grid, out, cells, results, echo)


def _finish(
    grid: Grid, out: Path, cells: list[Cell], results: dict[str, CellResult], echo: Callable[[str], None]
) -> GridOutcome:
    outcome = GridOutcome(out, [results.get(c.key) or CellResult(c, "not_run") for c in cells])
    outcome.outputs = write_outputs(grid, out)
    echo(f"bench {grid.name}: {outcome.describe()}")
    echo(f"results: {outcome.outputs['results']}  report: {outcome.outputs['report']}")
    return outcome


class CellExecutor(Protocol):
    """Where a cell's process runs: :class:`LocalCells` on this machine, or
    :class:`prefrl.bench.ray_cells.RayCells` as Ray tasks on a cluster."""

    def jobs(self, requested: int | None, grid: Grid, todo: int) -> int:
        """Cells at a time, given ``--jobs`` (None: not given) and the cells to run."""
        ...

    def run(self, cell: Cell, run_dir: Path, spec: dict[str, Any], action: str) -> int | None:
        """Run ``spec`` (the cell's, or a resume) into ``run_dir`` and wait for it; its output
        goes to ``RUN_DIR/bench.log`` after a header naming ``action``. Returns the exit
        status of ``python -m prefrl.bench.cell``, or None when :meth:`stop` came first."""
        ...

    def stop(self, grace_s: float) -> None:
        """Stop the running cells (a rerun resumes them) and start no more."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where the cells run, for ``OUT/bench.json`` (empty: this machine)."""
        ...


class LocalCells:
    """Each cell in a subprocess of this one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopped = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def jobs(self, requested: int | None, grid: Grid, todo: int) -> int:
        return max(1, requested or grid.jobs)

    def run(self, cell: Cell, run_dir: Path, spec: dict[str, Any], action: str) -> int | None:
        cmd = cell_command(run_dir, spec)
        with (run_dir / LOG_NAME).open("a") as f:
            with self.lock:
                if self.stopped:
                    return None
                f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {action}: {shlex.join(cmd)}\n")
                f.flush()
                proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env())
                self.procs[cell.key] = proc
            try:
                return proc.wait()
            finally:
                with self.lock:
                    self.procs.pop(cell.key, None)

    def stop(self, grace_s: float) -> None:
        """Stop the running cells and wait for them: a preference run saves and exits on SIGINT.

        A Ctrl-C in the terminal has reached the cells already (they share its process
        group), so each gets ``grace_s`` to end on its own before it is sent SIGINT (a
        second one could cut its clean-up short), and as long again before it is killed.
        """
        with self.lock:
            self.stopped = True
            procs = list(self.procs.values())
        for sig in (None, signal.SIGINT, signal.SIGKILL):
            running = [p for p in procs if p.poll() is None]
            if not running:
                return
            for proc in running:
                if sig is not None:
                    proc.send_signal(sig)
            deadline = time.monotonic() + grace_s
            for proc in running:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass

    def describe(self) -> dict[str, Any]:
        return {}


class _Pool:
    """Runs cells through an executor, at most ``jobs`` at a time, from worker threads."""

    def __init__(
        self,
        out: Path,
        grid: Grid,
        states: dict[str, tuple[str, str]],
        echo: Callable[[str], None],
        total: int,
        should_stop: Callable[[CellResult], bool] | None,
        executor: CellExecutor,
    ):
        self.out, self.grid, self.states, self.echo, self.total = out, grid, states, echo, total
        self.should_stop, self.executor = should_stop, executor
        self.results: dict[str, CellResult] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self, cells: list[Cell], jobs: int) -> None:
        with ThreadPoolExecutor(max_workers=jobs) as executor:
            futures: list[Future[CellResult]] = [executor.submit(self._run_cell, cell) for cell in cells]
            try:
                for future in futures_in_completion_order(futures):
                    future.result()
            except BaseException:
                self.interrupt()  # before the executor waits for its threads
                raise

    def interrupt(self, grace_s: float = INTERRUPT_GRACE_S) -> None:
        """Start no more cells and stop the running ones (see the executor's ``stop``)."""
        self.stop.set()
        self.executor.stop(grace_s)

    def _run_cell(self, cell: Cell) -> CellResult:
        if self.stop.is_set():
            return CellResult(cell, "not_run")
        start = time.perf_counter()
        try:
            return self._launch(cell)
        except Exception as err:  # e.g. the run directory cannot be written: this cell fails, not the grid
            result = CellResult(
                cell, "failed", time.perf_counter() - start, message=f"{type(err).__name__}: {err}"
            )
            self._report(result)
            return result

    def _launch(self, cell: Cell) -> CellResult:
        run_dir = cell.run_dir(self.out)
        interrupted = self.states[cell.key][0] == "interrupted"
        if interrupted and cell.arm != "prefrl":
            clear_run_dir(run_dir)
        spec = (
            {"kind": "resume", "video": cell.spec.get("video", False)}
            if interrupted and cell.arm == "prefrl"
            else cell.spec
        )
        action = "resume" if spec["kind"] == "resume" else ("restart" if interrupted else "start")
        run_dir.mkdir(parents=True, exist_ok=True)
        log = run_dir / LOG_NAME
        if self.stop.is_set():  # should_stop said so while this cell was being prepared
            return CellResult(cell, "not_run")
        start = time.perf_counter()
        returncode = self.executor.run(cell, run_dir, spec, action)
        wall = time.perf_counter() - start
        if returncode is None:
            return CellResult(cell, "not_run")
        run = RunDir(run_dir)
        if returncode == 0 and run.summary_path.exists():
            result = CellResult(cell, "finished", wall, summary=run.read_summary())
        elif returncode in (INTERRUPTED_EXIT, -signal.SIGINT):
            result = CellResult(cell, "stopped", wall, message="interrupted (Ctrl-C); rerun to continue it")
        else:
            result = CellResult(
                cell, "failed", wall, message=f"exit status {returncode}; {log}:\n{log_tail(log)}"
            )
        self._report(result)
        return result

    def _report(self, result: CellResult) -> None:
        with self.lock:
            self.results[result.cell.key] = result
            # decided here, in the worker, before it can take the next cell
            if self.should_stop is not None and self.should_stop(result):
                self.stop.set()
            n = len(self.results)
            width = len(str(self.total))
            head = f"[{n:>{width}}/{self.total}] {result.cell.key:<52}"
            if result.status == "finished":
                ret = (result.summary or {}).get("final_eval_return")
                ret_text = f"{ret:10.1f}" if isinstance(ret, int | float) else f"{ret!s:>10}"
                self.echo(f"{head} return {ret_text}  {result.wall_time_s:7.1f} s")
            elif result.status == "stopped":
                self.echo(f"{head} stopped after {result.wall_time_s:.1f} s: {result.message}")
            else:
                self.echo(f"{head} FAILED after {result.wall_time_s:.1f} s: {result.message}")
        if result.status == "finished":
            try:  # keeps results.csv current during a long grid; the final write is authoritative
                write_results(self.grid, self.out)
            except (OSError, ValueError) as err:
                self.echo(f"(results.csv not updated: {err})")


def futures_in_completion_order(futures: list[Future[CellResult]]) -> Iterator[Future[CellResult]]:
    """``concurrent.futures.as_completed``, polling so that Ctrl-C reaches the main thread
    promptly (a plain wait on a lock is not interruptible on every platform)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        yield from done


def cell_command(run_dir: Path, spec: dict[str, Any]) -> list[str]:
    """The command that runs one cell: ``python -m prefrl.bench.cell RUN_DIR SPEC_JSON``."""
    return [sys.executable, "-m", "prefrl.bench.cell", str(run_dir), json.dumps(spec)]


def clear_run_dir(run_dir: Path) -> None:
    """Empty a run directory for a fresh start or for the files a cell sent back (its log stays)."""
    for child in run_dir.iterdir():
        if child.name == LOG_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # the log shows progress as it happens
    # one thread per process: jobs x processes already fill the cores
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log, indented, for a failure message."""
    try:
        text = path.read_text(errors="replace").rstrip("\n").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    | " + line for line in text[-lines:])


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line as one would type it: ``prefrl bench ...``,
    ``python -m prefrl.cli bench ...`` or ``python -m prefrl.bench run ...``."""
    argv = list(sys.argv if argv is None else argv)
    first = Path(argv[0]) if argv else Path("prefrl")
    if first.name == "prefrl":
        head = ["prefrl"]
    elif first.name == "__main__.py" and first.parent.name == "cli":
        head = ["python", "-m", "prefrl.cli"]
    elif first.name == "__main__.py" and first.parent.name == "bench":
        head = ["python", "-m", "prefrl.bench"]
    else:
        head = [str(first)]
    return shlex.join(head + argv[1:])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict[str, Any]:
    """Platform, CPU count and library versions, for the report."""
    try:
        import torch

        torch_version = str(torch.__version__)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = "not installed"
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch_version,
        "prefrl": __version__,
    }


def record_invocation(
    out: Path,
    command: str,
    jobs: int,
    grid: Grid,
    where: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Append this invocation (command, date, machine and ``where``: e.g. the Ray cluster
    the cells ran on) to ``OUT/bench.json``. A damaged one is kept aside as
    ``bench.json.damaged`` (``.damaged.2``, ... when that is taken; said with ``echo``),
    and a new record starts."""
    path = out / INVOCATIONS
    try:
        invocations = read_invocations(out)
    except BenchFileError as err:
        aside = path.with_name(path.name + ".damaged")
        number = 1
        while aside.exists():
            number += 1
            aside = path.with_name(f"{path.name}.damaged.{number}")
        path.replace(aside)
        echo(f"{err}; kept as {aside}, a new record starts")
        invocations = []
    data: dict[str, Any] = {"invocations": invocations}
    data["invocations"].append(
        {
            "command": command,
            "cwd": os.getcwd(),
            "grid": str(grid.path) if grid.path else None,
            "jobs": jobs,
            "started_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": machine_info(),
            **(where or {}),
        }
    )
    write_json(path, data)
