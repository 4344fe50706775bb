"""The human labelling path: the real pygame window (SDL's dummy driver), driven by a
scripted person who presses the keys a behaviour oracle chooses, on clips of real
Pendulum-v1 rollouts."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import json
import sqlite3
import threading
import time

import numpy as np
import pygame
import pytest
import torch

from prefrl.oracles import PerfectOracle
from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore
from prefrl.render.frames import SnapshotRenderer
from prefrl.render.pair import compose_pair, pad_clip, write_pair_video
from prefrl.rundir import RunDir, write_json
from prefrl.runtime.channels import ClipBatch, LocalClipQueue, LocalStatus, LocalWeights
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.labeler import LabelerRole
from prefrl.runtime.reward_trainer import RewardTrainerRole
from prefrl.tasks import instruction_for
from prefrl.ui import (
    NoDisplayError,
    NothingToLabelError,
    RenderAhead,
    open_run,
    run_labeling,
    start_labeling_window,
)
from prefrl.ui.cli import main as label_main
from prefrl.ui.render_ahead import _make_renderer, frame_stride_for
from prefrl.ui.run_info import START_GRACE_S, STATUS_STALE_S, read_state
from prefrl.ui.scripted import ScriptedPerson, collect_clips, make_human_run
from prefrl.ui.window import LabelingWindow

torch.set_num_threads(1)

ENV = "Pendulum-v1"
CLIP = 25
SMALL = dict(
    steps=4096,
    clip_length=CLIP,
    reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
)


@pytest.fixture(scope="module")
def clips():
    """Clips of real Pendulum-v1 rollouts (random policy), with snapshots."""
    return collect_clips(ENV, 24, CLIP, seed=3)


def make_run(path, clips, num_queries, *, labels=12, running=False, agent_step=2048):
    """A human-labelled run directory with ``num_queries`` pending queries."""
    run = make_human_run(path, ENV, labels=labels, **SMALL)
    with PreferenceStore(run.store_path) as store:
        for k in range(num_queries):
            store.add_query(
                clips[2 * k], clips[2 * k + 1], agent_step=agent_step, oracle="human", selection="random"
            )
    write_status(run, running=running, agent_step=agent_step, labels=labels)
    return run


def write_status(run, *, running, agent_step=2048, labels=12, answered=0):
    write_json(
        run.status_path,
        {
            "running": running,
            "agent_step": agent_step,
            "total_steps": SMALL["steps"],
            "labels_answered": answered,
            "labels_wanted": labels // 2,
            "labels_total": labels,
            "reward_version": 0,
            "updated_at": time.time(),
        },
    )


def stored_answers(run):
    """``{query_id: (answer, oracle, response_time)}`` straight from the SQLite file."""
    conn = sqlite3.connect(f"file:{run.store_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT query_id, answer, oracle, response_time FROM answers").fetchall()
    finally:
        conn.close()
    return {qid: (Answer(answer), oracle, rt) for qid, answer, oracle, rt in rows}


def pending_ids(run):
    with PreferenceStore(run.store_path) as store:
        return [q.query_id for q in store.pending_queries()]


def post_key(key):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


# ------------------------------------------------------------------------- pairs


def test_compose_pair_pads_the_shorter_clip_and_captions_both():
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (5, 40, 30, 3), dtype=np.uint8)
    right = rng.integers(0, 255, (3, 40, 30, 3), dtype=np.uint8)
    out = compose_pair(left, right, gap=4)
    assert out.shape == (5, 4 + 40 + 30 + 4, 4 + 30 + 4 + 30 + 4, 3)
    np.testing.assert_array_equal(out[:, 4:44, 4:34], left)
    np.testing.assert_array_equal(out[:3, 4:44, 38:68], right)
    np.testing.assert_array_equal(out[3:, 4:44, 38:68], np.repeat(right[-1:], 2, axis=0))  # held
    caption = out[0, 44:74]
    assert (caption != caption[0, 0]).any()  # some text was drawn
    assert compose_pair(left, right, captions=None).shape[1] == 16 + 40 + 16
    with pytest.raises(ValueError, match="uint8"):
        compose_pair(left.astype(np.float32), right)
    with pytest.raises(ValueError, match="no frames"):
        pad_clip(left[:0], 3)


def test_write_pair_video_plays_at_the_env_speed(tmp_path, clips):
    from moviepy import VideoFileClip

    renderer = SnapshotRenderer(ENV)
    try:
        left, right = renderer.render(clips[0].snapshots), renderer.render(clips[1].snapshots[:20])
        path = write_pair_video(left, right, tmp_path / "pair.mp4", renderer.fps)
    finally:
        renderer.close()
    video = VideoFileClip(str(path))
    try:
        assert video.fps == pytest.approx(30.0)  # Pendulum's render_fps
        assert video.duration == pytest.approx(CLIP / 30.0, abs=0.05)
        assert video.size[0] >= 2 * left.shape[2]
    finally:
        video.close()


def test_render_ahead_process_frames_are_the_snapshots_frames(clips):
    renderer = SnapshotRenderer(ENV)
    expected = renderer.render(clips[2].snapshots), renderer.render(clips[3].snapshots)
    renderer.close()
    with RenderAhead(ENV, backend="process") as ahead:
        ahead.submit(7, clips[2].snapshots, clips[3].snapshots)
        assert ahead.in_flight == {7}
        deadline = time.monotonic() + 60
        done = []
        while not done and time.monotonic() < deadline:
            done = ahead.poll()
            time.sleep(0.01)
    (pair,) = done
    assert pair.query_id == 7 and pair.fps == 30.0 and pair.frame_stride == 1
    np.testing.assert_array_equal(pair.left, expected[0])
    np.testing.assert_array_equal(pair.right, expected[1])
    assert frame_stride_for(50.0, 40.0) == 1 and frame_stride_for(30.0, 40.0) == 1
    assert frame_stride_for(125.0, 40.0) == 3 and frame_stride_for(125.0, 30.0) == 4


def test_mujoco_clips_are_shown_at_most_25_frames_a_second():
    renderer, stride, fps = _make_renderer("Hopper-v5", True, None)
    renderer.close()
    assert (stride, fps) == (5, 25.0)  # 125 fps simulation, every 5th frame: still real time


# ------------------------------------------------------------------------ window


def test_answers_land_in_the_store_and_train_the_reward_model(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 6, labels=12)
    person = ScriptedPerson(run.store_path, PerfectOracle())
    try:
        given = run_labeling(run.path, on_event=person, finish_linger_s=0)
    finally:
        person.close()
    # The run is stopped: the window ends by itself once nothing is left to label.
    assert given == 6
    assert [e.query_id for e in person.shown] == [1, 2, 3, 4, 5, 6]  # oldest first
    answers = stored_answers(run)
    assert {qid: a for qid, (a, _, _) in answers.items()} == person.expected
    assert {oracle for _, oracle, _ in answers.values()} == {"human"}
    assert all(rt is not None and rt >= 0 for _, _, rt in answers.values())
    assert pending_ids(run) == []

    # The reward trainer (the run's real role) learns from them and publishes version 1.
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    weights, status = LocalWeights(), LocalStatus()
    trainer = RewardTrainerRole(config, run.path, weights, status)
    try:
        assert trainer.step()
        assert trainer.trainer.num_labels == sum(a != Answer.CANT_TELL for a in person.expected.values())
        published = weights.latest()
        assert published is not None and published["version"] == 1
        assert trainer.last_metrics["reward/train_accuracy"] > 0.5
    finally:
        trainer.close()


def test_a_live_run_keeps_asking_until_its_budget_is_spent(tmp_path, clips):
    """The run's real labeler keeps 3 queries pending; the window answers them as they come."""
    labels = 6
    run = make_human_run(tmp_path / "run", ENV, labels=labels, **SMALL)
    write_status(run, running=True, agent_step=SMALL["steps"], labels=labels)
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    stop, errors, pending_seen = threading.Event(), [], []

    def labeler_thread():
        try:
            queue = LocalClipQueue()
            queue.put(ClipBatch(list(clips), agent_step=config.steps))
            role = LabelerRole(config, run.path, queue, LocalWeights(), LocalStatus())
            try:
                while not stop.is_set() and not role.done:
                    role.step()
                    pending_seen.append(len(role.store.pending_queries()))
                    time.sleep(0.02)
            finally:
                role.close()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=labeler_thread)
    thread.start()
    person = ScriptedPerson(run.store_path, PerfectOracle())
    try:
        given = run_labeling(run.path, on_event=person, finish_linger_s=0)
    finally:
        person.close()
        stop.set()
        thread.join(30)
    assert not errors
    assert given == labels and len(stored_answers(run)) == labels
    assert max(pending_seen) <= 3


def test_closing_mid_query_leaves_it_pending_and_it_comes_first_next_time(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 3)
    seen = []

    def close_on_first_pair(event):
        if event.kind == "shown":
            seen.append(event.query_id)
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    assert run_labeling(run.path, on_event=close_on_first_pair, finish_linger_s=0) == 0
    assert seen == [1]
    assert stored_answers(run) == {}
    assert pending_ids(run) == [1, 2, 3]

    person = ScriptedPerson(run.store_path)
    try:
        assert run_labeling(run.path, max_answers=1, on_event=person, finish_linger_s=0) == 1
    finally:
        person.close()
    assert person.shown[0].query_id == 1
    assert list(stored_answers(run)) == [1]
    assert pending_ids(run) == [2, 3]


def test_escape_stops_and_space_and_p_do_not_answer(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 2)
    shown = []

    def press_space_pause_then_escape(event):
        if event.kind == "shown":
            shown.append(event)
            for key in (pygame.K_SPACE, pygame.K_p, pygame.K_ESCAPE):
                post_key(key)

    window = LabelingWindow(open_run(run.path), on_event=press_space_pause_then_escape, backend="thread")
    try:
        assert window.run() == 0
        session = window.session
        assert session.pair is not None and session.playback is not None
        assert session.pair.query_id == 1
        assert session.playback.paused  # P paused it
        assert session.playback.start > shown[0].time  # Space restarted it after it was shown
    finally:
        window.close()
    assert stored_answers(run) == {}
    assert pending_ids(run) == [1, 2]


def test_without_a_display_the_error_says_how_to_run_it(tmp_path, clips, monkeypatch):
    run = make_run(tmp_path / "run", clips, 1)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    # the driver this process started with (the tests' dummy driver) is what counts
    monkeypatch.setattr("prefrl.render.frames.USER_SDL_VIDEODRIVER", None)
    with pytest.raises(NoDisplayError) as err:
        run_labeling(run.path)
    message = str(err.value)
    assert "Xvfb :99 & DISPLAY=:99 prefrl label RUN_DIR" in message
    assert "--oracle synthetic" in message
    assert isinstance(err.value, RuntimeError)


def test_run_directories_that_cannot_be_labelled(tmp_path, clips):
    with pytest.raises(FileNotFoundError, match="no run directory"):
        run_labeling(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        run_labeling(tmp_path / "empty")
    baseline = RunDir.create(tmp_path / "baseline", "baseline", ENV, 0)
    baseline.write_config({"kind": "baseline", "env_id": ENV})
    with pytest.raises(ValueError, match="not a preference run"):
        run_labeling(baseline.path)
    synthetic = RunDir.create(tmp_path / "synthetic", "train", ENV, 0)
    synthetic.write_config({"kind": "train", **TrainConfig(env_id=ENV).to_dict()})
    with pytest.raises(ValueError, match="synthetic oracle"):
        run_labeling(synthetic.path)

    finished = make_run(tmp_path / "finished", clips, 0, running=False)
    with pytest.raises(NothingToLabelError, match="nothing to label"):
        run_labeling(finished.path)
    spent = make_run(tmp_path / "spent", clips, 2, labels=2, running=True)
    with PreferenceStore(spent.store_path) as store:
        for query in store.pending_queries():
            store.record_answer(query.query_id, Answer.LEFT, oracle="human")
    with pytest.raises(NothingToLabelError, match="all 2 labels"):
        run_labeling(spent.path)
    assert open_run(spent.path).instruction == instruction_for(ENV)


def test_the_window_prefrl_train_starts_closes_when_the_run_stops(tmp_path, clips):
    """``start_labeling_window`` (``python -m prefrl.ui RUN_DIR --stop-with-run``) leaves a
    stopped run's questions pending and exits by itself."""
    run = make_run(tmp_path / "run", clips, 2, running=False)
    process = start_labeling_window(run.path)
    try:
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert pending_ids(run) == [1, 2]


def test_the_command_line_reports_problems_without_a_traceback(tmp_path, capsys):
    assert label_main([str(tmp_path / "missing")]) == 2
    assert "prefrl label: error: there is no run directory" in capsys.readouterr().err


def test_run_status_tells_a_live_run_from_a_stopped_or_dead_one(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 0, running=True)
    info = open_run(run.path)
    now = time.time()
    live = read_state(info, now=now)
    assert live.live and live.known and not live.stale and live.status.labels_total == 12
    dead = read_state(info, now=now + STATUS_STALE_S + 1)  # "running", but long unchanged
    assert dead.stale and not dead.live
    write_status(run, running=False)
    assert not read_state(info).live
    run.status_path.unlink()
    starting = read_state(info)  # config.json just written, no status.json yet
    assert starting.live and not starting.known
    assert not read_state(info, now=now + START_GRACE_S + 1).live


def test_the_reward_trainer_drops_an_undone_label_and_takes_its_new_answer(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 4, labels=4)
    with PreferenceStore(run.store_path) as store:
        for qid, answer in zip(
            (1, 2, 3, 4), (Answer.LEFT, Answer.RIGHT, Answer.LEFT, Answer.EQUAL), strict=True
        ):
            store.record_answer(qid, answer, oracle="human")
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    trainer = RewardTrainerRole(config, run.path, LocalWeights(), LocalStatus())
    try:
        assert trainer.step() and trainer.trainer.pairs.keys == [1, 2, 3, 4]
        with PreferenceStore(run.store_path) as store:
            store.undo_answer(2)
        assert trainer.step()  # a change: trains again without the label
        assert trainer.trainer.pairs.keys == [1, 3, 4] and trainer.last_metrics["reward/labels"] == 3
        with PreferenceStore(run.store_path) as store:
            store.record_answer(2, Answer.LEFT, oracle="human")  # answered anew, the other way
            store.undo_answer(4)
            store.record_answer(4, Answer.CANT_TELL, oracle="human")  # not trained on
        assert trainer.step()
        assert sorted(trainer.trainer.pairs.keys) == [1, 2, 3] and trainer.known[2] == 1.0
        assert trainer.trainer.pairs.mu[trainer.trainer.pairs.keys.index(2)] == 1.0
    finally:
        trainer.close()
