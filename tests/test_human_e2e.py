"""The whole human path: `prefrl train --oracle human` opens the real window on a real X
display (Xvfb); a scripted person presses real keys (xdotool) as the perfect oracle would;
the answers land in the store and train the reward model.

Nothing waits a fixed time: the test waits until the window says a pair is on screen and
answers are open (its events, through ``PREFRL_LABEL_EVENTS``: "shown", then "open" once
the pair has played for the minimum viewing time), presses one key, and waits until the
store holds that answer."""

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_RUN_FLAGS

from prefrl.oracles import PerfectOracle
from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore
from prefrl.reward import load_reward_model
from prefrl.ui.cli import EVENTS_ENV

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool (apt)"
)
KEYS = {Answer.LEFT: "Left", Answer.RIGHT: "Right", Answer.EQUAL: "Up", Answer.CANT_TELL: "Down"}
LABELS = 6


def wait_for(
    what: str, condition: Callable[[], Any], timeout_s: float, proc: subprocess.Popen | None = None
) -> Any:
    """``condition()`` once it is truthy; fails after ``timeout_s`` or when ``proc`` has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the run exited ({proc.returncode}) while waiting for {what}:\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.05)


@pytest.fixture
def display():
    number = 90 + os.getpid() % 9
    xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"])
    env = {**os.environ, "DISPLAY": f":{number}"}

    def ready() -> bool:
        probe = subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True)
        return probe.returncode == 0

    try:
        wait_for("the X server", ready, 30)
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(5)


def window_events(path: Path) -> list[dict[str, Any]]:
    """The events the window has written so far (whole lines only)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def stored_answers(store_path: Path) -> dict[int, Answer]:
    """``{query_id: answer}`` straight from the SQLite file (read-only: the run writes it)."""
    if not store_path.exists():
        return {}
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT query_id, answer FROM answers").fetchall()
    except sqlite3.OperationalError:
        return {}  # the run is still creating its tables
    finally:
        conn.close()
    return {qid: Answer(answer) for qid, answer in rows}


def run_with_two_pairs(run_dir: Path, env_id: str, **config: Any):
    """A human run of ``env_id`` whose store holds two pairs of random-policy clips to answer."""
    from prefrl.ui.scripted import collect_clips, make_human_run

    run = make_human_run(run_dir, env_id, labels=6, steps=4096, clip_length=25, **config)
    clips = collect_clips(env_id, 4, 25, fixed_length=config.get("fixed_length", False), seed=1)
    with PreferenceStore(run.store_path) as store:
        store.add_query(clips[0], clips[1], agent_step=0, oracle="human", selection="random")
        store.add_query(clips[2], clips[3], agent_step=0, oracle="human", selection="random")
    return run


def open_window(command: list[str], display: str, events: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start ``python -m COMMAND...`` on ``display``, its window's events going to ``events``."""
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env.update(DISPLAY=display, **{EVENTS_ENV: str(events)})
    proc = subprocess.Popen(
        [sys.executable, "-m", *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, env


HAVE_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.parametrize(
    "backend",
    ["multiprocess", pytest.param("ray", marks=pytest.mark.skipif(not HAVE_RAY, reason="needs prefrl[ray]"))],
)
def test_a_person_labels_a_live_run_in_the_window(tmp_path, display, backend):
    """The window opens with the driver; with the ray backend the labeler is an actor on
    the driver's node and the person's answers reach it through the store all the same."""
    run, events = tmp_path / "run", tmp_path / "window-events.jsonl"
    store_path = run / "prefs.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env.update(DISPLAY=display, PYTHONUNBUFFERED="1", **{EVENTS_ENV: str(events)})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefrl.cli",
            "train",
            "Pendulum-v1",
            "--oracle",
            "human",
            "--labels",
            str(LABELS),
            "--steps",
            "8192",
            "--run-dir",
            str(run),
            "--backend",
            backend,
            *SMALL_RUN_FLAGS,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    oracle, expected = PerfectOracle(), {}
    try:
        for k in range(LABELS):

            def next_pair() -> int | None:
                opened = [e["query_id"] for e in window_events(events) if e["kind"] == "open"]
                return next((qid for qid in opened if qid not in expected), None)

            query_id = wait_for(f"pair {k + 1} on screen, answers open", next_pair, 600, proc)
            with PreferenceStore(store_path) as store:
                query = next(q for q in store.pending_queries() if q.query_id == query_id)
                clips = store.get_clips([query.left_clip_id, query.right_clip_id])
            answer = oracle.answer(clips[query.left_clip_id], clips[query.right_clip_id])
            subprocess.run(["xdotool", "key", KEYS[answer]], env=env, check=True)
            expected[query_id] = answer
            wait_for(
                f"answer {k + 1} in the store", lambda q=query_id: q in stored_answers(store_path), 30, proc
            )
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    # exactly the keys pressed, each answering the pair that was on screen
    assert stored_answers(store_path) == expected and len(expected) == LABELS
    answered = [e for e in window_events(events) if e["kind"] == "answered"]
    assert [(e["query_id"], e["answer"]) for e in answered] == [(q, a.value) for q, a in expected.items()]
    with PreferenceStore(store_path) as store:
        assert {q.oracle for q in store.pending_queries()} <= {"human"}
    model = load_reward_model(run)
    assert model.version >= 1  # the answers reached the reward trainer


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc), zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X") and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_escape_closes_the_window_and_every_process_it_started(tmp_path, display):
    from prefrl.rundir import pid_alive, read_window
    from prefrl.ui.display import probe_x11

    assert probe_x11(display) is None  # the display probe finds the X server
    run = run_with_two_pairs(tmp_path / "run", "Pendulum-v1")
    events = tmp_path / "events.jsonl"
    proc, env = open_window(["prefrl.ui", str(run.path)], display, events)
    try:
        wait_for("the first pair", lambda: any(e["kind"] == "open" for e in window_events(events)), 60, proc)
        children = children_of(proc.pid)
        assert children  # the render process and multiprocessing's resource tracker
        subprocess.run(["xdotool", "key", "Left"], env=env, check=True)
        wait_for("the answer", lambda: 1 in stored_answers(run.store_path), 30, proc)
        subprocess.run(["xdotool", "key", "BackSpace"], env=env, check=True)  # undo it
        wait_for("the undo", lambda: any(e["kind"] == "undone" for e in window_events(events)), 30, proc)
        assert stored_answers(run.store_path) == {}
        subprocess.run(["xdotool", "key", "Escape"], env=env, check=True)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "0 answers given" in out
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if pid_alive(p)]
    window = read_window(run.path)
    assert window is not None and window["open"] is False and window["sessions"] == 1
    with PreferenceStore(run.store_path) as store:
        assert [q.query_id for q in store.pending_queries()] == [1, 2]
        assert store.undone_answers() == [(1, Answer.LEFT, "human")]


@pytest.mark.parametrize(
    "env_id, fixed_length",
    [("ALE/Pong-v5", 256), ("FrozenLake-v1", 100)],  # from pixels; a grid world of discrete states
)
def test_a_person_labels_clips_drawn_from_snapshots_in_the_window(tmp_path, display, env_id, fixed_length):
    """`prefrl label` on a run of an env with a snapshotter of its own: the window draws its
    frames from their snapshots (Pong's colour frames, FrozenLake's grid), and keys answer,
    undo and answer again as on any env."""
    run = run_with_two_pairs(tmp_path / "run", env_id, fixed_length=fixed_length)
    events = tmp_path / "events.jsonl"
    proc, env = open_window(["prefrl.cli", "label", str(run.path)], display, events)
    try:

        def opens(query_id: int) -> int:
            return sum(e["kind"] == "open" and e["query_id"] == query_id for e in window_events(events))

        wait_for("the first pair", lambda: opens(1) == 1, 90, proc)
        subprocess.run(["xdotool", "key", "Left"], env=env, check=True)
        wait_for("the first answer", lambda: 1 in stored_answers(run.store_path), 30, proc)
        wait_for("the second pair", lambda: opens(2) == 1, 60, proc)
        subprocess.run(["xdotool", "key", "BackSpace"], env=env, check=True)  # undo the first
        wait_for("the undo", lambda: 1 not in stored_answers(run.store_path), 30, proc)
        wait_for("the first pair again", lambda: opens(1) == 2, 60, proc)
        subprocess.run(["xdotool", "key", "Right"], env=env, check=True)
        wait_for(
            "the new first answer", lambda: stored_answers(run.store_path).get(1) == Answer.RIGHT, 30, proc
        )
        wait_for("the second pair again", lambda: opens(2) == 2, 60, proc)
        subprocess.run(["xdotool", "key", "Up"], env=env, check=True)
        wait_for("the second answer", lambda: 2 in stored_answers(run.store_path), 30, proc)
        subprocess.run(["xdotool", "key", "Escape"], env=env, check=True)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert stored_answers(run.store_path) == {1: Answer.RIGHT, 2: Answer.EQUAL}
    assert {e["query_id"] for e in window_events(events) if e["kind"] == "shown"} == {1, 2}
