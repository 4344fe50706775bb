"""A grid's cells as Ray tasks (``prefrl bench CONFIG --ray [ADDRESS]``; docs/ray.md).

Each cell is one task with the cell's CPUs (and a GPU where its settings ask for
``device=cuda``). The task runs the same ``python -m prefrl.bench.cell`` process as a
local bench, in a fresh temporary directory on whichever node Ray picks, and returns
the exit status, the output and a tar of the run directory. The driver alone writes
``OUT``: it unpacks a cell's files into ``OUT/runs/<env>/<name>`` only once the task has
returned, so a task that Ray retries after its worker or node died writes nothing
twice, and the grid counts each cell once. An interrupted preference cell travels to
its task as a tar of its run directory, and comes back resumed.
"""

from __future__ import annotations

import ctypes
import io
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from prefrl import __version__
from prefrl.bench.grid import INTERRUPTED_EXIT, Cell, Grid
from prefrl.bench.runner import LOG_NAME, cell_command, child_env, clear_run_dir
from prefrl.errors import ConfigError
from prefrl.tasks import trust_task_file, trusted_task_files

MAX_RETRIES = 3
"""times Ray reruns a cell whose worker process or node died (not one that failed)"""

VERSION_MISMATCH_EXIT = 3
"""the exit status of a cell refused because its node has another prefrl"""

TMP_PREFIX = "prefrl-cell-"
"""the temporary directories of cells on the nodes: ``$TMPDIR/prefrl-cell-*/<run name>``"""

OWNER_FILE = "owner.pid"
"""in such a directory: the pid of the task process that made it"""

_PR_SET_PDEATHSIG = 1


class RayCells:
    """Runs cells as Ray tasks on the cluster ``ray`` is connected to.

    Args:
        ray: the initialised ``ray`` module (:func:`prefrl.utils.ray_cluster.connect`).
        cpus_per_cell: CPUs Ray reserves for each cell (its torch uses one thread).
        max_retries: reruns of a cell whose worker or node died.
    """

    def __init__(self, ray: ModuleType, *, cpus_per_cell: float = 1, max_retries: int = MAX_RETRIES):
        self.ray = ray
        self.cpus_per_cell = cpus_per_cell
        self.max_retries = max_retries
        self.task = ray.remote(max_retries=max_retries, retry_exceptions=False)(run_cell_task)
        self.lock = threading.Lock()
        self.stopped = False
        self.refs: dict[str, Any] = {}

    def jobs(self, requested: int | None, grid: Grid, todo: int) -> int:
        """``--jobs`` if given, else every cell at once: Ray queues them until CPUs are
        free, and a node that joins the cluster takes cells too. (The grid's own ``jobs``
        is for one machine.)"""
        return max(1, requested or todo)

    def options(self, cell: Cell) -> dict[str, Any]:
        """The task's resources: its CPUs, and a GPU if the cell trains on CUDA."""
        return {"num_cpus": self.cpus_per_cell, "num_gpus": 1 if wants_gpu(cell.spec) else 0}

    def run(self, cell: Cell, run_dir: Path, spec: dict[str, Any], action: str) -> int | None:
        payload = pack(run_dir) if spec["kind"] == "resume" else None
        log = run_dir / LOG_NAME
        with self.lock:
            if self.stopped:
                return None
            ref = self.task.options(**self.options(cell)).remote(
                spec, cell.name, payload, __version__, trusted_task_files()
            )
            self.refs[cell.key] = ref
        shown = cell_command(Path("<tmp>") / cell.name, spec)
        with log.open("a") as f:
            f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {action} as a Ray task: {shlex.join(shown)}\n")
        try:
            returncode, files, output, node = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            with self.lock:
                cancelled = self.stopped
            if cancelled or isinstance(err, self.ray.exceptions.TaskCancelledError):
                # stopped by Ctrl-C: its files stay as they were; a rerun resumes. (A cancel
                # that kills the worker may surface as the worker's death, not as a cancel.)
                return INTERRUPTED_EXIT
            message = ray_failure(err, self.ray, self.max_retries)
            with log.open("a") as f:
                f.write(f"ray: {message}\n")
            raise RuntimeError(f"{message}; {log}") from None
        finally:
            with self.lock:
                self.refs.pop(cell.key, None)
        if files:  # the cell's whole directory: what it was sent, plus what it wrote
            clear_run_dir(run_dir)
            unpack(files, run_dir)
        with log.open("a") as f:
            f.write(f"--- ran on {node}\n{output}")
        return int(returncode)

    def stop(self, grace_s: float) -> None:
        """Cancel every cell not yet returned: their workers are killed, what they wrote
        on the nodes is dropped, and a rerun starts or resumes them from ``OUT``."""
        with self.lock:
            self.stopped = True
            refs = list(self.refs.values())
        for ref in refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing to stop
                pass

    def describe(self) -> dict[str, Any]:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        resources = self.ray.cluster_resources()
        return {
            "ray": {
                "address": self.ray.get_runtime_context().gcs_address,
                "nodes": len(nodes),
                "cpus": resources.get("CPU", 0),
                "gpus": resources.get("GPU", 0),
                "cpus_per_cell": self.cpus_per_cell,
                "ray_version": self.ray.__version__,
            }
        }


def wants_gpu(spec: dict[str, Any]) -> bool:
    """Whether a cell's PPO or reward-model settings put it on a CUDA device."""
    config = spec.get("config", {})
    sections = (spec.get("ppo_overrides"), config.get("ppo"), config.get("reward_model"))
    return any(str((s or {}).get("device", "cpu")).startswith("cuda") for s in sections)


def ray_failure(err: Exception, ray: ModuleType, max_retries: int) -> str:
    """A Ray error of one cell in a line: a missing prefrl on the node, or the worker or
    node that died more often than it was retried."""
    if isinstance(err, ray.exceptions.RayTaskError) and isinstance(err.cause, ModuleNotFoundError):
        return (
            f"a Ray node cannot import {err.cause.name!r}: install prefrl {__version__} "
            "(pip install 'prefrl[ray]') on every node of the cluster"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"the Ray task failed ({type(err).__name__}: {first}) after up to {max_retries} retries"


def run_cell_task(
    spec: dict[str, Any], name: str, payload: bytes | None, version: str, trusted: list[str]
) -> tuple[int, bytes, str, str]:
    """The Ray task: run one cell on this node in a temporary directory.

    Args:
        spec: what ``python -m prefrl.bench.cell`` runs (a cell's spec or a resume).
        name: the run directory's name.
        payload: a tar of the run directory to continue (a resume), else None.
        version: the driver's prefrl version; another one here refuses the cell.
        trusted: the task files the driver trusts (the grid names them); this node's
            worker, started by a cluster of its own, has not the driver's environment.

    Returns:
        ``(exit status, tar of the run directory, its output, "host (ip)")``.
    """
    node = f"{socket.gethostname()} ({_node_ip()})"
    if version != __version__:
        message = (
            f"this Ray node has prefrl {__version__}, the driver {version}: "
            "install the same prefrl on every node\n"
        )
        return VERSION_MISMATCH_EXIT, b"", message, node
    trust_task_file(*trusted)  # the cell's process inherits it (child_env)
    sweep_orphans(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX) as tmp:
        (Path(tmp) / OWNER_FILE).write_text(str(os.getpid()))
        run_dir = Path(tmp) / name
        run_dir.mkdir()
        if payload:
            unpack(payload, run_dir)
        log = Path(tmp) / LOG_NAME
        with log.open("w") as f:
            proc = subprocess.Popen(
                cell_command(run_dir, spec),
                stdout=f,
                stderr=subprocess.STDOUT,
                env=child_env(),
                cwd=tmp,
                preexec_fn=_die_with_parent,  # a killed worker takes its cell along
            )
            try:
                returncode = proc.wait()
            finally:
                if proc.poll() is None:  # the task was interrupted (a cancel)
                    proc.kill()
                    proc.wait()
        (run_dir / LOG_NAME).unlink(missing_ok=True)
        return returncode, pack(run_dir), log.read_text(errors="replace"), node


def sweep_orphans(tmp: Path) -> list[Path]:
    """Remove the temporary directories of cells whose task process is gone (a worker
    killed mid-cell cannot remove its own); returns those removed. A directory whose
    owner is alive, or unknown, is kept."""
    removed = []
    for path in tmp.glob(f"{TMP_PREFIX}*"):
        try:
            owner = int((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux): os.kill said enough
        return True
    return state not in ("Z", "X")


def _node_ip() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # only for the log line
        return "?"


def _die_with_parent() -> None:
    """In the child, before it runs: SIGKILL it when its parent (the Ray worker) dies,
    so that a killed worker or node leaves no cell running on (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def pack(run_dir: Path) -> bytes:
    """A run directory as an uncompressed tar (checkpoints and videos barely compress),
    without its ``bench.log``, which stays with the driver."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for child in sorted(run_dir.iterdir()):
            if child.name != LOG_NAME:
                tar.add(child, arcname=child.name)
    return buffer.getvalue()


def unpack(data: bytes, run_dir: Path) -> None:
    """Extract a :func:`pack` tar into ``run_dir`` (paths outside it are refused)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(run_dir, filter="data")


def cluster_ready(ray: ModuleType, cpus_per_cell: float) -> None:
    """Check that the cluster can run a cell at all (enough CPUs on some node).

    Raises:
        ConfigError: no node has ``cpus_per_cell`` CPUs.
    """
    most = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    if most < cpus_per_cell:
        raise ConfigError(
            f"--cpus-per-cell {cpus_per_cell:g}: no node of the Ray cluster has that many CPUs "
            f"(the largest has {most:g})"
        )
