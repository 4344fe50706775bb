"""``prefrl bench --ray``: a grid's cells as Ray tasks, on clusters of this machine only.

One private cluster (two CPUs) serves most tests: a grid whose preference cell was
stopped by Ctrl-C halfway through its labels runs on it while a watcher kills the Ray
worker of another cell mid-run; the same grid also runs locally to compare. A two-node
cluster (``ray start``, one CPU each) loses its second node mid-grid.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import InterruptAfter

pytest.importorskip("ray")

import prefrl
from prefrl.bench import bench, load_grid
from prefrl.bench.ray_cells import (
    VERSION_MISMATCH_EXIT,
    RayCells,
    pack,
    run_cell_task,
    sweep_orphans,
    unpack,
    wants_gpu,
)
from prefrl.cli import main as cli
from prefrl.errors import ConfigError
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunInterrupted
from prefrl.runtime.run import train
from prefrl.utils import ray_cluster

REPO = Path(__file__).resolve().parent.parent
GRID = """
[grid]
seeds = [0]
teachers = ["perfect"]
selections = ["random"]
backend = "inprocess"
num_evals = 1
eval_episodes = 2

[envs.Pendulum-v1]
steps = 2048
budgets = [8]
clip_length = 25
ppo = { num_envs = 2, num_steps = 256 }
reward_model = { epochs_per_round = 2, min_steps_per_round = 5 }
"""
RANDOM = "Pendulum-v1/random-s0"
PPO = "Pendulum-v1/ppo_true-s0"
PERFECT = "Pendulum-v1/prefrl-b8-perfect-random-s0"
KEYS = [RANDOM, PPO, PERFECT]
FINISHED_LINE = "final_eval_return="  # prefrl.bench.cell's last line


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    argv: list[str]


def processes() -> Iterator[Proc]:
    """This machine's processes, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").decode(errors="replace").split("\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (name)": state ppid pgrp session
        if fields[0] in ("Z", "X"):
            continue
        yield Proc(int(entry.name), int(fields[1]), int(fields[3]), argv)


def alive(pid: int) -> bool:
    return any(p.pid == pid for p in processes())


@dataclass
class Strike:
    """What a :class:`CellWatcher` did: the cell process it found and the pid it acted on."""

    cell_pid: int = 0
    pid: int = 0
    run: Path | None = None  # the cell's run directory on the node
    finished_before: bool = True  # the cell's summary.json existed when it struck


def sigkill(pid: int) -> int:
    os.kill(pid, signal.SIGKILL)
    return pid


class CellWatcher(threading.Thread):
    """Waits until a cell process that ``which(process, run directory)`` picks has written
    its ``config.json`` (it is mid-run), then calls ``act(process)`` once; ``act``
    returns the pid it acted on."""

    def __init__(self, which, act, timeout_s: float = 120.0):
        super().__init__(daemon=True)
        self.which, self.act, self.timeout_s = which, act, timeout_s
        self.strike = Strike()
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.done.is_set() and time.monotonic() < deadline:
            for proc in processes():
                argv = proc.argv
                if argv[1:3] != ["-m", "prefrl.bench.cell"] or "prefrl-cell-" not in argv[3]:
                    continue
                run = Path(argv[3])
                if not self.which(proc, run) or not (run / "config.json").exists():
                    continue
                finished = (run / "summary.json").exists()
                self.strike = Strike(proc.pid, self.act(proc), run, finished)
                return
            time.sleep(0.05)


def answers(run_dir: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(run_dir / "prefs.sqlite")) as db:
        return db.execute("SELECT query_id, answer, answered_at FROM answers ORDER BY query_id").fetchall()


def results(out: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """``results.csv``'s columns and its rows by run directory (each one must be once)."""
    with (out / "results.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    keys = [r["run_dir"].removeprefix("runs/") for r in rows]
    assert len(keys) == len(set(keys)), keys
    return list(reader.fieldnames or []), dict(zip(keys, rows, strict=True))


@dataclass
class RayGrid:
    out: Path
    lines: list[str]
    strike: Strike
    answers_before: list[tuple]
    config_before: bytes
    summaries: dict[str, bytes]  # every cell's summary.json after the first invocation
    again: list[str] = field(default_factory=list)  # the lines of a second invocation
    bench_json: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "tiny.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def local_out(grid_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    bench(grid_file, out, jobs=2, echo=lambda line: None)
    return out


@pytest.fixture(scope="module")
def private_cluster():
    """A Ray cluster of this process with two CPUs, for the tests of this module."""
    with ray_cluster.connect(num_cpus=2) as ray:
        yield ray


@pytest.fixture(scope="module")
def on_ray(grid_file, private_cluster, tmp_path_factory) -> RayGrid:
    """The grid on a private two-CPU cluster: its preference cell stopped by Ctrl-C after
    4 of 8 labels beforehand, the Ray worker of its PPO cell killed mid-run; then again."""
    out = tmp_path_factory.mktemp("ray") / "out"
    cells = {c.key: c for c in load_grid(grid_file).cells()}
    perfect = cells[PERFECT].run_dir(out)
    with pytest.raises(RunInterrupted):
        config = TrainConfig.from_dict(cells[PERFECT].spec["config"])
        train(config, perfect, progress=False, video=False, oracle=InterruptAfter(4))
    answers_before, config_before = answers(perfect), (perfect / "config.json").read_bytes()
    killer = CellWatcher(lambda proc, run: run.name == "ppo_true-s0", lambda cell: sigkill(cell.ppid))
    lines: list[str] = []
    killer.start()
    try:
        bench(grid_file, out, ray=True, echo=lines.append)  # joins the private cluster
    finally:
        killer.done.set()
        killer.join()
    summaries = {key: (cells[key].run_dir(out) / "summary.json").read_bytes() for key in KEYS}
    grid = RayGrid(out, lines, killer.strike, answers_before, config_before, summaries)
    bench(grid_file, out, ray=True, echo=grid.again.append)
    grid.bench_json = json.loads((out / "bench.json").read_text())
    return grid


def test_a_grid_on_ray_writes_the_results_of_a_local_run(on_ray, local_out):
    ray_columns, ray_rows = results(on_ray.out)
    local_columns, local_rows = results(local_out)
    assert ray_columns == local_columns
    assert sorted(ray_rows) == sorted(local_rows) == sorted(KEYS)
    # the baselines are seeded: the same numbers wherever they ran
    for key in (RANDOM, PPO):
        assert ray_rows[key]["final_return"] == local_rows[key]["final_return"], key
    assert (on_ray.out / "report.md").read_text().count("ppo_true") >= 1
    assert sorted(p.name for p in (on_ray.out / "figures").iterdir()) == sorted(
        p.name for p in (local_out / "figures").iterdir()
    )
    ray_run = on_ray.out / "runs" / PPO
    assert sorted(p.name for p in ray_run.iterdir()) == sorted(
        p.name for p in (local_out / "runs" / PPO).iterdir()
    )


def test_the_invocation_records_the_ray_cluster(on_ray):
    first = on_ray.bench_json["invocations"][0]
    assert first["ray"]["nodes"] == 1 and first["ray"]["cpus"] == 2 and first["ray"]["cpus_per_cell"] == 1
    assert first["jobs"] == 3  # every cell submitted at once: Ray queues them
    assert "on Ray (1 nodes, 2 CPUs)" in on_ray.lines[0]


def test_a_killed_worker_is_retried_and_its_cell_counted_once(on_ray):
    assert on_ray.strike.cell_pid and not on_ray.strike.finished_before  # it struck mid-run
    assert not alive(on_ray.strike.cell_pid)  # the cell died with its worker
    assert on_ray.strike.run is not None and not on_ray.strike.run.parent.exists()  # swept by a later task
    assert "3 of 3 cells finished (0 before, 3 now)" in on_ray.lines[-2]
    assert sum(PPO in line for line in on_ray.lines) == 1
    for key in KEYS:
        log = (on_ray.out / "runs" / key / "bench.log").read_text()
        assert log.count(FINISHED_LINE) == 1, key
        assert log.count("=== ") == 1, key  # one task result written, whatever Ray retried
    summary = json.loads(on_ray.summaries[PPO])
    assert summary["env_steps"] == 2048


def test_an_interrupted_preference_cell_resumes_on_ray_with_its_labels(on_ray):
    run = on_ray.out / "runs" / PERFECT
    assert len(on_ray.answers_before) == 4
    assert answers(run)[:4] == on_ray.answers_before
    assert len(answers(run)) == 8
    assert (run / "config.json").read_bytes() == on_ray.config_before
    assert " resume as a Ray task: " in (run / "bench.log").read_text()
    assert json.loads(on_ray.summaries[PERFECT])["labels_used"] == 8


def test_bench_on_ray_again_runs_nothing(on_ray):
    assert "3 cells: 3 done before, 0 to run" in on_ray.again[0]
    assert "3 of 3 cells finished (3 before, 0 now)" in on_ray.again[-2]
    for key in KEYS:
        assert (on_ray.out / "runs" / key / "summary.json").read_bytes() == on_ray.summaries[key]


def test_stop_cancels_a_running_cell_and_leaves_its_directory_as_it_was(grid_file, private_cluster, tmp_path):
    cells = RayCells(private_cluster)
    ppo = load_grid(grid_file).cells()[1]
    run_dir = ppo.run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    watcher = CellWatcher(lambda proc, run: run.name == ppo.name, lambda cell: cells.stop(0.0) or cell.pid)
    watcher.start()
    returncode = cells.run(ppo, run_dir, ppo.spec, "start")
    watcher.done.set()
    watcher.join()
    assert watcher.strike.cell_pid and not watcher.strike.finished_before
    assert returncode == 130  # reported as stopped (Ctrl-C), to resume
    assert [p.name for p in run_dir.iterdir()] == ["bench.log"]  # nothing came back
    deadline = time.monotonic() + 30
    while alive(watcher.strike.cell_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(watcher.strike.cell_pid)  # the cancelled worker took its cell along
    assert cells.run(ppo, run_dir, ppo.spec, "start") is None  # stopped: starts no more


class _WorkerDied(Exception):
    pass


class _StandInRay:
    """Just enough of ``ray`` for :class:`RayCells`: a task runs until cancelled, and a
    cancel surfaces as its worker's death (as a force-cancel may), not as a cancel."""

    class exceptions:  # as ray names it
        RayError = Exception
        TaskCancelledError = KeyboardInterrupt  # never raised here
        WorkerCrashedError = _WorkerDied

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def remote(self, **options):  # ray.remote(...)(function): the task
        return lambda function: self

    def options(self, **options):  # task.options(...).remote(*args): its ref
        return types.SimpleNamespace(remote=lambda *args: "ref")

    def get(self, ref):
        assert self.cancelled.wait(30)
        raise _WorkerDied("the worker died")

    def cancel(self, ref, force=False):
        self.cancelled.set()


def test_a_cell_whose_cancel_surfaces_as_its_worker_dying_is_stopped_not_failed(grid_file, tmp_path):
    ray = _StandInRay()
    cells = RayCells(ray)  # type: ignore[arg-type]
    ppo = load_grid(grid_file).cells()[1]
    run_dir = ppo.run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    returned = []
    thread = threading.Thread(target=lambda: returned.append(cells.run(ppo, run_dir, ppo.spec, "start")))
    thread.start()
    deadline = time.monotonic() + 30
    while not cells.refs and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    cells.stop(0.0)
    thread.join(30)
    assert returned == [130]  # reported as stopped (Ctrl-C), to resume; not "failed"
    assert "ray:" not in (run_dir / "bench.log").read_text()


def test_ctrl_c_keeps_the_finished_cell_and_cancels_the_others(private_cluster, tmp_path):
    # The trained cells are made long (minutes) so that none of them can finish in the
    # moment between the random cell's report and the cancel: on the tiny grid the PPO
    # cell could end within a second of the random one. Half a CPU each runs all three
    # cells at once on the two-CPU cluster: with one each, Ray may queue the random cell
    # behind the trained ones, and it then starts (and ends) as the PPO cell is reported.
    grid_file = tmp_path / "tiny.toml"
    grid_file.write_text(GRID.replace("steps = 2048", "steps = 500000"))
    lines: list[str] = []

    def echo(line: str) -> None:  # Ctrl-C as the first cell is reported
        lines.append(line)
        if sum("return" in line for line in lines) == 1 and "return" in line:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        bench(grid_file, out, ray=True, cpus_per_cell=0.5, echo=echo)
    assert RANDOM in lines[1]
    first = next(key for key in KEYS if key in lines[1])
    assert (out / "runs" / first / "summary.json").exists()
    others = [key for key in KEYS if key != first]
    assert not any((out / "runs" / key / "summary.json").exists() for key in others)
    assert any("1 of 3 cells finished (0 before, 1 now); 2 stopped" in line for line in lines), lines
    _, rows = results(out)  # written for the finished cell
    assert list(rows) == [first]


def test_a_node_with_another_prefrl_refuses_the_cell():
    returncode, files, output, _ = run_cell_task({"kind": "random"}, "random-s0", None, "0.0.1-other", [])
    assert (returncode, files) == (VERSION_MISMATCH_EXIT, b"")
    assert output.startswith(f"this Ray node has prefrl {prefrl.__version__}, the driver 0.0.1-other")


def test_without_ray_the_flag_is_a_one_line_error(monkeypatch, grid_file, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ImportError
    code = cli(["bench", str(grid_file), "--out", str(tmp_path / "out"), "--ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err
        == "prefrl bench: error: this needs Ray, which is not installed: pip install 'prefrl[ray]' (or: pip install ray)\n"
    )
    assert not (tmp_path / "out" / "runs").exists()


def test_cpus_per_cell_is_checked_before_anything_is_written(grid_file, private_cluster, tmp_path, capsys):
    assert cli(["bench", str(grid_file), "--out", str(tmp_path / "out"), "--cpus-per-cell", "2"]) == 2
    assert "use it with --ray" in capsys.readouterr().err
    with pytest.raises(
        ConfigError, match=r"--cpus-per-cell 4: no node .* has that many CPUs \(the largest has 2\)"
    ):
        bench(grid_file, tmp_path / "out", ray=True, cpus_per_cell=4)
    assert not (tmp_path / "out").exists()


def test_a_cell_on_cuda_asks_ray_for_a_gpu(grid_file):
    random, ppo, perfect = load_grid(grid_file).cells()
    assert not any(wants_gpu(c.spec) for c in (random, ppo, perfect))
    # (a grid that says device=cuda is refused on a machine without one: specs by hand)
    ppo_cuda = {**ppo.spec, "ppo_overrides": {**ppo.spec["ppo_overrides"], "device": "cuda"}}
    config = perfect.spec["config"]
    perfect_cuda = {**perfect.spec, "config": {**config, "ppo": {**config["ppo"], "device": "cuda:1"}}}
    assert wants_gpu(ppo_cuda) and wants_gpu(perfect_cuda)


def test_a_task_removes_the_temporary_directories_of_dead_tasks(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    for name, owner in (("dead", str(gone.pid)), ("alive", str(os.getpid())), ("unknown", None)):
        (tmp_path / f"prefrl-cell-{name}" / "run").mkdir(parents=True)
        if owner is not None:
            (tmp_path / f"prefrl-cell-{name}" / "owner.pid").write_text(owner)
    assert sweep_orphans(tmp_path) == [tmp_path / "prefrl-cell-dead"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefrl-cell-alive", "prefrl-cell-unknown"]


def test_pack_and_unpack_keep_a_run_directory_but_its_log(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "agent.pt").write_bytes(b"\x00\x01" * 100)
    (run / "config.json").write_text("{}")
    (run / "bench.log").write_text("the driver's")
    copy = tmp_path / "copy"
    unpack(pack(run), copy)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == [
        "checkpoints",
        "checkpoints/agent.pt",
        "config.json",
    ]
    assert (copy / "checkpoints" / "agent.pt").read_bytes() == b"\x00\x01" * 100


def loopback_nodes():
    """scripts/bench_ray_grid.py, whose LoopbackNodes start and stop this test's nodes."""
    spec = importlib.util.spec_from_file_location("bench_ray_grid", REPO / "scripts" / "bench_ray_grid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.faults
def test_a_worker_node_killed_mid_grid_loses_no_cell(grid_file, tmp_path):
    nodes = loopback_nodes()
    with nodes.LoopbackNodes(nodes.free_port()) as cluster:
        cluster.head(cpus=1)
        second = cluster.join(cpus=1)
        raylet = cluster.raylet(second)
        # a training cell on the second node (its processes are in that node's session); the
        # random policy's cell ends within a second of writing its config
        killer = CellWatcher(
            lambda proc, run: proc.sid == second and not run.name.startswith("random"),
            lambda cell: sigkill(raylet),
        )
        killer.start()
        out = tmp_path / "out"
        driver = subprocess.run(
            [
                sys.executable,
                "-m",
                "prefrl.cli",
                "bench",
                str(grid_file),
                "--out",
                str(out),
                "--ray",
                cluster.address,
            ],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        killer.done.set()
        killer.join()
    assert driver.returncode == 0, driver.stdout + driver.stderr
    assert killer.strike.pid == raylet and not killer.strike.finished_before
    assert "on Ray (2 nodes, 2 CPUs)" in driver.stdout
    assert "3 of 3 cells finished (0 before, 3 now)" in driver.stdout
    _, rows = results(out)
    assert sorted(rows) == sorted(KEYS)
    for key in KEYS:
        log = (out / "runs" / key / "bench.log").read_text()
        assert log.count(FINISHED_LINE) == 1 and log.count("=== ") == 1, key
