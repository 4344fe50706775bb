"""What a user sees when the OS refuses (disk full, read-only, a file in the way), when a
run's config.json is damaged, and when status.json says running for a dead run: one line,
naming the path, with the exit status of prefrl.errors; never a traceback."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from test_runtime import small

from prefrl.cli import main
from prefrl.errors import EXIT_FAILED, EXIT_USAGE
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import (
    RunDir,
    RunDirError,
    check_config_fields,
    mark_stopped_if_dead,
    refused,
    write_json,
)
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunFailed
from prefrl.runtime.run import train
from prefrl.utils.config_fields import CONFIG_FIELD_TYPES
from prefrl.utils.io import atomic_torch_save


# ------------------------------------------------------------------ helpers
@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``path`` (root only); skips the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the simulated version of this test covers it")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): the simulated test covers it"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount_ro(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def fill(folder: Path) -> None:
    """Write until the file system says it is full."""
    with (folder / "ballast").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC


def no_space(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    return lines[0]


def make_run(path: Path, *, prefs: bool = True, **fields: Any) -> RunDir:
    """A preference run directory with its config.json (and an empty store file)."""
    run = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    run.write_config({"kind": "train", **TrainConfig(env_id="Pendulum-v1").to_dict(), **fields})
    if prefs:
        run.store_path.touch()
    return run


def dead_pid() -> int:
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    return proc.pid


def write_status(run: RunDir, **fields: Any) -> dict[str, Any]:
    status = {"running": True, "agent_step": 10, "updated_at": time.time(), **fields}
    run.status_path.write_text(json.dumps(status))
    return status


@contextmanager
def held(run: RunDir, pid: int | None = 4242) -> Iterator[None]:
    """The run's lock (``run.lock``), held as the process running it holds it: locked
    through a file of its own, the holder's pid written in it (None: not yet)."""
    with run.lock_path.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.truncate(0)
        f.write("" if pid is None else str(pid))
        f.flush()
        yield


# ------------------------------------------------------------------ --run-dir
def test_run_dir_naming_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "afile"
    file.write_text("not a run")
    code = main(["train", "--backend", "inprocess", "--run-dir", str(file), "--quiet"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl train: cannot create the run directory {file}: a file is in the way "
        "(a run directory must be a directory); choose another --run-dir"
    )
    assert file.read_text() == "not a run"


def test_run_dir_on_a_read_only_file_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        code = main(["train", "--backend", "inprocess", "--run-dir", str(ro / "run"), "--quiet"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl train: cannot create the run directory {ro / 'run'}: read-only file system; "
        "choose another --run-dir"
    )


def test_run_dir_where_no_directory_can_be_made(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--backend", "inprocess", "--run-dir", "/proc/prefrl-run", "--quiet"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        "prefrl train: cannot create the run directory /proc/prefrl-run: the file system there "
        "does not allow creating directories; choose another --run-dir"
    )


def test_run_dir_read_only_simulated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = main(["train", "--backend", "inprocess", "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl train: cannot create the run directory {tmp_path / 'run'}: read-only file system; "
        "choose another --run-dir"
    )


# ------------------------------------------------------------------ disk full
def test_disk_full_writing_status_json(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=256k") as disk:
        run = make_run(disk / "run")
        fill(disk)
        with pytest.raises(RunDirError) as caught:
            write_json(run.status_path, {"running": True, "padding": "x" * 10_000})
        with pytest.raises(RunDirError) as caught_summary:
            run.write_summary({"complete": False, "padding": "x" * 10_000})
        with pytest.raises(OSError) as caught_checkpoint:
            atomic_torch_save({"x": list(range(10_000))}, run.agent_checkpoint)
        left = sorted(p.name for p in run.path.rglob("*.tmp"))
    assert str(caught.value) == (
        f"no space left on device writing {run.status_path}; every label given so far is in "
        f"{run.store_path}: free some space and continue with: prefrl resume {run.path}"
    )
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert str(caught_summary.value).startswith(f"no space left on device writing {run.summary_path}; ")
    assert caught_checkpoint.value.errno == errno.ENOSPC
    assert caught_checkpoint.value.filename.startswith(f"{run.agent_checkpoint}.")
    assert caught_checkpoint.value.filename.endswith(".tmp")
    assert left == []  # no half-written file takes the space


def test_disk_full_before_the_store_is_made_says_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A baseline run, which cannot be resumed, is told to try again, and `prefrl import`
    (how a store-less run gets its labels back) to run itself again (a preference run
    without a store yet is told to resume: test_disk_full_simulated)."""
    run = make_run(tmp_path / "run", prefs=False)
    baseline = RunDir(tmp_path / "baseline")
    baseline.path.mkdir()
    baseline.write_config({"kind": "baseline", "env_id": "Pendulum-v1"})
    monkeypatch.setattr(Path, "write_text", no_space)
    with pytest.raises(RunDirError) as caught:
        baseline.write_summary({"complete": False})
    assert str(caught.value) == (
        f"no space left on device writing {baseline.summary_path}; free some space and try again"
    )
    monkeypatch.setattr("prefrl.rundir.exclusive", no_space)
    with pytest.raises(RunDirError) as caught, run.claim(then=f"prefrl import EXPORT {run.path}"):
        pass
    assert str(caught.value) == (
        f"no space left on device writing in {run.path}; "
        f"free some space and run again: prefrl import EXPORT {run.path}"
    )


def test_disk_full_on_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]) -> None:
    with tmpfs(tmp_path / "disk", "size=256k") as disk:
        run = make_run(disk / "run")
        fill(disk)
        code = main(["resume", str(run.path), "--quiet", "--no-video"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl resume: no space left on device writing in {run.path}; every label given so far is in "
        f"{run.store_path}: free some space and continue with: prefrl resume {run.path}"
    )
    assert no_run == []


@pytest.mark.parametrize("prefs", [True, False])
def test_disk_full_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefs: bool) -> None:
    """Resume, also for a disk that fills in a run's first seconds, before its store
    exists: `prefrl train` again is refused (the run's config.json is there)."""
    run = make_run(tmp_path / "run", prefs=prefs)
    monkeypatch.setattr(Path, "write_text", no_space)
    with pytest.raises(RunDirError) as caught:
        run.write_summary({"complete": True})
    saved = f"every label given so far is in {run.store_path}: " if prefs else ""
    assert str(caught.value) == (
        f"no space left on device writing {run.summary_path}; {saved}"
        f"free some space and continue with: prefrl resume {run.path}"
    )


def test_disk_full_outside_a_preference_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(RunDirError) as caught:
        write_json(tmp_path / "results.json", {})
    assert str(caught.value) == (
        f"disk quota exceeded writing {tmp_path / 'results.json'}; free some space and try again"
    )


# ------------------------------------------------------------------ resume of a read-only run
def test_resume_read_only_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]) -> None:
    with tmpfs(tmp_path / "disk", "size=1m") as disk:
        run = make_run(disk / "run")
        write_status(run, running=True, pid=dead_pid())  # a killed run: marking it fails quietly
        remount_ro(disk)
        code = main(["resume", str(run.path), "--quiet", "--no-video"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl resume: read-only file system writing in {run.path}; every label given so far is in "
        f"{run.store_path}: copy the run directory to a writable disk and continue with: prefrl resume the copy"
    )
    assert no_run == []


def test_a_run_on_a_read_only_medium_is_exported_and_played_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a shared or archived run: its store is read as it is (no WAL files can be made there)
    with tmpfs(tmp_path / "disk", "size=20m") as disk:
        config = TrainConfig(
            env_id="Pendulum-v1",
            steps=1024,
            labels=4,
            clip_length=25,
            backend="inprocess",
            ppo={"num_envs": 2, "num_steps": 256},
            reward_model={"epochs_per_round": 1, "min_steps_per_round": 2},
        )
        train(config, disk / "run", progress=False, video=False)
        remount_ro(disk)
        assert main(["export", str(disk / "run"), str(tmp_path / "export")]) == 0
        assert json.loads(capsys.readouterr().out)["answers"] == 4
        assert main(["play", str(disk / "run")]) == EXIT_FAILED
        assert one_line(capsys) == (
            f"prefrl play: cannot write the video {disk / 'run' / 'videos' / 'play.mp4'}: read-only file "
            "system; pass --out with a path on a writable disk"
        )
        assert main(["play", str(disk / "run"), "--out", str(tmp_path / "play.mp4")]) == 0
        assert sorted(p.name for p in (disk / "run").iterdir() if p.name.startswith("prefs")) == [
            "prefs.sqlite"
        ]


def test_a_video_path_play_cannot_write_is_one_line_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run")
    (tmp_path / "afile").write_text("")
    assert main(["play", str(run.path), "--out", str(tmp_path / "afile" / "x.mp4")]) == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl play: cannot write the video {tmp_path / 'afile' / 'x.mp4'}: a part of the path is a file, "
        "not a directory; pass --out with a path on a writable disk"
    )
    assert main(["play", str(run.path), "--out", str(tmp_path / "noext")]) == EXIT_USAGE
    assert (
        one_line(capsys)
        == f"prefrl play: error: --out {tmp_path / 'noext'}: name a video file, ending in .mp4 or .gif"
    )


def test_a_run_directory_whose_path_is_too_long_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = tmp_path / ("x" * 300)
    argv = ["train", "Pendulum-v1", "--steps", "2048", "--labels", "4", "--eval-episodes", "2", "--quiet"]
    assert main([*argv, "--run-dir", str(long)]) == EXIT_FAILED  # light evaluations: no warning
    assert one_line(capsys) == f"prefrl train: error: {long / 'config.json'}: file name too long"


def test_resume_read_only_simulated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_run: list[str]
) -> None:
    run = make_run(tmp_path / "run")

    def refuse(fd: int) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "fsync", refuse)
    code = main(["resume", str(run.path), "--quiet", "--no-video"])
    assert code == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl resume: permission denied writing in {run.path}; every label given so far is in "
        f"{run.store_path}: give your user write access to {run.path} and continue with: prefrl resume {run.path}"
    )
    assert no_run == []
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".prefrl")] == []


# ------------------------------------------------------------------ a damaged config.json
FIX = "repair it (prefrl writes it as a JSON object of settings) or start a new run"


@pytest.mark.parametrize("command", ["resume", "play", "label"])
def test_config_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    run = make_run(tmp_path / "run")
    run.config_path.write_text("[1, 2, 3]\n")
    assert main([command, str(run.path)]) == EXIT_USAGE
    assert (
        one_line(capsys)
        == f"prefrl {command}: error: {run.config_path} holds a JSON array, not an object: {FIX}"
    )


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("steps", "lots", '"steps" is "lots" (string), not a whole number'),
        ("labels", 2.5, '"labels" is 2.5 (number), not a whole number'),
        ("seed", True, '"seed" is true (true/false), not a whole number'),
        ("env_id", 3, '"env_id" is 3 (number), not a string'),
        ("task", [1], '"task" is [1] (array), not a string or null'),
        (
            "fixed_length",
            "yes",
            '"fixed_length" is "yes" (string), not true or false or a whole number or null',
        ),
        ("initial_fraction", "0.2", '"initial_fraction" is "0.2" (string), not a number'),
        ("ppo", [], '"ppo" is [] (array), not an object'),
    ],
)
def test_config_field_of_the_wrong_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any, says: str
) -> None:
    run = make_run(tmp_path / "run")
    run.config_path.write_text(json.dumps({**json.loads(run.config_path.read_text()), field: value}))
    assert main(["resume", str(run.path)]) == EXIT_USAGE
    assert (
        one_line(capsys) == f"prefrl resume: error: {run.config_path}: {says}: repair it or start a new run"
    )


def test_config_without_an_env_id_is_not_played(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run")
    config = json.loads(run.config_path.read_text())
    del config["env_id"]
    run.config_path.write_text(json.dumps(config))
    assert main(["play", str(run.path)]) == EXIT_USAGE
    assert one_line(capsys) == (
        f'prefrl play: error: {run.config_path}: no "env_id" (the env the run was made on): repair it'
    )


def test_config_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run")
    run.config_path.write_text(run.config_path.read_text()[:150])
    assert main(["play", str(run.path)]) == EXIT_USAGE
    line = one_line(capsys)
    assert line.startswith(f"prefrl play: error: {run.config_path} is not valid JSON (")
    assert line.endswith(f"; cut short or edited?): {FIX}")


def test_a_summary_with_nothing_measured_is_strict_json(tmp_path: Path) -> None:
    # NaN (e.g. the accuracy of a reward model with no validation pair) is not JSON: null is
    run = RunDir(tmp_path)
    run.write_summary({"reward_val_accuracy": float("nan"), "returns": np.array([1.0, np.inf])})
    text = run.summary_path.read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in summary.json")) == {
        "reward_val_accuracy": None,
        "returns": [1.0, None],
    }


def test_summary_not_json(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    run.summary_path.write_text('{"complete": tr')
    with pytest.raises(ValueError, match=f"^{run.summary_path} is not valid JSON"):
        run.read_summary()


def test_config_types_cover_train_config() -> None:
    config = {"kind": "train", **TrainConfig(env_id="Pendulum-v1").to_dict()}
    assert set(config) <= set(CONFIG_FIELD_TYPES)
    check_config_fields(config, "config.json")  # what prefrl writes passes


# ------------------------------------------------------------------ other OS refusals in cli.main
def test_a_run_read_but_not_run_is_not_asked_to_be_resumed(tmp_path: Path) -> None:
    # reading a run's file (an export, fit-reward, another person's run) refused: the fix
    # is the reader's, and resuming the run is not it
    run = make_run(tmp_path / "run")
    denied = OSError(errno.EACCES, "Permission denied", str(run.store_path))
    assert str(refused(denied, run.store_path, "reading")) == (
        f"permission denied reading {run.store_path}; give your user read access to {run.path} and try again"
    )
    assert str(refused(denied, run.store_path, "writing")).endswith(
        f"and continue with: prefrl resume {run.path}"
    )


def test_an_os_refusal_anywhere_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run")
    file = run.checkpoints / "agent.pt.tmp"

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(file))

    monkeypatch.setattr("prefrl.play.play", full)
    assert main(["play", str(run.path)]) == EXIT_FAILED
    # playing a run is not running it: no advice to resume it (it may be another person's)
    assert one_line(capsys) == f"prefrl play: error: {file}: no space left on device"
    monkeypatch.setattr("prefrl.runtime.run.resume", full)
    assert main(["resume", str(run.path), "--quiet"]) == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl resume: error: {file}: no space left on device; every label given so far is in "
        f"{run.store_path}: once fixed, continue with: prefrl resume {run.path}"
    )


def test_sqlite_disk_full_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("prefrl.play.play", full)
    assert main(["play", str(tmp_path)]) == EXIT_FAILED
    assert one_line(capsys) == (
        f"prefrl play: error: {tmp_path}/prefs.sqlite: no space left on device (or the database is full)"
    )


def test_other_os_errors_keep_their_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ECONNREFUSED, "Connection refused")

    monkeypatch.setattr("prefrl.play.play", broken)
    with pytest.raises(ConnectionRefusedError):
        main(["play", str(tmp_path)])


def test_run_failed_reads_in_one_line() -> None:
    err = RunFailed(
        "the agent process died 3 times; last error: OSError: [Errno 28] No space left on device: "
        "'r/checkpoints/agent.pt.tmp'\n  more\n. Every label is in the store"
    )
    assert "\n" not in str(err)
    assert "OSError: [Errno 28] No space left on device: 'r/checkpoints/agent.pt.tmp' more ." in str(err)


# ------------------------------------------------------------------ status.json of a dead run
def test_mark_stopped_if_dead(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    pid = dead_pid()
    before = write_status(run, pid=pid, role_pids={"agent": 1})
    assert mark_stopped_if_dead(run.path) is True
    after = json.loads(run.status_path.read_text())
    assert after == {**before, "running": False, "stopped": f"the run's process (pid {pid}) was gone"}
    assert mark_stopped_if_dead(run.path) is False  # already says stopped


@pytest.mark.parametrize(
    "status",
    [
        {"running": True, "pid": os.getpid()},
        {"running": True},
        {"running": True, "pid": "12"},
        {"running": False, "pid": 999_999_999},
    ],
)
def test_mark_stopped_leaves_the_others(tmp_path: Path, status: dict[str, Any]) -> None:
    run = make_run(tmp_path / "run")
    run.status_path.write_text(json.dumps(status))
    with held(run):  # a process runs it
        assert mark_stopped_if_dead(run.path) is False
    if not status["running"]:
        assert mark_stopped_if_dead(run.path) is False
    assert json.loads(run.status_path.read_text()) == status


def test_mark_stopped_without_status(tmp_path: Path) -> None:
    assert mark_stopped_if_dead(make_run(tmp_path / "run").path) is False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are told from /proc")
def test_a_zombie_is_dead(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    proc = subprocess.Popen(["sleep", "0"])  # exits, and stays a zombie until waited for
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        write_status(run, pid=proc.pid)
        assert mark_stopped_if_dead(run.path) is True
    finally:
        proc.wait()


def test_resume_refuses_a_live_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    run = make_run(tmp_path / "run")
    status = write_status(run, pid=4242)
    with held(run, pid=4242):
        assert main(["resume", str(run.path), "--quiet", "--no-video"]) == EXIT_USAGE
    assert one_line(capsys) == (
        f"prefrl resume: error: {run.path} is being run by another prefrl process (pid 4242); "
        "stop it first (Ctrl-C) or wait for it to finish"
    )
    assert no_run == []
    assert json.loads(run.status_path.read_text()) == status


@pytest.mark.parametrize("command", ["repair", "import"])
def test_repair_and_import_refuse_a_live_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run = make_run(tmp_path / "run", prefs=False)
    PreferenceStore(run.store_path, "Pendulum-v1").close()
    write_status(run, pid=4242)
    before = run.store_path.read_bytes()
    PreferenceStore(tmp_path / "other.sqlite", "Pendulum-v1").close()
    argv = [command, str(run.path)] + ([str(tmp_path / "other.sqlite")] if command == "import" else [])
    with held(run, pid=4242):
        assert main(argv) == EXIT_USAGE
    assert one_line(capsys) == (
        f"prefrl {command}: error: {run.path} is being run by another prefrl process (pid 4242); "
        f"stop it first (Ctrl-C), then run: prefrl {' '.join(argv)}"
    )
    assert run.store_path.read_bytes() == before
    write_status(run, pid=dead_pid())  # a killed run: marked stopped, then done
    assert main(argv) == 0
    assert "is being run" not in capsys.readouterr().err
    assert json.loads(run.status_path.read_text())["running"] is False


def test_resume_marks_a_killed_run_and_continues(tmp_path: Path, no_run: list[str]) -> None:
    run = make_run(tmp_path / "run")
    pid = dead_pid()
    write_status(run, pid=pid)
    assert main(["resume", str(run.path), "--quiet", "--no-video"]) == 0
    assert no_run == [str(run.path)]
    assert json.loads(run.status_path.read_text())["stopped"] == f"the run's process (pid {pid}) was gone"


@pytest.mark.parametrize("command", ["play", "label"])
def test_play_and_label_mark_a_killed_run(tmp_path: Path, command: str) -> None:
    run = make_run(tmp_path / "run", oracle="human")
    pid = dead_pid()
    write_status(run, pid=pid)
    main([command, str(run.path)])  # fails later (no checkpoint, no display): not the point here
    assert json.loads(run.status_path.read_text())["running"] is False


def test_a_final_video_that_cannot_be_written_leaves_the_run_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(run_dir: Path, out: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr("prefrl.runtime.run.record_run_policy", disk_full)
    config = small(steps=1024, labels=4, num_evals=1, backend="inprocess")
    summary = train(config, tmp_path / "run", progress=False, video=True)
    video = tmp_path / "run" / "videos" / "final_policy.mp4"
    assert summary["complete"] and (tmp_path / "run" / "summary.json").exists()
    assert (
        f"prefrl: no final video: [Errno {errno.ENOSPC}] No space left on device: '{video}' "
        "(--no-video skips it)\n"
    ) in capsys.readouterr().out


# ------------------------------------------------------------------ an env that draws nothing
class BlindPendulum(PendulumEnv):
    def render(self) -> None:
        return None


def test_an_env_that_draws_no_frames_ends_its_run_without_a_video_and_play_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gym.register("test/BlindPendulum-v0", entry_point=BlindPendulum, max_episode_steps=200)
    try:
        config = small(env_id="test/BlindPendulum-v0", steps=1024, labels=4, num_evals=1, backend="inprocess")
        summary = train(config, tmp_path / "run", progress=False, video=True)
        why = "test/BlindPendulum-v0 cannot draw frames: its render() with render_mode='rgb_array' gave NoneType, not an image array [height, width, 3]"
        assert summary["complete"] and (tmp_path / "run" / "summary.json").exists()
        assert f"prefrl: no final video: {why} (--no-video skips it)\n" in capsys.readouterr().out
        assert not list((tmp_path / "run" / "videos").iterdir())
        assert main(["play", str(tmp_path / "run"), "--out", str(tmp_path / "play.mp4")]) == EXIT_FAILED
        assert capsys.readouterr().err == f"prefrl play: {why}\n"
        assert not (tmp_path / "play.mp4").exists()
        baseline = ["baseline", "test/BlindPendulum-v0", "--steps", "512", "--ppo", "num_steps=64"]
        assert main([*baseline, "--eval-episodes", "1", "--quiet", "--run-dir", str(tmp_path / "ppo")]) == 0
        assert f"prefrl: no final video: {why} (--no-video skips it)\n" in capsys.readouterr().out
        assert (tmp_path / "ppo" / "summary.json").exists()
    finally:
        del gym.registry["test/BlindPendulum-v0"]
