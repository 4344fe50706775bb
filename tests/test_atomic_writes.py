"""Atomic writes (prefrl.utils.io): the new file reaches the disk before it replaces the
old one, so a power loss leaves one or the other, never an empty or torn file."""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from pathlib import Path

import pytest

from prefrl.metrics import MetricsLogger
from prefrl.rundir import RunDir, write_json
from prefrl.runtime.monitor import Monitor
from prefrl.ui.heartbeat import WindowHeartbeat
from prefrl.utils.io import atomic_torch_save, atomic_write, replacing

TEMPORARY = re.compile(rf"\.{os.getpid()}-\d+\.tmp")  # after the file's own path


@pytest.fixture
def disk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The fsyncs (of which file) and renames, in order."""
    calls: list[tuple[str, ...]] = []
    fsync, replace = os.fsync, Path.replace

    def recorded_fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recorded_replace(self: Path, target: str | Path) -> Path:
        calls.append(("replace", str(self), str(target)))
        return replace(self, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(Path, "replace", recorded_replace)
    return calls


@pytest.mark.parametrize(
    "name, write",
    [
        ("notes.txt", lambda path: atomic_write(path, "text")),
        ("summary.json", lambda path: write_json(path, {"complete": True})),
        ("agent.pt", lambda path: atomic_torch_save({"x": 1}, path)),
        ("metrics.csv", lambda path: MetricsLogger(path).log(1, {"a": 1.0})),  # a new column: rewritten
    ],
)
def test_the_new_file_is_on_the_disk_before_it_replaces_the_old(tmp_path, disk_calls, name, write):
    path = tmp_path / name
    write(path)
    tmp = disk_calls[0][1]
    assert TEMPORARY.fullmatch(tmp.removeprefix(str(path)))
    assert disk_calls[:3] == [("fsync", tmp), ("replace", tmp, str(path)), ("fsync", str(tmp_path))]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError) as caught:
        atomic_write(path, "new")
    assert caught.value.errno == errno.EIO
    assert TEMPORARY.fullmatch(caught.value.filename.removeprefix(str(path)))
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_an_error_without_an_errno_is_raised_with_its_own_message(tmp_path):
    # moviepy says why ffmpeg failed in a plain IOError (no errno): that text is the why
    path = tmp_path / "final_policy.mp4"
    path.write_text("old")
    with pytest.raises(OSError) as caught, replacing(path) as tmp:
        tmp.write_text("half")
        raise OSError("ffmpeg: Unknown encoder 'libx264'")
    assert str(caught.value) == "ffmpeg: Unknown encoder 'libx264'"
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["final_policy.mp4"]


def test_a_heartbeat_is_replaced_whole_without_a_flush(tmp_path, disk_calls):
    path = tmp_path / "status.json"
    write_json(path, {"running": True}, durable=False)
    [(call, tmp, target)] = disk_calls
    assert (call, target) == ("replace", str(path)) and TEMPORARY.fullmatch(tmp.removeprefix(str(path)))
    assert json.loads(path.read_text()) == {"running": True}


def test_status_json_and_window_json_are_written_without_a_flush(tmp_path, disk_calls):
    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    Monitor(run, 100, 10, progress=False).write_status(running=True)
    WindowHeartbeat(run.path).beat(force=True)
    assert [call[0] for call in disk_calls] == ["replace"] * 3  # status.json; window.json twice
    assert json.loads(run.status_path.read_text())["running"] is True
    assert json.loads(run.window_path.read_text())["open"] is True
    run.write_config({"kind": "train"})  # not a heartbeat: flushed
    assert [call[0] for call in disk_calls[3:]] == ["fsync", "replace", "fsync"]


def test_a_file_system_that_cannot_fsync_a_file_is_let_be(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def einval(fd: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "fsync", einval)
    atomic_write(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_two_writers_of_one_file_never_write_into_each_others_temporary_file(tmp_path):
    """Two threads (a grid's cells, or a report beside a bench) write one file at once:
    every write lands whole, none fails for the other's rename."""
    path = tmp_path / "results.csv"
    texts = {name: name * 50_000 for name in "ab"}
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for _ in range(100):
                atomic_write(path, texts[name], durable=False)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(name,)) for name in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert path.read_text() in texts.values()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
