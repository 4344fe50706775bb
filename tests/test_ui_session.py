"""The labelling session without a window: a real preference store, a fake renderer that
renders when told to, and inputs in plain terms. No pygame, no display, no env."""

import dataclasses
import json
import math
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

import prefrl.ui.session as session_module
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.store import PreferenceStore, StoreError
from prefrl.rundir import RunDir, mark_stopped_if_dead, read_run_status, read_window, window_open, write_json
from prefrl.status import RunStatus
from prefrl.ui.heartbeat import WindowHeartbeat
from prefrl.ui.playback import LOOP_HOLD_S, Playback
from prefrl.ui.render_ahead import RenderedPair
from prefrl.ui.run_info import LabelingRun, RunState
from prefrl.ui.screen import Control
from prefrl.ui.session import RENDER_AHEAD, LabelingSession
from prefrl.ui.status_line import pace_line, status_line

ENV = "Pendulum-v1"
FPS = 10.0
QUESTION = "Which clip shows the better behaviour?"


def clip(length: int) -> Clip:
    return Clip(
        obs=np.zeros((length, 3), np.float32),
        actions=np.zeros((length, 1), np.float32),
        true_rewards=np.zeros(length, np.float32),
        snapshots=np.zeros((length, 3)),
        env_id=ENV,
    )


class FakeRenderer:
    """Renders a pair when :meth:`finish` says so; frame ``i`` of a clip is all ``i``."""

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.submitted: list[int] = []
        self._lengths: dict[int, tuple[int, int]] = {}
        self._done: list[RenderedPair] = []
        self.closed = False

    def submit(self, query_id: int, left_snapshots: np.ndarray, right_snapshots: np.ndarray) -> None:
        self.in_flight.add(query_id)
        self.submitted.append(query_id)
        self._lengths[query_id] = (len(left_snapshots), len(right_snapshots))

    def finish(self, *query_ids: int) -> None:
        for qid in query_ids or sorted(self.in_flight):
            left, right = (
                np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(4, 1).repeat(6, 2).repeat(3, 3)
                for n in self._lengths[qid]
            )
            self._done.append(RenderedPair(qid, left, right, FPS, 1, (0.1, 0.2)))

    def poll(self) -> list[RenderedPair]:
        done, self._done = self._done, []
        for pair in done:
            self.in_flight.discard(pair.query_id)
        return done

    def close(self) -> None:
        self.closed = True


class Clock:
    """``perf_counter`` stand-in: each call of :meth:`next` is a second later (every poll is due)."""

    def __init__(self) -> None:
        self.now = 100.0

    def next(self, dt: float = 1.0) -> float:
        self.now += dt
        return self.now


def make_run(tmp_path, lengths=((20, 20), (20, 20), (20, 20)), *, budget=12, running=True, store=True):
    """A run directory with a store holding a pending human query per ``(left, right)`` length."""
    run = LabelingRun(tmp_path, ENV, False, budget, 4096, QUESTION)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "train", "env_id": ENV, "oracle": "human"}))
    if store:
        with PreferenceStore(run.store_path, env_id=ENV) as s:
            for left, right in lengths:
                s.add_query(clip(left), clip(right), agent_step=2048, oracle="human", selection="random")
    write_status(run, running=running)
    return run


def write_status(
    run: LabelingRun, *, running: bool, agent_step: int = 2048, wanted: int = 6, **fields
) -> None:
    status = RunStatus(
        running=running,
        agent_step=agent_step,
        total_steps=4096,
        labels_answered=0,
        labels_wanted=wanted,
        labels_total=run.budget,
        reward_version=0,
        updated_at=time.time(),
        pid=12345,
        role_pids={},
    )
    write_json(run.status_path, {**status.to_dict(), **fields})


def stored(run: LabelingRun) -> dict[int, tuple[Answer, str, float | None]]:
    """``{query_id: (answer, oracle, response_time)}`` straight from the SQLite file."""
    conn = sqlite3.connect(f"file:{run.store_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT query_id, answer, oracle, response_time FROM answers").fetchall()
    finally:
        conn.close()
    return {qid: (Answer(answer), oracle, rt) for qid, answer, oracle, rt in rows}


@pytest.fixture
def events():
    return []


def start(run, events, min_view_s=0.0, **kwargs):
    """A session on ``run`` with a fake renderer; answers count at once unless ``min_view_s``
    says otherwise (None: the default, one play of the shorter clip)."""
    renderer = FakeRenderer()
    session = LabelingSession(run, renderer, on_event=events.append, min_view_s=min_view_s, **kwargs)
    return session, renderer


def on_screen(run, events):
    """A session whose first pair has been rendered and shown, at t = 1 s."""
    session, renderer = start(run, events)
    session.tick(0.0)
    renderer.finish()
    session.tick(1.0)
    session.presented(1.0)
    return session, renderer


# ------------------------------------------------------------------------- answers


def test_answers_land_in_the_store_for_the_pair_on_screen(tmp_path, events):
    run = make_run(tmp_path, [(20, 20), (15, 20), (20, 10), (20, 20)])
    session, renderer = start(run, events)
    clock = Clock()
    session.tick(clock.next())
    assert renderer.submitted == [1, 2, 3]  # oldest first, RENDER_AHEAD of them
    assert session.screen(clock.now).waiting == "Rendering the next clips..."
    renderer.finish()
    session.tick(clock.next())
    assert session.pair is not None and session.pair.query_id == 1
    assert not session.screen(clock.now).presented

    session.handle([Answer.LEFT], clock.next())  # pressed before the pair was on screen
    session.commit()
    assert stored(run) == {} and session.pair.query_id == 1

    shown_at = clock.next()
    session.presented(shown_at)
    assert renderer.submitted == [1, 2, 3, 4]  # the one on screen no longer counts
    key_time = clock.next(2.5)
    session.handle([Answer.RIGHT, Answer.LEFT], key_time)  # the second was meant for the next pair
    assert session.pair.query_id == 2 and not session.screen(key_time).presented  # taken at once
    assert stored(run) == {}  # written by commit, after the next pair is on screen
    session.presented(clock.next())
    session.commit()
    assert stored(run) == {1: (Answer.RIGHT, "human", pytest.approx(2.5))}
    assert session.screen(clock.now).toast == "Saved: right is better"

    for answer in (Answer.EQUAL, Answer.CANT_TELL):
        session.handle([answer], clock.next())
        session.tick(clock.next())
        session.presented(clock.next())
    renderer.finish()
    session.tick(clock.next())
    session.presented(clock.next())
    session.handle([Answer.LEFT], clock.next())
    session.tick(clock.next())
    answers = {qid: a for qid, (a, _, _) in stored(run).items()}
    assert answers == {1: Answer.RIGHT, 2: Answer.EQUAL, 3: Answer.CANT_TELL, 4: Answer.LEFT}
    assert session.answers == 4 and session.answered_total == 4
    assert [(e.kind, e.query_id) for e in events if e.kind != "open"] == [
        ("shown", 1), ("shown", 2), ("answered", 1), ("answered", 2), ("shown", 3),
        ("answered", 3), ("shown", 4), ("answered", 4),
    ]  # fmt: skip
    assert [e.query_id for e in events if e.kind == "open"] == [1, 2, 3, 4]  # at once: no minimum
    answered = [e for e in events if e.kind == "answered"]
    assert answered[0].key_time == key_time and answered[0].answer == Answer.RIGHT
    assert answered[0].ready == 2  # pairs 2 and 3 were ready as the key was handled
    assert events[0].render_s == (0.1, 0.2)
    # nothing pending, the run still running: the window waits for more
    assert session.finished is None
    assert session.screen(clock.now).waiting == "Waiting for the agent's next clips..."
    session.close()
    assert renderer.closed and session.store is None


def test_replay_and_pause_never_answer_and_quit_closes(tmp_path, events):
    run = make_run(tmp_path)
    session, _ = on_screen(run, events)
    session.handle([Control.PAUSE], 1.35)
    assert session.screen(9.0).frame_index == (3, 3) and session.screen(9.0).paused
    assert session.screen(9.0).next_change == math.inf
    session.handle([Control.REPLAY], 10.0)  # from the start, playing
    assert session.screen(10.0).frame_index == (0, 0) and not session.screen(10.0).paused
    session.handle([Control.QUIT, Answer.LEFT], 10.5)  # nothing after quitting counts
    session.commit()
    assert session.closing and stored(run) == {}
    session.close()
    with PreferenceStore(run.store_path) as s:
        assert [q.query_id for q in s.pending_queries()] == [1, 2, 3]  # all still pending


def test_max_answers_closes_after_the_last_one_is_written(tmp_path, events):
    run = make_run(tmp_path)
    session, renderer = start(run, events, max_answers=2)
    clock = Clock()
    session.tick(clock.next())
    renderer.finish()
    for _ in range(2):
        assert not session.closing
        session.tick(clock.next())
        session.presented(clock.next())
        session.handle([Answer.LEFT], clock.next())
        session.commit()
    assert session.closing and session.answers == 2 and len(stored(run)) == 2


def test_a_pair_answered_in_another_window_goes_away(tmp_path, events):
    run = make_run(tmp_path)
    session, renderer = start(run, events)
    clock = Clock()
    session.tick(clock.next())
    renderer.finish()
    session.tick(clock.next())
    session.presented(clock.next())
    with PreferenceStore(run.store_path) as other:
        other.record_answer(1, Answer.LEFT, oracle="human")
        other.record_answer(2, Answer.LEFT, oracle="human")
    session.handle([Answer.RIGHT], clock.next())  # too late: not saved, and said so
    session.commit()
    assert session.toast is not None and session.toast[0].startswith("Not saved")
    assert stored(run)[1][0] == Answer.LEFT and session.answers == 0
    session.tick(clock.next())  # pair 2 was taken, then the poll finds it answered too
    assert session.toast is not None and session.toast[0] == "Query 2 was answered elsewhere"
    assert session.pair is not None and session.pair.query_id == 3
    assert session.answered_total == 2


def test_close_writes_an_answer_not_yet_committed(tmp_path, events):
    run = make_run(tmp_path)
    session, _ = on_screen(run, events)
    session.handle([Answer.EQUAL], 2.0)
    session.close()
    assert stored(run) == {1: (Answer.EQUAL, "human", pytest.approx(1.0))}


def test_answers_wait_while_the_store_is_busy_and_are_written_once_it_is_free(tmp_path, events, monkeypatch):
    monkeypatch.setattr(session_module, "BUSY_TIMEOUT_S", 0.2)  # closing waits 0.2 s, not 30
    run = make_run(tmp_path)
    session, renderer = on_screen(run, events)
    # the window's writes give up after WRITE_WAIT_S, where the run's roles wait 30 s
    assert session.store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    holder = sqlite3.connect(run.store_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock (hung mid-write)
    session.handle([Answer.LEFT], 2.0)
    session.commit()
    assert stored(run) == {} and session.answers == 0
    assert session.toast is not None and session.toast[0].startswith("Not saved yet (database is locked)")
    session.tick(3.0)  # tried again, still busy: kept
    holder.execute("COMMIT")
    session.tick(4.0)
    assert stored(run) == {1: (Answer.LEFT, "human", pytest.approx(1.0))} and session.answers == 1
    renderer.finish()
    session.tick(5.0)
    session.presented(5.0)
    holder.execute("BEGIN IMMEDIATE")
    session.handle([Answer.RIGHT], 6.0)
    with pytest.raises(
        StoreError,
        match=r"1 answer\(s\) given in this window could not be saved: the run's store stayed busy \(database is locked\)\. Their pairs are still unanswered\. Label them again with: prefrl label ",
    ):
        session.close()  # told, not lost in silence: the pair is still unanswered in the store
    holder.execute("ROLLBACK")
    holder.close()
    assert list(stored(run)) == [1]


def test_a_pair_answered_while_the_store_is_busy_is_not_asked_again(tmp_path, events):
    run = make_run(tmp_path)
    session, renderer = on_screen(run, events)
    holder = sqlite3.connect(run.store_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    shown = []
    clock = Clock()
    for _ in range(6):  # answer whatever is shown; the store stays busy
        renderer.finish()
        session.tick(clock.next())
        if session.pair is not None:
            session.presented(clock.now)
            shown.append(session.pair.query_id)
            session.handle([Answer.LEFT], clock.next())
            session.commit()
    assert shown == [1, 2, 3] and stored(run) == {}
    assert session.pair is None and not session.ready and session.finished is None
    holder.execute("COMMIT")
    holder.close()
    session.tick(clock.next())
    assert sorted(stored(run)) == [1, 2, 3] and session.answers == 3
    assert not any(e.kind == "shown" and e.query_id in (1, 2) for e in events[-6:])
    assert session.toast[0] == "Saved: left is better"  # never "answered elsewhere"


def test_a_store_this_window_may_not_write_ends_labelling_and_says_why(tmp_path, events):
    run = make_run(tmp_path)
    session, _ = on_screen(run, events)
    session.store._conn.close()  # as if the store had been opened by a user who may not write it
    session.store._conn = sqlite3.connect(f"file:{run.store_path}?mode=ro", uri=True, isolation_level=None)
    session.handle([Answer.RIGHT], 2.0)
    session.commit()
    assert session.closing and stored(run) == {}  # no "trying again": it cannot succeed
    with pytest.raises(StoreError) as err:
        session.close()
    assert str(err.value) == (
        f"1 answer(s) given in this window could not be saved: this user may not write the run's store "
        f"{run.store_path} (attempt to write a readonly database). Their pairs are still unanswered. Give "
        f"this user write access to the run directory, then label them again with: prefrl label {run.path}"
    )


def test_undo_while_the_store_is_busy_takes_back_an_unsaved_answer_and_retries_a_saved_one(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 3, budget=3)
    session, renderer = start(run, events)
    clock = Clock()
    session.tick(clock.next())
    renderer.finish()
    session.tick(clock.next())
    session.presented(clock.next())
    session.handle([Answer.LEFT], clock.next())
    session.commit()  # pair 1 saved
    session.tick(clock.next())
    session.presented(clock.next())
    holder = sqlite3.connect(run.store_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    session.handle([Answer.RIGHT], clock.next())  # pair 2: given, cannot be saved yet
    session.commit()
    assert stored(run) == {1: (Answer.LEFT, "human", pytest.approx(1.0))}

    session.handle([Control.UNDO], clock.next())  # takes back pair 2's answer before it is written
    assert session.pair.query_id == 2 and session.answers == 1
    assert session.toast[0] == "Undone: right is better. Answer it again"
    session.handle([Control.UNDO], clock.next())  # pair 1's answer is written: the store must change
    assert session.toast[0] == "Not undone yet (database is locked): the run's store is busy; undo again"
    assert session.pair.query_id == 2 and session.answers == 1
    holder.execute("ROLLBACK")
    holder.close()
    session.handle([Control.UNDO], clock.next())
    assert session.pair.query_id == 1 and session.answers == 0 and stored(run) == {}
    session.presented(clock.next())
    session.handle([Answer.EQUAL], clock.next())
    session.close()
    assert stored(run) == {1: (Answer.EQUAL, "human", pytest.approx(1.0))}


# ------------------------------------------------------------------------- playback


def test_the_playback_clock_loops_over_the_longer_clip_and_holds_its_end():
    play = Playback((10, 6), FPS, start=0.0)  # 1 s and 0.6 s at 10 fps
    assert play.period == pytest.approx(1.0 + LOOP_HOLD_S)
    assert play.frames(0.0) == (0, 0)
    assert play.frames(0.35) == (3, 3)
    assert play.frames(0.75) == (7, 5)  # the shorter clip holds its last frame
    assert play.frames(0.95) == (9, 5)
    assert play.frames(1.2) == (9, 5) and play.played(1.2) == 1.0  # the hold at the end
    assert play.frames(1.45) == (0, 0)  # and both start again
    assert play.next_change(0.35) == pytest.approx(0.4)
    assert play.next_change(0.95) == pytest.approx(1.4)  # the last frame lasts the hold too
    assert play.played(0.5) == pytest.approx(0.5)

    play.toggle_pause(0.35)
    assert play.paused and play.frames(5.0) == (3, 3) and play.next_change(5.0) == math.inf
    play.toggle_pause(5.0)  # on from where it was
    assert not play.paused and play.frames(5.02) == (3, 3) and play.frames(5.16) == (5, 5)
    play.toggle_pause(6.0)
    play.restart(7.0)  # replay: the first frame, playing
    assert not play.paused and play.frames(7.0) == (0, 0) and play.frames(7.25) == (2, 2)


def test_the_screen_shows_the_frames_of_now(tmp_path, events):
    run = make_run(tmp_path, [(20, 8)])
    session, renderer = start(run, events)
    session.tick(0.0)
    renderer.finish()
    session.tick(1.0)  # taken at 1.0: playback starts there
    session.presented(1.02)
    screen = session.screen(1.95)
    assert screen.query_id == 1 and screen.question == QUESTION and screen.waiting is None
    assert screen.frame_index == (9, 7)
    assert screen.frames is not None
    assert int(screen.frames[0][0, 0, 0]) == 9 and int(screen.frames[1][0, 0, 0]) == 7
    assert screen.next_change == pytest.approx(2.0)


# ------------------------------------------------------------------------- the run


def test_stops_with_the_run_when_status_json_says_stopped(tmp_path, events):
    run = make_run(tmp_path)
    session, _ = start(run, events, stop_with_run=True)
    session.tick(0.0)
    assert session.finished is None
    write_status(run, running=False)
    session.tick(0.2)  # the status is polled every POLL_STATUS_S
    assert session.finished is None
    session.tick(1.0)
    assert session.finished == "The run has stopped. Thank you!"
    session.end(session.finished)
    screen = session.screen(1.0)
    assert screen.frames is None and screen.waiting == screen.finished == "The run has stopped. Thank you!"


def test_a_run_whose_process_died_ends_the_runs_own_window_with_how_to_continue(tmp_path, events):
    from prefrl.ui.cli import run_died_meanwhile

    run = make_run(tmp_path)
    session, _ = start(run, events, stop_with_run=True)
    session.tick(0.0)
    (run.path / "run.lock").touch()  # its process held the lock, and is gone: nobody holds it
    write_status(run, running=True, updated_at=time.time() - 10)
    session.tick(1.0)
    said = f"The run stopped unexpectedly. Continue it with: prefrl resume {run.path}"
    assert session.finished == said
    # the window's terminal says it too (the run's own may be gone with it), once
    assert run_died_meanwhile(run.path) == (
        "the run stopped unexpectedly (its process is gone); every answer is saved. "
        f"Continue it with: prefrl resume {run.path}"
    )
    assert run_died_meanwhile(run.path) is None  # its status.json says stopped now


def test_a_stopped_run_is_labelled_until_nothing_is_left(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)], running=False)
    session, renderer = start(run, events)  # without stop_with_run: `prefrl label` on a stopped run
    session.tick(0.0)
    assert session.finished is None  # a question is pending
    renderer.finish()
    session.tick(1.0)
    session.presented(1.0)
    session.handle([Answer.LEFT], 2.0)
    session.tick(3.0)
    assert session.finished == "The run has stopped and nothing is left to label. Thank you!"


def test_the_budget_spent_ends_labelling(tmp_path, events):
    run = make_run(tmp_path, [(20, 20), (20, 20)], budget=2)
    session, renderer = start(run, events)
    session.tick(0.0)
    renderer.finish()
    for t in (1.0, 3.0):
        session.tick(t)
        session.presented(t)
        session.handle([Answer.RIGHT], t + 1)
    session.tick(5.0)
    assert session.finished == "All 2 labels are given. Thank you!"


def answer_in_another_process(run, query_ids):
    """Answers recorded behind the window's back (e.g. ``prefrl import`` into a stopped run)."""
    with PreferenceStore(run.store_path) as store:
        for query_id in query_ids:
            store.record_answer(query_id, Answer.RIGHT, oracle="perfect")


def test_answers_added_past_the_budget_drop_the_pair_on_screen_and_say_why(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 5, budget=3)
    session, renderer = on_screen(run, events)
    session.handle([Answer.LEFT], 2.0)
    renderer.finish()
    session.tick(3.0)
    session.presented(3.0)
    assert session.pair.query_id == 2
    answer_in_another_process(run, [4, 5])
    session.tick(3.0 + session_module.POLL_STORE_S)
    assert session.pair is None and session.toast[0] == "Query 2 is past the budget: all 3 labels given"
    assert session.finished == "All 3 labels are given. Thank you!"


def answered_in_turn(run, events, answers):
    """A session that has shown and answered (left) its first ``answers`` pairs, one by
    one, each written at once; and its clock."""
    session, renderer = start(run, events)
    clock = Clock()
    session.tick(clock.next())
    for _ in range(answers):
        renderer.finish()
        session.tick(clock.next())
        session.presented(clock.next())
        session.handle([Answer.LEFT], clock.next())
        session.commit()
    return session, renderer, clock


def test_an_answer_taken_back_is_asked_again_when_the_store_holds_more_than_the_budget(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 8, budget=3)
    session, renderer, clock = answered_in_turn(run, events, 3)
    answer_in_another_process(run, [4, 5, 6])
    for expected in (3, 2):  # the frames of the last two answers are kept
        session.handle([Control.UNDO], clock.next())
        assert session.pair.query_id == expected and [q.query_id for q in session.pending] == [expected]
    session.handle([Control.UNDO], clock.next())  # query 1's frames are gone: rendered again
    assert session.pair is None and 1 in renderer.in_flight
    renderer.finish(1)
    session.tick(clock.next())
    assert session.pair.query_id == 1


def test_a_budget_raised_while_the_window_is_open_is_asked(tmp_path, events):
    """``prefrl resume RUN --labels 3`` with a window open on the run: its status.json
    says the new budget, which the window follows."""
    run = make_run(tmp_path, [(20, 20)] * 3, budget=2)
    write_status(run, running=True, labels_total=3)
    session, _ = start(run, events)
    session.tick(0.0)
    assert session.budget == 3 and [q.query_id for q in session.pending] == [1, 2, 3]


def test_waiting_for_the_run_to_make_its_store(tmp_path, events):
    run = make_run(tmp_path, store=False)
    session, _ = start(run, events)
    session.tick(0.0)
    assert session.screen(0.0).waiting == "Waiting for the run to start..."
    assert session.finished is None
    PreferenceStore(run.store_path, env_id=ENV).close()
    session.tick(1.0)
    assert session.screen(1.0).waiting == "Waiting for the agent's next clips..."


def test_the_status_line(tmp_path):
    run = LabelingRun(tmp_path, ENV, False, 20, 20_000, QUESTION)
    status = RunStatus(running=True, agent_step=8192, total_steps=20_000, labels_wanted=13, reward_version=5)
    sep = "     ·     "
    live = RunState(live=True, known=True, status=status)
    assert status_line(live, 7, run) == sep.join(
        ("Labels 7 given / 13 wanted now (budget 20)", "Agent 8,192 / 20,000 env steps", "Reward model v5")
    )
    assert status_line(live, 15, run).startswith("Labels 15 given / 15 wanted now")  # ahead of schedule
    waits = RunState(live=True, known=True, status=dataclasses.replace(status, agent_waiting=True))
    assert (
        status_line(waits, 7, run).split(sep)[1] == "Agent 8,192 / 20,000 env steps, waiting for your labels"
    )
    stopped = RunState(
        live=False, known=True, status=RunStatus(running=False, agent_step=12_288, total_steps=20_000)
    )
    assert status_line(stopped, 3, run) == sep.join(
        ("Labels 3 given (budget 20)", "Run stopped at 12,288 env steps", "Reward model not trained yet")
    )
    done = RunState(live=False, known=True, status=RunStatus(agent_step=20_000, total_steps=20_000))
    assert "Run finished" in status_line(done, 20, run)
    stale = RunState(live=False, known=True, stale=True, status=status)
    assert "Run not responding (its status.json is out of date)" in status_line(stale, 7, run)
    assert "Run not started" in status_line(RunState(live=False, known=False), 0, run)
    starting = status_line(RunState(live=True, known=False), 0, run)
    assert starting == sep.join(
        ("Labels 0 given (budget 20)", "Run starting", "Reward model not trained yet")
    )


def test_the_session_reads_the_status_line_from_status_json(tmp_path, events):
    run = make_run(tmp_path)
    session, _ = start(run, events)
    session.tick(0.0)
    assert session.screen(0.0).status.startswith("Labels 0 given / 6 wanted now (budget 12)")
    write_status(run, running=False, agent_step=3000)
    session.tick(1.0)
    assert "Run stopped at 3,000 env steps" in session.screen(1.0).status


def test_render_ahead_keeps_at_most_three_pairs_beyond_the_one_on_screen(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 6)
    session, renderer = start(run, events)
    session.tick(0.0)
    assert len(renderer.in_flight) == RENDER_AHEAD
    renderer.finish(1)
    session.tick(1.0)  # 1 taken; 2, 3 in flight
    session.presented(1.0)
    assert renderer.submitted == [1, 2, 3, 4]
    renderer.finish()
    session.tick(2.0)
    assert set(session.ready) == {2, 3, 4} and renderer.submitted == [1, 2, 3, 4]


# ------------------------------------------------------------------------- status.json


def test_run_status_reads_what_the_monitor_writes_and_tolerates_older_files(tmp_path):
    full = RunStatus(
        running=True,
        agent_step=10,
        total_steps=100,
        labels_answered=1,
        labels_wanted=2,
        labels_total=3,
        reward_version=4,
        agent_waiting=True,
        updated_at=5.5,
        pid=6,
        role_pids={"agent": 7},
    )
    assert RunStatus.from_dict(json.loads(json.dumps(full.to_dict()))) == full
    old = RunStatus.from_dict({"running": True, "agent_step": "12", "labels_total": None, "pid": "x"})
    assert old.running and old.agent_step == 12 and old.labels_total is None and old.pid is None
    assert old.updated_at is None and old.role_pids is None
    assert old.to_dict() == {"running": True, "agent_step": 12, "labels_total": None, "pid": "x"}  # as it was
    newer = RunStatus.from_dict({"running": False, "heartbeat": {"agent": 1.0}})
    assert newer.extra == {"heartbeat": {"agent": 1.0}} and newer.to_dict()["heartbeat"] == {"agent": 1.0}
    assert RunStatus.from_dict({}) == RunStatus()
    assert RunStatus.from_dict({"agent_waiting": 1}).agent_waiting is None  # only a JSON bool

    run = RunDir(tmp_path)
    assert read_run_status(run.status_path) is None
    run.status_path.write_text("[1, 2]")
    assert read_run_status(run.status_path) is None
    write_json(run.status_path, {**full.to_dict(), "pid": 999_999_999})
    assert mark_stopped_if_dead(run.path)
    after = read_run_status(run.status_path)
    assert after is not None and not after.running and after.stopped is not None
    assert after.agent_step == 10 and after.role_pids == {"agent": 7}


def test_the_session_imports_no_pygame():
    code = "import sys, prefrl.ui.session; assert 'pygame' not in sys.modules, 'pygame imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------- minimum viewing time


def test_answers_count_only_after_one_play_of_the_shorter_clip(tmp_path, events):
    run = make_run(tmp_path, [(20, 12), (20, 20)])  # the shorter clip: 12 frames at 10 fps, 1.2 s
    session, renderer = start(run, events, min_view_s=None)
    session.tick(0.0)
    renderer.finish()
    session.tick(1.0)
    session.presented(1.0)
    screen = session.screen(1.3)
    assert not screen.answers_open and screen.view_progress == pytest.approx(0.25)
    assert screen.next_change <= 2.2
    session.handle([Answer.LEFT], 1.3)  # ten keys in a second: none of them counts
    session.handle([Answer.RIGHT, Answer.LEFT], 1.9)
    session.commit()
    assert stored(run) == {} and session.pair is not None and session.pair.query_id == 1
    assert session.toast is not None and session.toast[0].startswith("Too early: watch the clips first")
    assert [e.kind for e in events] == ["shown"]
    session.tick(2.2)  # the clock alone opens them, and says so
    assert [e.kind for e in events] == ["shown", "open"] and session.screen(2.2).answers_open
    session.handle([Answer.RIGHT], 2.3)
    session.commit()
    assert stored(run) == {1: (Answer.RIGHT, "human", pytest.approx(1.3))}


def test_paused_time_is_not_watching_and_a_set_minimum_overrides_the_default(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)])
    session, renderer = start(run, events, min_view_s=0.5)
    session.tick(0.0)
    renderer.finish()
    session.tick(1.0)
    session.presented(1.0)
    session.handle([Control.PAUSE], 1.25)  # half watched
    assert session.screen(5.0).view_progress == pytest.approx(0.5)
    session.handle([Control.PAUSE], 5.0)  # 3.75 s paused: opens at 5.25, not 1.5
    session.handle([Answer.LEFT], 5.2)
    assert session.pair is not None and session.pair.query_id == 1
    session.handle([Answer.LEFT], 5.3)
    session.commit()
    assert list(stored(run)) == [1]


# ------------------------------------------------------------------------- undo


def test_undo_takes_back_the_last_answer_and_shows_its_pair_again(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 4, budget=4)
    session, renderer = start(run, events)
    clock = Clock()
    session.tick(clock.next())
    session.handle([Control.UNDO], clock.next())  # nothing given yet
    assert session.toast is not None and session.toast[0].startswith("Nothing to undo")
    renderer.finish()
    for answer in (Answer.LEFT, Answer.RIGHT):
        session.tick(clock.next())
        session.presented(clock.next())
        session.handle([answer], clock.next())
        session.commit()
    session.tick(clock.next())
    session.presented(clock.next())
    assert session.pair.query_id == 3 and session.answered_total == 2

    session.handle([Control.UNDO], clock.next())
    assert session.pair.query_id == 2 and not session.screen(clock.now).presented  # shown again at once
    assert session.toast is not None and session.toast[0] == "Undone: right is better. Answer it again"
    assert session.answers == 1 and session.answered_total == 1
    with PreferenceStore(run.store_path) as store:
        assert [q.query_id for q in store.pending_queries()] == [2, 3, 4]
        assert store.num_answered() == 1 and [lab.query_id for lab in store.trainable_labels()] == [1]
        assert store.undone_answers() == [(2, Answer.RIGHT, "human")]
    assert (events[-1].kind, events[-1].query_id, events[-1].answer) == ("undone", 2, Answer.RIGHT)
    assert "Window" not in session.status_text()

    session.presented(clock.next())
    session.handle([Answer.EQUAL], clock.next())  # answered anew; pair 3 comes back next
    session.commit()
    assert session.pair.query_id == 3
    assert {qid: a for qid, (a, _, _) in stored(run).items()} == {1: Answer.LEFT, 2: Answer.EQUAL}
    # undo goes back through this window's answers, newest first
    session.handle([Control.UNDO], clock.next())
    session.handle([Control.UNDO], clock.next())
    assert {qid for qid in stored(run)} == set() and session.answers == 0
    assert session.pair.query_id == 1
    session.handle([Control.UNDO], clock.next())
    assert session.toast is not None and session.toast[0].startswith("Nothing to undo")


def test_an_undone_pair_without_frames_is_rendered_again_and_shown_first(tmp_path, events):
    run = make_run(tmp_path, [(20, 20)] * 5)
    session, renderer, clock = answered_in_turn(run, events, 4)
    renderer.finish()
    session.tick(clock.next())
    session.presented(clock.next())
    assert session.pair.query_id == 5
    for expected in (4, 3):  # the frames of the last two answers are kept
        session.handle([Control.UNDO], clock.next())
        assert session.pair.query_id == expected
    session.handle([Control.UNDO], clock.next())  # query 2's frames are gone: rendered again
    assert session.pair is None and 2 in renderer.in_flight
    renderer.finish(2)
    session.tick(clock.next())
    assert session.pair.query_id == 2  # before 3, 4 and 5, which are ready
    assert set(session.ready) == {3, 4, 5}


def test_mouse_and_keys_are_the_same_answers_to_the_session(tmp_path, events):
    """A click on a clip is the view's Answer.LEFT / Answer.RIGHT: same rules (see test_ui)."""
    run = make_run(tmp_path, [(20, 20)])
    session, renderer = start(run, events, min_view_s=1.0)
    session.tick(0.0)
    renderer.finish()
    session.tick(1.0)
    session.presented(1.0)
    session.handle([Answer.RIGHT], 1.5)
    session.handle([Answer.RIGHT], 2.0)
    session.commit()
    assert stored(run) == {1: (Answer.RIGHT, "human", pytest.approx(1.0))}


# ------------------------------------------------------------------------- pace, heartbeat


def test_the_status_line_shows_this_windows_pace_and_session_number(tmp_path, events):
    assert pace_line(0, 30.0, 10, 3) == "Window 3: no labels yet"
    assert pace_line(6, 120.0, 12, 3) == "Window 3: 6 labels, 3.0/min, budget in ~4 min"
    assert pace_line(1, 30.0, 0, None) == "This window: 1 label, 2.0/min"
    assert pace_line(2, 60.0, 500, 1) == "Window 1: 2 labels, 2.0/min, budget in ~4 h 10 min"
    assert pace_line(60, 60.0, 5, 1).endswith("budget in <1 min")

    run = make_run(tmp_path, [(20, 20)] * 3, budget=12)
    WindowHeartbeat(run.path).close()  # an earlier window on this run
    heartbeat = WindowHeartbeat(run.path)
    assert heartbeat.sessions == 2
    session, renderer = start(run, events, heartbeat=heartbeat)
    session.tick(0.0)
    assert session.screen(0.0).status.endswith("Window 2: no labels yet")
    renderer.finish()
    for t in (10.0, 20.0):
        session.tick(t)
        session.presented(t)
        session.handle([Answer.LEFT], t + 5)
        session.commit()
    screen = session.screen(30.0)  # 2 labels in 30 s: 4 a minute, 10 left: 2.5 min
    assert screen.status.endswith("Window 2: 2 labels, 4.0/min, budget in ~2 min")
    assert screen.status.startswith("Labels 2 given")
    assert screen.next_change <= 35.0  # the pace is redrawn as time passes


def test_the_window_heartbeat_says_a_window_is_open(tmp_path):
    run = RunDir(tmp_path)
    assert not window_open(tmp_path) and read_window(tmp_path) is None
    beat = WindowHeartbeat(tmp_path)
    data = json.loads(run.window_path.read_text())
    assert data["pid"] == os.getpid() and data["sessions"] == 1 and data["open"] is True
    assert window_open(tmp_path)
    assert not window_open(tmp_path, now=time.time() + 10)  # not beaten for 10 s: gone
    first = data["updated_at"]
    beat.beat()  # under a second later: not rewritten
    assert json.loads(run.window_path.read_text())["updated_at"] == first
    beat.beat(force=True)
    assert json.loads(run.window_path.read_text())["updated_at"] >= first
    beat.close()
    assert not window_open(tmp_path) and read_window(tmp_path)["open"] is False
    second = WindowHeartbeat(tmp_path)
    assert second.sessions == 2 and window_open(tmp_path)
    # a window killed without closing: its pid is gone
    write_json(run.window_path, {"pid": 999_999_999, "updated_at": time.time(), "sessions": 3, "open": True})
    assert not window_open(tmp_path)
    second.close()  # another window wrote the file since: left as it is
    assert read_window(tmp_path)["pid"] == 999_999_999
    run.window_path.write_text("{half")
    assert not window_open(tmp_path) and WindowHeartbeat(tmp_path).sessions == 1
