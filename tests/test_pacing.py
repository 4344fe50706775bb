"""The agent waits for the person (prefrl.runtime.pacing): unit rules, and whole runs
answered by a slow scripted person through the store, as the labelling window does."""

import os
import signal
import threading
import time

import pytest
from test_runtime import small

from prefrl.oracles import PerfectOracle
from prefrl.prefs.schedule import LabelSchedule
from prefrl.prefs.store import PreferenceStore, StoreError
from prefrl.rundir import RunDir, read_status_json
from prefrl.runtime.pacing import Pacer, allowed_lag
from prefrl.runtime.run import train


def test_the_allowed_lag_is_two_answers_or_five_percent_of_the_budget():
    assert [allowed_lag(n) for n in (2, 20, 40, 60, 100, 900)] == [2, 2, 2, 3, 5, 45]


def test_the_agent_waits_only_beyond_the_allowed_lag_and_only_when_pacing():
    schedule = LabelSchedule(total_labels=100, total_steps=10_000, initial_fraction=0.25)
    pacer = Pacer(schedule, enabled=True, poll_s=0.0)
    wanted = schedule.labels_wanted(5_000)
    assert pacer.behind(5_000, wanted - 5) == 0  # 5 behind: allowed
    assert pacer.behind(5_000, wanted - 6) == 1
    assert pacer.must_wait(5_000, lambda: wanted - 6) and pacer.waiting
    assert not pacer.must_wait(5_000, lambda: wanted) and not pacer.waiting
    assert pacer.waited_s > 0 and 0 < pacer.wait_share() < 1
    free = Pacer(schedule, enabled=False, poll_s=0.0)
    assert not free.must_wait(5_000, lambda: 0) and free.wait_share() == 0


def test_a_person_sets_the_pace_and_a_synthetic_oracle_never_waits():
    assert small().pace == "free" and small(oracle="human").pace == "wait"
    assert small(oracle="human", pace="free").pace == "free"


def test_the_store_is_read_at_most_once_per_poll_interval():
    reads = []
    pacer = Pacer(LabelSchedule(10, 1000), enabled=True, poll_s=60.0)
    for _ in range(5):
        pacer.must_wait(500, lambda: reads.append(1) or 0)
    assert len(reads) == 1


class SlowPerson(threading.Thread):
    """Answers the queries waiting in a run's store, one every ``delay`` seconds, as the
    perfect oracle would (what a person in the labelling window does). After ``stall_after``
    answers they stop until the run's status.json shows the answers lagging the schedule
    by more than the allowed lag and, with ``until_agent_waits``, the agent waiting for
    them: however fast or loaded the machine, a pacing agent has waited for them then."""

    def __init__(self, run_dir, delay, stall_after=5, budget=20, until_agent_waits=False):
        super().__init__(daemon=True)
        self.run_dir, self.delay = run_dir, delay
        self.stall_after, self.budget = stall_after, budget
        self.until_agent_waits = until_agent_waits
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            self._answer_until_stopped()
        except BaseException as err:  # a person who gave up: stop the run (it would wait for them)
            self.error = err
            os.kill(os.getpid(), signal.SIGTERM)  # the run takes it as Ctrl-C
            raise

    def _answer_until_stopped(self):
        oracle = PerfectOracle()
        db = self.run_dir / "prefs.sqlite"
        deadline = time.monotonic() + 300
        answered = 0
        while not self.stop.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("the run did not finish within 300 s")
            if answered == self.stall_after:
                if not self._stalled_long_enough():
                    self.stop.wait(0.05)
                    continue
                answered += 1  # stalled once
            try:
                store = PreferenceStore(db) if db.exists() else None
            except StoreError:  # the labeler is creating it
                store = None
            if store is not None:
                with store:
                    pending = store.pending_queries()
                    if pending:
                        query = pending[0]
                        clips = store.get_clips([query.left_clip_id, query.right_clip_id])
                        answer = oracle.answer(clips[query.left_clip_id], clips[query.right_clip_id])
                        store.record_answer(query.query_id, answer, oracle="person")
                        answered += 1
                        self.stop.wait(self.delay)
                        continue
            self.stop.wait(0.05)

    def _stalled_long_enough(self):
        status = read_status_json(RunDir(self.run_dir).status_path) or {}
        lag = status.get("labels_wanted", 0) - status.get("labels_answered", 0)
        return lag > allowed_lag(self.budget) and (status.get("agent_waiting") or not self.until_agent_waits)


def test_a_free_paced_agent_says_it_waits_for_the_first_answers(tmp_path):
    # at either pace the agent has no reward to learn from before the first answers: a
    # person who has not given them yet sees it waiting (status.json and the status line)
    run_dir = tmp_path / "r"
    person = SlowPerson(run_dir, delay=0.0, stall_after=0, until_agent_waits=True)
    person.start()
    try:
        summary = train(small(oracle="human", pace="free", labels=20), run_dir, progress=False, video=False)
    finally:
        person.stop.set()
    assert person.error is None
    assert (summary["complete"], summary["labels_used"], summary["teacher"]) == (True, 20, None)


@pytest.mark.parametrize("pace", ["wait", "free"])
def test_a_slow_person_gives_the_whole_budget_and_only_a_waiting_agent_waits(tmp_path, pace):
    run_dir = tmp_path / "r"
    # the stall comes after the first answers past the initial 5: the agent has its first
    # reward model then, so a wait it shows is the pace's (before that it waits at either pace)
    person = SlowPerson(run_dir, delay=0.25, stall_after=6, until_agent_waits=pace == "wait")
    person.start()
    try:
        config = small(oracle="human", pace=pace, steps=8192, labels=20)
        summary = train(config, run_dir, progress=False, video=False)
    finally:
        person.stop.set()
    assert person.error is None
    assert (summary["complete"], summary["labels_used"]) == (True, 20)
    with PreferenceStore(run_dir / "prefs.sqlite") as store:
        asked_after_the_end = sum(q.agent_step >= 8192 for q in store.labels())
    if pace == "wait":
        assert summary["agent_wait_share"] > 0
        assert asked_after_the_end <= allowed_lag(20) + 3  # the lag, plus the queue kept for the person
    else:
        assert summary["agent_wait_share"] == 0
