"""The whole human path: `prefrl train --oracle human` opens the real window on a real X
display (Xvfb); a scripted person presses real keys (xdotool) as the perfect oracle would;
the answers land in the store and train the reward model."""

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import SMALL_RUN_FLAGS

from prefrl.oracles import PerfectOracle
from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore
from prefrl.reward import load_reward_model

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool (apt)"
)
KEYS = {Answer.LEFT: "Left", Answer.RIGHT: "Right", Answer.EQUAL: "Up", Answer.CANT_TELL: "Down"}


@pytest.fixture
def display():
    number = 90 + os.getpid() % 9
    xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"])
    time.sleep(1.0)
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(5)


def test_a_person_labels_a_live_run_in_the_window(tmp_path, display):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env.update(DISPLAY=display, PYTHONUNBUFFERED="1")
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
            "6",
            "--steps",
            "8192",
            "--run-dir",
            str(run),
            *SMALL_RUN_FLAGS,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    oracle, expected = PerfectOracle(), {}
    deadline = time.time() + 150
    while proc.poll() is None and time.time() < deadline:
        if not (run / "prefs.sqlite").exists():
            time.sleep(0.5)
            continue
        with PreferenceStore(run / "prefs.sqlite") as store:
            pending = store.pending_queries()
            if not pending:
                time.sleep(0.3)
                continue
            query = pending[0]  # the window shows the oldest waiting query
            clips = store.get_clips([query.left_clip_id, query.right_clip_id])
        answer = oracle.answer(clips[query.left_clip_id], clips[query.right_clip_id])
        time.sleep(1.0)  # the pair has to be rendered and on screen before a key counts
        subprocess.run(["xdotool", "key", KEYS[answer]], env=env, check=True)
        expected[query.query_id] = answer
        time.sleep(0.5)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with PreferenceStore(run / "prefs.sqlite") as store:
        labels = store.labels()
    assert len(labels) >= 4
    for label in labels:  # every answer in the store is the key the person pressed
        assert label.answer == expected[label.query_id]
    with PreferenceStore(run / "prefs.sqlite") as store:
        assert {q.oracle for q in store.pending_queries()} <= {"human"}
    model = load_reward_model(run)
    assert model.version >= 1  # the answers reached the reward trainer
