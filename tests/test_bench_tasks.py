"""scripts/bench_tasks.py: its shared CSV and its preference runs survive an interruption."""

from __future__ import annotations

import csv
import errno
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prefrl.rundir import RunDir
from prefrl.runtime.config import TrainConfig

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_tasks.py"


@pytest.fixture(scope="module")
def bench_tasks() -> Any:
    spec = importlib.util.spec_from_file_location("bench_tasks", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_tasks"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench_tasks"]


def test_a_failed_write_keeps_the_other_tasks_rows(bench_tasks, tmp_path, monkeypatch):
    path = tmp_path / "tasks.csv"
    old = [{"task": f"t{i}", "seed": 0, "arm": "trained", "measure_mean": i} for i in range(20)]
    bench_tasks._write_csv(path, old)
    before = path.read_bytes()

    def disk_full(self: csv.DictWriter, rows: Any) -> None:
        self.writer.writerow(["t0", "half a row"])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", disk_full)
    with pytest.raises(OSError):
        bench_tasks._write_csv(path, [{"task": "spin", "seed": 1, "arm": "trained", "measure_mean": 9}])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.csv"]


def test_an_interrupted_preference_run_is_resumed(bench_tasks, tmp_path, monkeypatch):
    calls: list[tuple[str, Path]] = []
    monkeypatch.setattr(bench_tasks, "train", lambda config, run_dir, **_: calls.append(("train", run_dir)))
    monkeypatch.setattr(bench_tasks, "resume", lambda run_dir, **_: calls.append(("resume", run_dir)))
    config = TrainConfig(env_id="Pendulum-v1", labels=20, steps=8192)
    new, stopped = tmp_path / "new", tmp_path / "stopped"
    RunDir.create(stopped, "train", config.env_id, config.seed).write_config(
        {"kind": "train", **config.to_dict()}
    )
    bench_tasks._run_preferences(config, new)
    bench_tasks._run_preferences(config, stopped)
    assert calls == [("train", new), ("resume", stopped)]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "my_tasks.py:lean",
            "argument --tasks: 'my_tasks.py:lean': give NAME:LABELS:STEPS",
        ),
        ("spin:200", "argument --tasks: 'spin:200': give NAME:LABELS:STEPS"),
        ("spun:200:2000", "--tasks: unknown task 'spun'; known tasks: "),
    ],
)
def test_a_wrong_task_is_one_usage_line_before_any_run(spec, error, tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tasks", spec, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(f"bench_tasks.py: error: {error}")
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
