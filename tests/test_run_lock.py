"""One process runs a run: ``prefrl train`` and ``prefrl resume`` hold ``RUN_DIR/run.lock``
(flock) while they run it; a second one is refused in one line, and a status.json that
says running without the lock held (a killed run, a machine restarted since) blocks
nothing. And a run whose budgets grew is never taken for complete at the old ones."""

from __future__ import annotations

import fcntl
import json
import multiprocessing as mp
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_run_errors import dead_pid, held, make_run, one_line, write_status
from test_store import make_clip

from prefrl import rundir
from prefrl.cli import main
from prefrl.errors import EXIT_USAGE
from prefrl.prefs import exchange
from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunBusyError, RunDir, mark_stopped_if_dead
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import resume, train
from prefrl.utils import locking

BUSY = "is being run by another prefrl process"


def lock_free(run: RunDir) -> bool:
    with run.lock_path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


# ------------------------------------------------------------------ two resumes at once
def _resume_in_child(run_dir: str, barrier: Any, events: Any, release: Any) -> None:
    """``prefrl resume`` with the run itself replaced: says it started, then holds on to
    the run until the test lets go."""
    import prefrl.runtime.run as run_module

    def execute(config: Any, run: RunDir, **kwargs: Any) -> dict[str, Any]:
        events.put(("started", os.getpid()))
        release.wait(60)
        return {"run_dir": str(run.path), "complete": True}

    run_module._execute = execute  # type: ignore[assignment]
    barrier.wait(60)
    try:
        run_module.resume(run_dir, progress=False, video=False)
    except RunBusyError as err:
        events.put(("busy", str(err)))


def test_two_resumes_at_the_same_moment_one_runs_the_other_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    ctx = mp.get_context("spawn")
    barrier, events, release = ctx.Barrier(2), ctx.Queue(), ctx.Event()
    children = [
        ctx.Process(target=_resume_in_child, args=(str(run.path), barrier, events, release)) for _ in "ab"
    ]
    for child in children:
        child.start()
    try:
        got = []
        for _ in children:  # each one either runs the run or is refused
            try:
                got.append(events.get(timeout=60))
            except queue.Empty:
                pytest.fail(f"the two resumes said only {got}")
        assert sorted(kind for kind, _ in got) == ["busy", "started"], got
        winner = next(pid for kind, pid in got if kind == "started")
        assert next(text for kind, text in got if kind == "busy") == (
            f"{run.path} {BUSY} (pid {winner}); stop it first (Ctrl-C) or wait for it to finish"
        )
    finally:
        release.set()
        for child in children:
            child.join(60)
            if child.is_alive():
                child.kill()
    assert lock_free(run)  # let go when its process ended


# ------------------------------------------------------------------ a held lock refuses
def test_resume_of_a_run_whose_lock_is_held_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    run = make_run(tmp_path / "run")
    with held(run, pid=None):  # the holder has not written its pid yet: none is named
        assert main(["resume", str(run.path), "--quiet", "--no-video"]) == EXIT_USAGE
        assert one_line(capsys) == (
            f"prefrl resume: error: {run.path} {BUSY}; stop it first (Ctrl-C) or wait for it to finish"
        )
    assert no_run == []
    assert not run.status_path.exists()


def test_train_into_a_run_directory_being_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    with held(run):
        argv = ["train", "--backend", "inprocess", "--run-dir", str(run.path), "--quiet", "--no-video"]
        assert main(argv) == EXIT_USAGE
        assert one_line(capsys) == (
            f"prefrl train: error: {run.path} {BUSY} (pid 4242); stop it first (Ctrl-C) or wait for it to finish"
        )
    assert no_run == [] and not run.config_path.exists()


def test_train_and_resume_hold_the_lock_while_they_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bool]] = []

    def execute(config: Any, run: RunDir, **kwargs: Any) -> dict[str, Any]:
        # held against other processes; this one's own commands see the run as not running
        seen.append((str(run.path), lock_free(run), run.running()))
        assert run.lock_path.read_text() == str(os.getpid())
        return {"run_dir": str(run.path), "complete": True}

    monkeypatch.setattr("prefrl.runtime.run._execute", execute)
    config = TrainConfig(env_id="Pendulum-v1", backend="inprocess")
    run = RunDir(tmp_path / "run")
    train(config, run.path, progress=False, video=False)
    resume(run.path, progress=False, video=False)
    assert seen == [(str(run.path), False, False)] * 2
    assert lock_free(run)


# ------------------------------------------------------------------ the lock is the truth
def test_after_a_restart_a_reused_pid_in_status_json_blocks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    run = make_run(tmp_path / "run")
    write_status(run, pid=1)  # the machine restarted: pid 1 is alive, and is not the run
    assert main(["resume", str(run.path), "--quiet", "--no-video"]) == 0
    assert no_run == [str(run.path)]
    assert json.loads(run.status_path.read_text())["stopped"] == "the run's process (pid 1) was gone"


@pytest.mark.parametrize("command", ["repair", "import"])
def test_repair_and_import_go_by_the_lock_not_by_the_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run = make_run(tmp_path / "run", prefs=False)
    PreferenceStore(run.store_path, "Pendulum-v1").close()
    PreferenceStore(tmp_path / "other.sqlite", "Pendulum-v1").close()
    argv = [command, str(run.path)] + ([str(tmp_path / "other.sqlite")] if command == "import" else [])
    write_status(run, pid=1)  # says running, with a pid alive: but no process holds the run
    assert main(argv) == 0
    assert BUSY not in capsys.readouterr().err
    assert json.loads(run.status_path.read_text())["running"] is False


@pytest.mark.parametrize("status", [{"running": True, "pid": 1}, {"running": True}])
def test_mark_stopped_when_no_process_holds_the_lock(tmp_path: Path, status: dict[str, Any]) -> None:
    run = make_run(tmp_path / "run")
    run.status_path.write_text(json.dumps(status))
    with held(run):
        assert mark_stopped_if_dead(run.path) is False  # held: running, whatever the pid
    assert json.loads(run.status_path.read_text()) == status
    assert mark_stopped_if_dead(run.path) is True
    assert json.loads(run.status_path.read_text())["running"] is False


# ------------------------------------------------------------------ budgets that grew
def finished(tmp_path: Path) -> RunDir:
    """A run that completed at 8192 steps and 20 labels: its store holds the 20 answers,
    its summary.json says so."""
    run = make_run(tmp_path / "run", steps=8192, labels=20)
    run.store_path.unlink()
    rng = np.random.default_rng(0)
    with PreferenceStore(run.store_path, "Pendulum-v1") as store:
        for i in range(20):
            clips = [make_clip(rng, env_id="Pendulum-v1") for _ in "lr"]
            query = store.add_query(*clips, agent_step=i, oracle="perfect", selection="random", score=0.5)
            store.record_answer(query, Answer.LEFT, oracle="perfect", response_time=0.0)
    summary = {"complete": True, "incomplete_reason": None, "env_steps": 8192, "labels_budget": 20}
    run.write_summary({**summary, "labels_used": 20})
    return run


def test_a_finished_run_at_its_budgets_is_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str]
) -> None:
    run = finished(tmp_path)
    assert resume(run.path, progress=False, video=False)["complete"] is True
    assert no_run == [] and f"prefrl: {run.path} is complete;" in capsys.readouterr().out


def test_a_kill_while_resume_grows_the_budget_leaves_no_complete_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_run: list[str]
) -> None:
    run = finished(tmp_path)
    write_config = RunDir.write_config

    def killed_after(self: RunDir, config: dict[str, Any]) -> None:
        write_config(self, config)
        raise SystemExit("killed")  # the process ends right after writing the larger budget

    monkeypatch.setattr(RunDir, "write_config", killed_after)
    with pytest.raises(SystemExit):
        resume(run.path, steps=16384, progress=False, video=False)
    assert run.read_config()["steps"] == 16384
    assert not run.summary_path.exists()  # not complete at a budget it never reached
    assert no_run == []


@pytest.mark.parametrize(
    ("grown", "said"),
    [
        ({"steps": 16384}, "8192 env steps (budget 16384)"),
        ({"labels": 40}, "a label budget of 20 (budget 40)"),
    ],
)
def test_a_summary_below_the_budgets_is_not_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str], grown: dict[str, int], said: str
) -> None:
    run = finished(tmp_path)
    run.write_config({**run.read_config(), **grown})  # what an older prefrl left when killed there
    resume(run.path, progress=False, video=False)
    assert no_run == [str(run.path)]  # it runs on
    assert (
        f"prefrl: {run.path}: its summary.json says complete at {said}: the budgets grew after it "
        "was written; training on to them\n" in capsys.readouterr().out
    )
    assert not run.summary_path.exists()


# ------------------------------------------------------------------ a file system without flock
def test_without_flock_a_live_pid_in_status_json_refuses_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_run: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locking, "_lock", lambda f, kind: False)  # ENOLCK, EOPNOTSUPP, ...
    run = make_run(tmp_path / "run")
    runner = subprocess.Popen(["sleep", "60"])
    try:
        write_status(run, pid=runner.pid)
        assert main(["resume", str(run.path), "--quiet", "--no-video"]) == EXIT_USAGE
        assert one_line(capsys) == (
            f"prefrl resume: error: {run.path} {BUSY} (pid {runner.pid}); "
            "stop it first (Ctrl-C) or wait for it to finish"
        )
        assert no_run == []
    finally:
        runner.kill()
        runner.wait()
    assert main(["resume", str(run.path), "--quiet", "--no-video"]) == 0  # its process gone: resumed
    assert no_run == [str(run.path)]


def test_exclusive_says_whether_it_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with locking.exclusive(tmp_path / "a.lock") as locked:
        assert locked is True
    monkeypatch.setattr(locking, "_lock", lambda f, kind: False)
    with locking.exclusive(tmp_path / "b.lock") as locked:
        assert locked is False


# ------------------------------------------------------------------ import and repair hold the run
@pytest.mark.parametrize("command", ["repair", "import"])
def test_repair_and_import_hold_the_lock_while_they_change_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    run = make_run(tmp_path / "run", prefs=False)
    PreferenceStore(run.store_path, "Pendulum-v1").close()
    PreferenceStore(tmp_path / "other.sqlite", "Pendulum-v1").close()
    seen: list[bool] = []
    if command == "repair":
        set_aside = PreferenceStore.set_aside_damaged

        def watched(store: PreferenceStore) -> Any:
            seen.append(lock_free(run))
            return set_aside(store)

        monkeypatch.setattr(PreferenceStore, "set_aside_damaged", watched)
    else:
        import_into = exchange.import_into

        def watched_import(store: PreferenceStore, part: Any, **kwargs: Any) -> Any:
            seen.append(lock_free(run))
            return import_into(store, part, **kwargs)

        monkeypatch.setattr(exchange, "import_into", watched_import)
    argv = [command, str(run.path)] + ([str(tmp_path / "other.sqlite")] if command == "import" else [])
    assert main(argv) == 0
    assert seen == [False]  # a resume started meanwhile would have been refused
    assert lock_free(run)


# ------------------------------------------------------------------ a lock tested for a moment
def test_a_lock_busy_for_a_moment_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = locking._lock, []

    def busy_twice(f: Any, kind: int) -> bool:  # lock_held's brief LOCK_SH, twice
        calls.append(kind)
        if len(calls) <= 2:
            raise locking.LockBusy(Path(f.name), 1234)
        return real(f, kind)

    monkeypatch.setattr(locking, "_lock", busy_twice)
    run = make_run(tmp_path / "run")
    with run.claim():
        assert not lock_free(run)
    assert calls == [fcntl.LOCK_EX] * 3


def test_a_lock_held_is_refused_after_a_few_tries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = locking._lock, []

    def counted(f: Any, kind: int) -> bool:
        calls.append(kind)
        return real(f, kind)

    monkeypatch.setattr(locking, "_lock", counted)
    run = make_run(tmp_path / "run")
    with held(run), pytest.raises(RunBusyError, match="pid 4242"), run.claim():
        pytest.fail("claimed a held lock")
    assert len(calls) == locking.BUSY_TRIES


def test_check_not_running_tests_the_lock_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def counted(path: Any) -> bool | None:
        calls.append(Path(path))
        return locking.lock_held(path)

    monkeypatch.setattr(rundir, "lock_held", counted)
    run = make_run(tmp_path / "run")
    with held(run, pid=None), pytest.raises(RunBusyError):
        run.check_not_running()
    assert calls == [run.lock_path]


# ------------------------------------------------------------------ the roles of a killed run
def test_resume_waits_for_the_roles_of_a_killed_run_to_end(
    tmp_path: Path, no_run: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run")
    role = subprocess.Popen(["sleep", "60"])  # a role of the killed process, still alive
    write_status(run, pid=dead_pid(), role_pids={"agent": role.pid})
    ended = threading.Timer(0.3, role.kill)
    start = time.monotonic()
    ended.start()
    try:
        resume(run.path, progress=False, video=False)
        assert time.monotonic() - start >= 0.3 and role.poll() is not None  # ran once it had ended
    finally:
        ended.cancel()
        role.kill()
        role.wait()
    assert no_run == [str(run.path)]


def test_roles_alive_past_the_wait_are_taken_for_other_processes(
    tmp_path: Path, no_run: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rundir, "ROLES_GONE_WAIT_S", 0.2)
    run = make_run(tmp_path / "run")
    other = subprocess.Popen(["sleep", "60"])  # a pid reused since
    try:
        write_status(run, pid=dead_pid(), role_pids={"agent": other.pid})
        start = time.monotonic()
        resume(run.path, progress=False, video=False)
        assert 0.2 <= time.monotonic() - start < 5
        write_status(run, running=False, pid=dead_pid(), role_pids={"agent": other.pid})  # stopped whole
        start = time.monotonic()
        resume(run.path, progress=False, video=False)
        assert time.monotonic() - start < 0.2  # no wait
    finally:
        other.kill()
        other.wait()
    assert no_run == [str(run.path)] * 2
