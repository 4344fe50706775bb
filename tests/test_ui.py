"""The human labelling path: the real pygame window (SDL's dummy driver), driven by a
scripted person who presses the keys a behaviour oracle chooses, on clips of real
Pendulum-v1 rollouts."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pygame
import pytest
import torch

from prefrl.cli import main as cli_main
from prefrl.errors import EXIT_USAGE
from prefrl.oracles import PerfectOracle
from prefrl.prefs.clips import Answer
from prefrl.prefs.store import PreferenceStore
from prefrl.render.frames import SnapshotRenderer
from prefrl.render.pair import compose_pair, pad_clip, write_pair_video
from prefrl.rundir import RunDir, mark_stopped_if_dead, pid_alive, read_window, window_open, write_json
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
from prefrl.ui.cli import EVENTS_ENV
from prefrl.ui.cli import main as label_main
from prefrl.ui.keys import KEY_GROUPS
from prefrl.ui.layout import compute_layout, pack_rows, wrap_text
from prefrl.ui.render_ahead import _make_renderer, frame_stride_for
from prefrl.ui.run_info import GONE_AFTER_S, START_GRACE_S, STATUS_STALE_S, read_state
from prefrl.ui.screen import Control, Screen
from prefrl.ui.scripted import ScriptedPerson, collect_clips, make_human_run
from prefrl.ui.status_line import status_line
from prefrl.ui.view import _group_gap
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


def make_run(path, clips, num_queries, *, labels=12, running=False, agent_step=2048, oracle="human"):
    """A human-labelled run directory with ``num_queries`` pending queries (asked of
    ``oracle``)."""
    run = make_human_run(path, ENV, labels=labels, **SMALL)
    with PreferenceStore(run.store_path) as store:
        for k in range(num_queries):
            store.add_query(
                clips[2 * k], clips[2 * k + 1], agent_step=agent_step, oracle=oracle, selection="random"
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


def first_rendered(ahead, timeout=60.0):
    """The pairs of the first poll of ``ahead`` that returns any (waits up to ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    done = []
    while not done and time.monotonic() < deadline:
        done = ahead.poll()
        time.sleep(0.01)
    return done


@pytest.mark.parametrize("own_file", [False, True])
def test_render_ahead_process_renders_a_behaviour_task_s_clips(tmp_path, monkeypatch, own_file):
    from test_tasks import write_task_file

    from prefrl import tasks
    from prefrl.ui.scripted import collect_clips

    # the render process is a fresh interpreter: a task's env id exists there only once the
    # task (built in, or from a file the user trusts) is registered in it
    name = "spin"
    if own_file:
        monkeypatch.setenv(tasks.TRUSTED_TASK_FILES_ENV, "")
        path = write_task_file(tmp_path, "leanrender")
        tasks.trust_task_file(path)
        name = f"{path}:leanrender"
    gym_id = tasks.get_task(name).gym_id
    task_clips = collect_clips(gym_id, 2, 10, fixed_length=True)
    with RenderAhead(gym_id, True, backend="process", task=name) as ahead:
        ahead.submit(1, task_clips[0].snapshots, task_clips[1].snapshots)
        (pair,) = first_rendered(ahead)
    assert pair.query_id == 1 and pair.left.shape[0] == 10


def test_render_ahead_process_frames_are_the_snapshots_frames(clips):
    renderer = SnapshotRenderer(ENV)
    expected = renderer.render(clips[2].snapshots), renderer.render(clips[3].snapshots)
    renderer.close()
    with RenderAhead(ENV, backend="process") as ahead:
        ahead.submit(7, clips[2].snapshots, clips[3].snapshots)
        assert ahead.in_flight == {7}
        (pair,) = first_rendered(ahead)
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


def test_the_last_answer_of_the_budget_can_be_taken_back_on_the_final_screen(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 2, labels=2, running=True)
    person = ScriptedPerson(run.store_path, PerfectOracle())
    undone = []

    def answer_then_undo_the_last(event):
        person(event)
        if event.kind == "answered" and len(person.answered) == 2 and not undone:
            undone.append(event.query_id)
            post_key(pygame.K_BACKSPACE)  # pressed as "All 2 labels are given" appears

    try:
        given = run_labeling(run.path, on_event=answer_then_undo_the_last, finish_linger_s=2.0)
    finally:
        person.close()
    assert undone == [2] and given == 2
    assert [e.query_id for e in person.shown] == [1, 2, 2]  # shown again, answered again
    assert len(stored_answers(run)) == 2 and pending_ids(run) == []
    with PreferenceStore(run.store_path) as store:
        assert [qid for qid, _, _ in store.undone_answers()] == [2]


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


def test_an_answer_given_while_the_labeler_counts_never_asks_past_the_budget(tmp_path, clips):
    """The person answers the last waiting query just after the labeler has counted the
    answers: the labeler must not take that query for answered and gone at once."""
    run = make_human_run(tmp_path / "run", ENV, labels=2, **SMALL)
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    queue = LocalClipQueue()
    queue.put(ClipBatch(list(clips), agent_step=config.steps, final=True))  # the whole budget is due
    role = LabelerRole(config, run.path, queue, LocalWeights(), LocalStatus())
    try:
        role.step()  # asks the budget's 2
        first, second = role.store.pending_queries()
        role.store.record_answer(first.query_id, Answer.LEFT, oracle="person")
        counted = role.store.num_answered

        def counted_then_answered():
            number = counted()
            role.store.record_answer(second.query_id, Answer.RIGHT, oracle="person")  # the person, meanwhile
            return number

        role.store.num_answered = counted_then_answered
        role.step()
        role.store.num_answered = counted
        assert role.store.pending_queries() == [] and role.store.num_answered() == 2
        assert len(role.store.labels()) == 2  # no third query
    finally:
        role.close()


def test_query_videos_follow_a_person_answering_out_of_order(tmp_path, clips):
    """Every answer gets its query video, also one to a query older than the newest answered
    (an undone answer given again, a second window)."""
    run = make_human_run(tmp_path / "run", ENV, labels=3, query_videos=True, **SMALL)
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    queue = LocalClipQueue()
    queue.put(ClipBatch(list(clips), agent_step=config.steps, final=True))
    role = LabelerRole(config, run.path, queue, LocalWeights(), LocalStatus())
    try:
        role.step()  # asks the budget's 3
        first, _, third = role.store.pending_queries()
        role.store.record_answer(third.query_id, Answer.LEFT, oracle="person")
        role.step()
        role.store.record_answer(first.query_id, Answer.RIGHT, oracle="person")
        role.step()
        videos = sorted(path.name for path in run.videos.glob("query_*.mp4"))
        assert videos == [f"query_{first.query_id:05d}.mp4", f"query_{third.query_id:05d}.mp4"]
    finally:
        role.close()


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


def test_questions_imported_from_a_synthetic_run_are_asked_of_the_person(tmp_path, clips):
    """Queries left open in a synthetic run's store (killed mid-question) and imported into
    a person's run: the person is the run's only oracle, and its labeler counts them in its
    queue of 3, so they are shown to the person, and new ones follow once answered."""
    run = make_run(tmp_path / "run", clips, 3, labels=6, running=True, agent_step=4096, oracle="perfect")
    config = TrainConfig.from_dict(json.loads(run.config_path.read_text()))
    queue = LocalClipQueue()
    queue.put(ClipBatch(list(clips[6:]), agent_step=config.steps, final=True))  # the whole budget is due
    role = LabelerRole(config, run.path, queue, LocalWeights(), LocalStatus())
    person = ScriptedPerson(run.store_path, PerfectOracle())
    try:
        role.step()
        assert pending_ids(run) == [1, 2, 3]  # the queue is full
        assert run_labeling(run.path, max_answers=3, on_event=person, finish_linger_s=0) == 3
        assert [shown.query_id for shown in person.shown] == [1, 2, 3]
        assert {oracle for _, oracle, _ in stored_answers(run).values()} == {"human"}
        role.step()
        assert pending_ids(run) == [4, 5, 6]
    finally:
        person.close()
        role.close()


def test_the_window_asks_no_question_past_the_budget(tmp_path, clips):
    """An import brought more open questions than the budget has left: the person is asked
    the oldest the budget allows, and the run then has nothing more to label."""
    run = make_run(tmp_path / "run", clips, 3, labels=2, running=True, agent_step=4096, oracle="perfect")
    person = ScriptedPerson(run.store_path, PerfectOracle())
    try:
        assert run_labeling(run.path, on_event=person, finish_linger_s=0) == 2
    finally:
        person.close()
    assert [shown.query_id for shown in person.shown] == [1, 2]
    assert pending_ids(run) == [3]
    with pytest.raises(NothingToLabelError, match="all 2 labels of its budget are given"):
        run_labeling(run.path)


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


def test_run_directories_that_cannot_be_labelled(tmp_path, clips, capsys):
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

    finished = make_run(tmp_path / "finished", clips, 0, running=False, agent_step=4096)
    with pytest.raises(NothingToLabelError) as err:
        run_labeling(finished.path)
    assert str(err.value) == (
        f"nothing to label in {finished.path}: the run has finished and no question waits for an answer "
        f"(0 of 12 labels given). Continue it with `prefrl resume {finished.path}`, then label it with "
        f"`prefrl label {finished.path}`."
    )
    spent = make_run(tmp_path / "spent", clips, 2, labels=2, running=True)
    with PreferenceStore(spent.store_path) as store:
        for query in store.pending_queries():
            store.record_answer(query.query_id, Answer.LEFT, oracle="human")
    with pytest.raises(NothingToLabelError, match="all 2 labels"):
        run_labeling(spent.path)
    assert open_run(spent.path).instruction == instruction_for(ENV)
    for run in (finished, spent):  # prefrl label: the message in one line, no traceback
        assert cli_main(["label", str(run.path)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert (
            err.startswith(f"prefrl label: error: nothing to label in {run.path}: ") and err.count("\n") == 1
        )


def as_a_user_without_write_access(argv):
    """``argv`` as run by a user who may not write what this one chmod'ed read-only (as
    root: with the capabilities that override file permissions dropped)."""
    if os.geteuid() != 0:
        return argv
    drop = "-dac_override,-dac_read_search,-fowner"
    return ["setpriv", "--inh-caps=-all", f"--bounding-set={drop}", *argv]


def test_a_run_this_user_may_not_write_is_refused_before_any_answer(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 2)
    for path in (run.path, *run.path.iterdir()):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        done = subprocess.run(
            as_a_user_without_write_access([sys.executable, "-m", "prefrl.cli", "label", str(run.path)]),
            env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for path in (run.path, *run.path.iterdir()):
            path.chmod(path.stat().st_mode | 0o200)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stderr == (
        f"prefrl label: error: cannot label {run.path}: this user may not write {run.store_path} (the run's "
        "answers and its store's journal are written there), so no answer could be saved. Label it as the "
        "run's owner, or give this user write access to the run directory\n"
    )
    assert pending_ids(run) == [1, 2]


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


def test_a_run_killed_without_a_word_is_seen_stopped_at_once_by_its_lock(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 0, running=True)
    info = open_run(run.path)
    assert read_state(info).live  # no run.lock: a run of an older prefrl, judged by the time alone
    holder = subprocess.Popen(  # the process running the run holds its lock
        [
            sys.executable,
            "-c",
            "import sys, time; from prefrl.utils.locking import exclusive\n"
            "with exclusive(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(run.path / "run.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    later = time.time() + GONE_AFTER_S + 1  # status.json not rewritten since: a heartbeat or more missed
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert read_state(info).live and read_state(info, now=later).live  # the lock says it runs
        holder.kill()  # kill -9 of the run: status.json still says running
        holder.wait(10)
        assert read_state(info).live  # just written: a run on another host may hold a lock not seen here
        gone = read_state(info, now=later)
        assert gone.gone and gone.stale and not gone.live
        assert "Run stopped unexpectedly (its process is gone)" in status_line(gone, 0, info)
        # prefrl label, resume or play found it so and rewrote status.json: still said so
        assert mark_stopped_if_dead(run.path)
        marked = read_state(info)
        assert marked.gone and not marked.live and not read_state(info, now=later).live
        assert "Run stopped unexpectedly (its process is gone)" in status_line(marked, 0, info)
    finally:
        if holder.poll() is None:
            holder.kill()


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


# ------------------------------------------------------------------------ layout


def test_clips_fill_a_large_window_and_keep_their_aspect_ratio():
    lay = compute_layout(1600, 1000, (500, 500))
    left, right = lay.cells
    assert left.size == right.size and left.width == left.height  # square frames stay square
    assert left.width > 650 and not lay.nearest  # scaled up (1.4x), smoothly
    assert left.top >= lay.header_bottom and left.right < right.left
    assert lay.keys_y + lay.key_row_h <= 1000 and right.right <= 1600
    atari = compute_layout(1280, 720, (160, 210))
    assert atari.nearest and atari.scale == int(atari.scale) >= 2  # crisp pixels, a whole factor
    assert atari.cells[0].size == (160 * atari.scale, 210 * atari.scale)
    wide = compute_layout(1280, 720, (600, 400))  # CartPole's frames
    assert wide.cells[0].width / wide.cells[0].height == pytest.approx(1.5, abs=0.01)
    small = compute_layout(400, 300, (500, 500))
    assert small.cells[0].width < 500 and small.cells[1].right <= 400  # scaled down to fit


def test_text_wraps_at_the_status_separator_then_between_words():
    measure = lambda text: 10 * len(text)  # noqa: E731
    status = "Labels 7 given     ·     Agent 8,192 env steps     ·     Reward model v5"
    assert wrap_text(status, 800, measure) == [status]
    assert wrap_text(status, 300, measure) == ["Labels 7 given", "Agent 8,192 env steps", "Reward model v5"]
    question = "Which pendulum is spinning counter-clockwise more?"
    lines = wrap_text(question, 200, measure)
    assert " ".join(lines) == question and all(measure(line) <= 200 for line in lines)
    assert wrap_text("counter-clockwise-a-lot", 50, measure) == ["counter-clockwise-a-lot"]  # one long word
    assert pack_rows([40, 40, 40, 90, 10], 100, 10) == [[0, 1], [2], [3], [4]]


def test_a_narrow_window_shows_the_whole_question_status_and_keys():
    from prefrl.ui.view import LabelingView

    view = LabelingView((500, 900), "test")
    try:
        question = "Which cart keeps its pole up on the right side of the track?"
        status = (
            "Labels 7 given / 13 wanted now (budget 20)     ·     Agent 8,192 / 20,000 env steps"
            "     ·     Reward model v5     ·     Window 2: 7 labels, 3.5/min, budget in ~4 min"
        )
        frame = np.full((500, 500, 3), 90, np.uint8)
        view.draw(screen_of(question, status, frame, paused=True, toast="Saved: left is better"), 0.0)
        lay = view.layout
        assert len(view._lines["question"]) >= 2 and len(view._lines["status"]) >= 3
        for key, size in (("question", lay.title_size), ("status", lay.text_size)):
            font = view._font(size, key == "question")
            assert all(font.size(line)[0] <= 500 for line in view._lines[key])
        assert " ".join(view._lines["question"]) == question
        assert lay.cells[0].top >= lay.header_bottom and lay.cells[1].right <= 500
        rows = view._key_rows(500, lay.text_size)
        assert len(rows) >= 2 and lay.keys_y + len(rows) * lay.key_row_h <= 900
        gap = _group_gap(lay.text_size)
        for row in rows:  # each row of key hints within the window, margins kept
            widths = [view._group_width(KEY_GROUPS[i], lay.text_size) for i in row]
            assert sum(widths) + gap * (len(row) - 1) <= 500 - 2 * 10
        # "Paused" and the toast are in the header: the clips show their frames, nothing over them
        pixels = pygame.surfarray.pixels3d(view.screen)
        for cell in lay.cells:
            region = pixels[cell.left : cell.right, cell.top : cell.bottom]
            assert (region == region[0, 0]).all() and abs(int(region[0, 0, 0]) - 90) <= 3
        del pixels
        # a click on a clip answers for it, anywhere else nothing
        click = lambda pos, button=1: pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=button)  # noqa: E731
        left, right = lay.cells
        assert view.inputs([click(left.center), click(right.center), click((250, 5))]) == [
            Answer.LEFT,
            Answer.RIGHT,
        ]
        assert view.inputs([click(left.center, button=3)]) == []
        post_key(pygame.K_BACKSPACE)
        post_key(pygame.K_z)
        assert view.inputs(view.wait(0)) == [Control.UNDO, Control.UNDO]
    finally:
        view.close()


def screen_of(question, status, frame, *, paused=False, toast=None):
    return Screen(
        question=question,
        status=status,
        toast=toast,
        query_id=1,
        frames=(frame, frame),
        frame_index=(0, 0),
        played=0.5,
        paused=paused,
        presented=True,
        waiting=None,
        finished=None,
        next_change=1.0,
        answers_open=False,
        view_progress=0.3,
    )


# ------------------------------------------------------------------------ the display


def test_a_display_without_an_x_server_is_refused_and_a_chosen_driver_respected(tmp_path, monkeypatch):
    from prefrl.ui.display import check_display
    from prefrl.ui.view import _open_display

    monkeypatch.setattr("prefrl.render.frames.USER_SDL_VIDEODRIVER", None)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":987")
    with pytest.raises(NoDisplayError, match=r"DISPLAY=:987: no X server answers") as err:
        check_display()
    assert "Xvfb :99" in str(err.value)
    monkeypatch.setenv("DISPLAY", "localhost:987.0")
    with pytest.raises(NoDisplayError, match="no X server answers on localhost, port 6987"):
        check_display()
    monkeypatch.setenv("DISPLAY", "nonsense")
    with pytest.raises(NoDisplayError, match="not a display name"):
        check_display()
    # SDL falling back to a driver that shows nothing is refused too (this process's
    # SDL_VIDEODRIVER=dummy stands for that fallback: prefrl is told nobody chose it)
    monkeypatch.setattr("prefrl.ui.view.check_display", lambda: None)
    with pytest.raises(NoDisplayError, match="fell back to its dummy driver"):
        _open_display((300, 300), "test")
    # a driver the user set explicitly is theirs to choose
    monkeypatch.setattr("prefrl.render.frames.USER_SDL_VIDEODRIVER", "dummy")
    monkeypatch.undo()
    monkeypatch.setattr("prefrl.render.frames.USER_SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("DISPLAY", ":987")
    check_display()
    pygame.display.quit()


def test_opening_the_window_runs_no_python_code_that_would_lose_a_ctrl_c(monkeypatch):
    # pygame's set_mode loads its default icon through Python code (pygame.pkgdata) and
    # drops an exception raised there: a Ctrl-C arriving then was lost
    import pygame.pkgdata

    from prefrl.ui.view import _open_display

    called = []

    def interrupted(*args):
        called.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(pygame.pkgdata, "getResource", interrupted)
    monkeypatch.setattr("prefrl.ui.view.check_display", lambda: None)
    try:
        assert _open_display((300, 200), "test").get_size() == (300, 200)
    finally:
        pygame.display.quit()
    assert called == []


def test_prefrl_label_refuses_a_display_nobody_answers_on(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 1)
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":987"
    done = subprocess.run(
        [sys.executable, "-m", "prefrl.ui", str(run.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "needs a display" in done.stderr and "DISPLAY=:987: no X server answers" in done.stderr
    assert pending_ids(run) == [1]
    assert not (run.path / "window.json").exists()


# ------------------------------------------------------------------------ no process left behind


def children_of(pid):
    """Processes whose parent is ``pid`` (from /proc), zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] not in ("Z", "X") and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def in_group(pgid):
    """The processes of process group ``pgid`` (a new session's: every process it started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return members


def wait_gone(pids, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def start_window_process(run, events_path):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", EVENTS_ENV: str(events_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl.ui", str(run.path), "--min-view", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if events_path.exists() and '"shown"' in events_path.read_text():
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the window showed no pair within 60 s")


def window_starting(run, stderr=subprocess.DEVNULL, **popen):
    """``python -m prefrl.ui RUN`` (no display), returned as soon as it has a render process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefrl.ui", str(run.path), "--min-view", "0"],
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        **popen,
    )
    deadline = time.monotonic() + 60
    # the render process, not the resource tracker started before it (nor any other child)
    while not any(b"spawn_main" in cmdline(c) for c in children_of(proc.pid)):
        assert proc.poll() is None, (
            f"the window ended before it started its render process: {proc.communicate()}"
        )
        assert time.monotonic() < deadline, "the window started no render process within 60 s"
        time.sleep(0.005)
    return proc


def test_no_process_outlives_a_window_killed_while_it_starts(tmp_path, clips):
    # killed at random moments of its first second: the render process may not have
    # finished starting (a window killed before it read its parent's pid left it running)
    run = make_run(tmp_path / "run", clips, 4)
    rng = np.random.default_rng()
    for _ in range(4):
        proc = window_starting(run)
        try:
            time.sleep(rng.uniform(0.0, 1.0))
            family = children_of(proc.pid)
            family += [g for c in family for g in children_of(c)]
            assert family, "the window started no render process"
            proc.kill()
            proc.wait(15)
            assert wait_gone(family) == [], f"left behind: {[cmdline(p) for p in family if pid_alive(p)]}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert pending_ids(run) == [1, 2, 3, 4]


def test_ctrl_c_while_the_window_starts_is_one_line_and_leaves_no_process(tmp_path, clips):
    # Ctrl-C reaches the terminal's whole process group: the render process too, which
    # may still be starting its interpreter (it printed "Fatal Python error" there)
    run = make_run(tmp_path / "run", clips, 4)
    rng = np.random.default_rng()
    for _ in range(4):
        # a process group of its own, as a terminal's foreground job
        proc = window_starting(run, stderr=subprocess.PIPE, start_new_session=True)
        try:
            time.sleep(rng.uniform(0.0, 0.5))
            family = children_of(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            assert err.splitlines() == ["prefrl label: interrupted; the pair on screen stays pending"], err
            assert wait_gone(family) == [], f"left behind: {[cmdline(p) for p in family if pid_alive(p)]}"
            # and any it had started since (the render process may have started after `family`)
            group = in_group(proc.pid)
            assert wait_gone(group) == [], f"left behind: {[cmdline(p) for p in group if pid_alive(p)]}"
            assert not list(Path("/dev/shm").glob(f"prefrl{proc.pid}_*"))  # every frame block freed
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert pending_ids(run) == [1, 2, 3, 4]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGHUP])
def test_no_process_outlives_a_window_killed_from_outside(tmp_path, clips, sig):
    run = make_run(tmp_path / "run", clips, 4)
    proc = start_window_process(run, tmp_path / "events.jsonl")
    try:
        children = children_of(proc.pid)
        assert children, "the window started no render process"
        assert window_open(run.path)
        proc.send_signal(sig)
        proc.wait(15)
        assert wait_gone(children) == [], f"left behind after {sig.name}: {children}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig)
    assert pending_ids(run) == [1, 2, 3, 4]
    if sig != signal.SIGKILL:
        assert not window_open(run.path) and read_window(run.path)["open"] is False
    else:
        assert not window_open(run.path)  # its pid is gone


def test_a_ctrl_c_while_the_render_process_starts_stops_it(monkeypatch):
    from multiprocessing.context import SpawnProcess

    real_start = SpawnProcess.start
    before = set(children_of(os.getpid()))
    started = set()

    def start(self):
        # Ctrl-C, half-way through starting it: held until it has started (a start cut
        # part-way can leave a process multiprocessing does not know of), then it is stopped
        os.kill(os.getpid(), signal.SIGINT)
        try:
            real_start(self)
        finally:
            started.update(set(children_of(os.getpid())) - before)

    monkeypatch.setattr(SpawnProcess, "start", start)
    with pytest.raises(KeyboardInterrupt):
        RenderAhead(ENV)
    started = {pid for pid in started if b"resource_tracker" not in cmdline(pid)}
    assert started and wait_gone(started, 10) == []


TRACKER_KILLED = (
    "import signal, time\n"
    "from multiprocessing import resource_tracker\n"
    "resource_tracker.ensure_running()\n"
    "os.kill(resource_tracker._resource_tracker._pid, signal.SIGKILL)\n"
    "time.sleep(0.5)\n"
)


@pytest.mark.parametrize("before", ["", TRACKER_KILLED], ids=["fresh", "tracker-killed"])
def test_a_process_starts_its_render_process_with_ctrl_c_blocked(before):
    # multiprocessing's resource tracker, started by the first queue of a fresh process
    # (or again, once it has died), unblocks SIGINT once it has started: the render
    # process must still inherit it blocked, or a terminal's Ctrl-C can kill it while its
    # interpreter starts
    script = (
        "import os\n" + before + "from prefrl.ui.render_ahead import RenderAhead\n"
        f"with RenderAhead({ENV!r}) as r:\n"
        "    status = open(f'/proc/{r._proc.pid}/status').read()\n"
        "    own = open(f'/proc/self/task/{os.getpid()}/status').read()\n"
        "    print(*(int(line.split()[1], 16) for s in (status, own) "
        "for line in s.splitlines() if line.startswith('SigBlk:')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    child, own = map(int, out.stdout.split())
    sigint = 1 << (signal.SIGINT - 1)
    assert child & sigint, "the render process started with SIGINT unblocked"
    assert not own & sigint, "the window's thread was left with SIGINT blocked"


def test_closing_the_window_stops_its_render_process(tmp_path, clips):
    run = make_run(tmp_path / "run", clips, 2)
    seen = []

    def close_on_first_pair(event):
        if event.kind == "shown":
            seen.append(children_of(os.getpid()))
            pygame.event.post(pygame.event.Event(pygame.QUIT))  # the window manager's close

    before = set(children_of(os.getpid()))
    assert run_labeling(run.path, on_event=close_on_first_pair, finish_linger_s=0) == 0
    started = {pid for pid in set(seen[0]) - before if b"resource_tracker" not in cmdline(pid)}
    # (this test process's resource tracker lives as long as the process: not the window's)
    assert started and wait_gone(started, 5) == []
    assert read_window(run.path)["open"] is False and read_window(run.path)["sessions"] == 1
