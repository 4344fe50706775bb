"""Faults at random moments: each role killed (SIGKILL) up to its restart limit, across many
short runs, or stopped (SIGSTOP: hung). Every run must still finish with its whole label
budget, trained on, and keep every answer given before a kill.

The kill moments come from a seeded generator; a failure names the seed, and
``PREFRL_FAULT_SEED=S`` replays it. ``PREFRL_FAULT_RUNS`` sets the runs per role (default
10; every run of the suite draws new moments).
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_runtime import small

from prefrl.errors import ConfigError
from prefrl.prefs.store import PreferenceStore, StoreError
from prefrl.runtime import hangs
from prefrl.runtime.run import train

RUNS = int(os.environ.get("PREFRL_FAULT_RUNS", "10"))
BASE_SEED = int(os.environ.get("PREFRL_FAULT_SEED", random.randrange(10**6)))
MAX_KILLS = 3  # the default restart limit of the multiprocess and ray backends
HANG_RUNS = 2  # runs per role whose role is stopped (SIGSTOP)


def role_pid(run_dir: Path, role: str) -> int | None:
    try:
        return int(json.loads((run_dir / "status.json").read_text())["role_pids"][role])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answered_ids(run_dir: Path) -> set[int]:
    try:
        store = PreferenceStore(run_dir / "prefs.sqlite")
    except StoreError:  # not there yet, or the labeler is creating it
        return set()
    with store:
        return {label.query_id for label in store.labels()}


def run_with_kills(
    run_dir: Path, role: str, seed: int, backend: str = "multiprocess", sig: int = signal.SIGKILL
) -> tuple[dict, int, set[int]]:
    """A short run whose ``role`` is killed (sent ``sig``) 1..MAX_KILLS times at random
    moments; returns its summary, the kills delivered and the answers that existed before
    the last kill."""
    rng = random.Random(seed)
    result: dict = {}
    runner = threading.Thread(
        target=lambda: result.update(
            train(small(steps=2048, labels=8, backend=backend), run_dir, progress=False, video=False)
        )
    )
    runner.start()
    kills, killed, before = 0, set(), set()
    for _ in range(rng.randint(1, MAX_KILLS)):
        time.sleep(rng.uniform(0.2, 4.0))
        pid = role_pid(run_dir, role)
        deadline = time.monotonic() + 300  # a loaded machine may take minutes to start a role
        while (pid is None or pid in killed) and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # the restarted process is not up yet
            pid = role_pid(run_dir, role)
        if not runner.is_alive() or pid is None or pid in killed:
            break
        before = answered_ids(run_dir)
        try:
            os.kill(pid, sig)
            kills += 1
        except ProcessLookupError:
            pass  # it had just finished its job
        killed.add(pid)
    runner.join(
        timeout=300 if sig == signal.SIGSTOP else 900
    )  # only a safety: a loaded machine slows every run
    for pid in killed if sig == signal.SIGSTOP else ():  # one the run left behind would stay forever
        if stopped_child(pid):
            os.kill(pid, signal.SIGKILL)
    assert not runner.is_alive(), f"seed {seed}: the run did not end"
    return result, kills, before


def stopped_child(pid: int) -> bool:
    """Whether ``pid`` is a stopped process of ours (a role whose run left it behind)."""
    try:
        state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError):
        return False
    return state == "T" and int(ppid) in (os.getpid(), 1)


def assert_every_label_kept(summary: dict, run_dir: Path, before: set[int], where: str) -> None:
    """The short run of :func:`run_with_kills` completed with its 8 labels, every answer
    given before the last kill among them."""
    assert summary["complete"] is True, f"{where}: {summary['incomplete_reason']}"
    assert summary["labels_used"] == 8 and summary["env_steps"] >= 2048, where
    after = answered_ids(run_dir)
    assert before <= after and len(after) == 8, where


@pytest.mark.faults
@pytest.mark.parametrize("role", ["agent", "labeler", "reward_trainer"])
def test_a_role_killed_at_random_moments_never_costs_a_label(tmp_path, role, capsys):
    total_kills = 0
    for n in range(RUNS):
        seed = BASE_SEED + n
        run_dir = tmp_path / f"run{n}"
        summary, kills, before = run_with_kills(run_dir, role, seed)
        total_kills += kills
        where = f"{role}, seed {seed} (replay: PREFRL_FAULT_SEED={seed} PREFRL_FAULT_RUNS=1)"
        assert_every_label_kept(summary, run_dir, before, where)
        with PreferenceStore(run_dir / "prefs.sqlite") as store:
            assert store.pending_queries() == [], where
    assert total_kills >= RUNS // 2  # the kills did land
    assert capsys.readouterr().out.count(f"the {role} process died") >= total_kills // 2


@pytest.mark.faults
@pytest.mark.parametrize("role", ["agent", "labeler", "reward_trainer"])
def test_a_role_stopped_at_random_moments_is_ended_and_started_again(tmp_path, role, capsys, monkeypatch):
    # SIGSTOP: the process lives on, sends nothing and uses no CPU, as a deadlocked one would
    monkeypatch.setenv("PREFRL_HANG_S", "5")
    total_stops = 0
    for n in range(HANG_RUNS):
        seed = BASE_SEED + n
        run_dir = tmp_path / f"run{n}"
        summary, stops, before = run_with_kills(run_dir, role, seed, sig=signal.SIGSTOP)
        total_stops += stops
        where = f"{role}, seed {seed} (replay: PREFRL_FAULT_SEED={seed})"
        assert_every_label_kept(summary, run_dir, before, where)
    assert total_stops >= HANG_RUNS // 2  # the stops did land
    out = capsys.readouterr().out
    assert (
        out.count(f"the {role} process hung: it sent nothing and used under 0.5 s of CPU in")
        >= total_stops // 2
    ), out


def test_the_watchdog_judges_silence_by_cpu_use_and_forgives_its_own_absence(monkeypatch):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # past their start-up's CPU use
        watch, long_ago = hangs.HangWatch(), time.monotonic() - hangs.HANG_S - 1
        for role in ("sleeper", "spinner"):
            watch.sign(role)
            watch.last_sign[role] = long_ago  # silent since
        watch.look()
        assert watch.silent_for("gone", hangs.cpu_seconds(2**22 + 1)) == 0.0  # no such process
        assert watch.silent_for("sleeper", hangs.cpu_seconds(sleeper.pid)) > hangs.HANG_S
        first = hangs.cpu_seconds(spinner.pid)
        assert watch.silent_for("spinner", first) > hangs.HANG_S  # no CPU use seen yet
        deadline = time.monotonic() + 60  # a loaded machine gives it less than a core
        while hangs.cpu_seconds(spinner.pid) - first < hangs.HANG_CPU_S and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watch.silent_for("spinner", hangs.cpu_seconds(spinner.pid)) == 0.0  # busy: never hung
        assert watch.silent_for("sleeper", hangs.cpu_seconds(sleeper.pid)) > hangs.HANG_S
        watch.last_look -= hangs.PARENT_GAP_S + 1  # the supervisor was stopped (Ctrl-Z), then went on
        watch.look()
        assert watch.silent_for("sleeper", hangs.cpu_seconds(sleeper.pid)) == 0.0  # forgiven
        monkeypatch.setenv("PREFRL_HANG_S", "0")  # never end a role
        never = hangs.HangWatch()
        never.sign("sleeper")
        never.last_sign["sleeper"] = long_ago
        never.look()
        assert never.silent_for("sleeper", hangs.cpu_seconds(sleeper.pid)) == 0.0
    finally:
        sleeper.kill()
        spinner.kill()


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", ""])
def test_a_hang_time_that_is_no_number_of_seconds_is_refused(monkeypatch, value):
    monkeypatch.setenv("PREFRL_HANG_S", value)
    with pytest.raises(
        ConfigError, match=r"PREFRL_HANG_S=.*give the seconds after which a silent role counts as hung"
    ):
        hangs.HangWatch()


def test_a_damaged_clip_stops_the_run_with_its_name_and_repair_lets_it_finish(tmp_path, capsys):
    from test_store import flip_byte

    from prefrl.cli import main

    run = tmp_path / "r"
    assert train(small(backend="inprocess", labels=8), run, progress=False, video=False)["complete"]
    with PreferenceStore(run / "prefs.sqlite") as store:
        label = store.labels()[2]
    flip_byte(run / "prefs.sqlite", label.left_clip_id, "obs", 200)
    capsys.readouterr()

    assert main(["resume", str(run), "--labels", "12", "--quiet", "--no-video"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pickle" not in err
    assert f"damaged clip {label.left_clip_id}" in err and f"prefrl repair {run}" in err

    assert main(["repair", str(run)]) == 0
    repaired = json.loads(capsys.readouterr().out)
    assert repaired["damaged_clips"] == [label.left_clip_id] and repaired["answers_set_aside"] >= 1
    assert main(["resume", str(run), "--labels", "12", "--quiet", "--no-video"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["complete"], summary["labels_used"]) == (True, 12)  # set-aside labels asked again


def test_an_export_made_before_the_damage_restores_what_repair_set_aside(tmp_path, capsys):
    from test_store import flip_byte

    from prefrl.cli import main

    run = tmp_path / "r"
    assert train(small(backend="inprocess", labels=8), run, progress=False, video=False)["complete"]
    assert main(["export", str(run), str(tmp_path / "backup")]) == 0
    with PreferenceStore(run / "prefs.sqlite") as store:
        labels = store.labels()
    flip_byte(run / "prefs.sqlite", labels[2].left_clip_id, "obs", 200)
    capsys.readouterr()

    assert main(["repair", str(run)]) == 0
    out = capsys.readouterr()
    set_aside = json.loads(out.out)["answers_set_aside"]
    assert set_aside >= 1 and f"prefrl import {run} COPY" in out.err
    assert main(["import", str(run), str(tmp_path / "backup")]) == 0
    imported = json.loads(capsys.readouterr().out)
    restored = (imported["clips_restored"], imported["answers_restored"], imported["answered"])
    assert restored == (1, set_aside, 8)
    with PreferenceStore(run / "prefs.sqlite") as store:
        assert store.labels() == labels and store.set_aside_queries() == {}
    assert main(["resume", str(run), "--quiet", "--no-video"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["complete"], summary["labels_used"]) == (True, 8)  # nothing asked again
