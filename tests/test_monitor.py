"""The monitor (prefrl.runtime.monitor): what it takes over from a run directory it resumes,
and what it does with the roles' reports."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from prefrl.metrics import read_metrics
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir
from prefrl.runtime.channels import Status
from prefrl.runtime.monitor import Monitor

ENV = "CartPole-v1"
CLOCK = 1234.5  # the stopped run's wall time at its last metrics row


def write_metrics(run: RunDir, rows: list[dict[str, str]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with run.metrics_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def clip(rng: np.random.Generator) -> Clip:
    return Clip(
        obs=rng.normal(size=(10, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=10).astype(np.int64),
        true_rewards=rng.normal(size=10),
        snapshots=None,
        env_id=ENV,
    )


def write_store(run: RunDir, queries: int, answered: int) -> None:
    rng = np.random.default_rng(0)
    with PreferenceStore(run.store_path, ENV) as store:
        ids = [
            store.add_query(clip(rng), clip(rng), agent_step=100 * i, oracle="synthetic", selection="random")
            for i in range(queries)
        ]
        for query_id in ids[:answered]:
            store.record_answer(query_id, Answer.LEFT, oracle="synthetic")


@pytest.fixture
def stopped_run(tmp_path) -> RunDir:
    """A run stopped at env step 3000: metrics rows (one without a step, the steps out of
    order), 5 queries asked, 3 answered."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    write_metrics(
        run,
        [
            {"global_step": "1000", "wall_time": "100.0", "charts/episodic_return": "-900"},
            {"global_step": "3000", "wall_time": "1000.0", "reward/val_accuracy": "0.7"},
            {"global_step": "", "wall_time": "1100.0", "labels/answered": "3"},
            {"global_step": "2000", "wall_time": str(CLOCK), "labels/answered": "2"},
        ],
    )
    write_store(run, queries=5, answered=3)
    return run


def monitor_of(run: RunDir) -> Monitor:
    return Monitor(run, total_steps=10_000, total_labels=20, progress=False)


def test_a_new_run_starts_from_nothing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    monitor = monitor_of(run)
    assert monitor.agent_step == 0
    assert monitor.latest == {"agent": {}, "labeler": {}, "reward_trainer": {}}
    assert monitor.finished == {} and monitor.errors == {}
    monitor.consume([Status("agent", "metrics", 512, {"charts/episodic_return": -500.0})])
    rows = read_metrics(run.metrics_path)
    assert len(rows) == 1 and rows[0]["global_step"] == "512"
    assert float(rows[0]["wall_time"]) < CLOCK  # no clock carried over from anywhere


def test_a_resumed_run_goes_on_from_its_last_step(stopped_run):
    # the largest step logged, not the last row's
    assert monitor_of(stopped_run).agent_step == 3000


def test_a_resumed_run_keeps_its_stored_answers_as_the_labelers_count(stopped_run):
    # answered, not asked; and from the store, not from metrics.csv's last value
    assert monitor_of(stopped_run).latest["labeler"] == {"labels/answered": 3}


def test_a_resumed_runs_metrics_clock_continues_and_its_rows_stay(stopped_run):
    before = read_metrics(stopped_run.metrics_path)
    monitor = monitor_of(stopped_run)
    monitor.consume([Status("agent", "metrics", 3500, {"charts/episodic_return": -400.0})])
    rows = read_metrics(stopped_run.metrics_path)
    assert rows[:4] == before
    assert len(rows) == 5
    assert rows[4]["global_step"] == "3500" and rows[4]["charts/episodic_return"] == "-400"
    assert float(rows[4]["wall_time"]) >= CLOCK


def test_a_resumed_run_whose_last_metrics_row_was_cut_short_goes_on_from_the_row_before(stopped_run):
    with stopped_run.metrics_path.open("a") as f:
        f.write("9000,20")  # the disk filled mid-row: neither its step nor its clock is known
    before = read_metrics(stopped_run.metrics_path)
    monitor = monitor_of(stopped_run)
    assert monitor.agent_step == 3000
    monitor.consume([Status("agent", "metrics", 3500, {"charts/episodic_return": -400.0})])
    rows = read_metrics(stopped_run.metrics_path)
    assert rows[:4] == before and len(rows) == 5
    assert rows[4]["global_step"] == "3500" and CLOCK <= float(rows[4]["wall_time"]) < 2000


def test_a_resumed_run_without_a_store_has_no_answers_yet(stopped_run):
    stopped_run.store_path.unlink()
    assert monitor_of(stopped_run).latest["labeler"] == {}


def test_metrics_reports_become_rows_and_the_latest_values_of_their_role(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    monitor = monitor_of(run)
    monitor.consume(
        [
            Status("agent", "metrics", 1024, {"charts/episodic_return": -800.0}),
            Status("labeler", "metrics", 1024, {"labels/answered": 4, "labels/wanted": 6}),
            Status("reward_trainer", "metrics", 900, {"reward/val_accuracy": 0.75}),
        ]
    )
    assert monitor.agent_step == 1024  # the largest step any report carried, not the last one's
    monitor.consume([Status("labeler", "metrics", 2048, {"labels/answered": 5})])
    rows = read_metrics(run.metrics_path)
    assert [(r["global_step"], r["labels/answered"]) for r in rows] == [
        ("1024", ""),
        ("1024", "4"),
        ("900", ""),
        ("2048", "5"),
    ]
    assert rows[2]["reward/val_accuracy"] == "0.75"
    assert monitor.latest["labeler"] == {"labels/answered": 5, "labels/wanted": 6}
    assert monitor.latest["reward_trainer"] == {"reward/val_accuracy": 0.75}
    assert monitor.agent_step == 2048
    assert monitor.finished == {} and monitor.errors == {} and monitor.done is None


def test_done_reports_are_kept_per_role_and_are_not_metrics(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    monitor = monitor_of(run)
    monitor.consume([Status("labeler", "done", 4096, {"complete": True})])
    assert monitor.finished == {"labeler": {"complete": True}}
    assert monitor.done is None  # the run is done when the agent is
    monitor.consume([Status("agent", "done", 8192, {"final_train_return": -150.0})])
    assert monitor.finished["agent"] == {"final_train_return": -150.0}
    assert monitor.done == {"final_train_return": -150.0}
    assert monitor.agent_step == 8192
    assert not run.metrics_path.exists()
    assert monitor.latest == {"agent": {}, "labeler": {}, "reward_trainer": {}}


def test_error_reports_are_recorded_per_role_and_are_not_metrics(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    monitor = monitor_of(run)
    monitor.consume(
        [
            Status("reward_trainer", "error", 300, {"error": "ValueError: bad label"}),
            Status("labeler", "error", 200, {}),
        ]
    )
    assert monitor.errors == {"reward_trainer": "ValueError: bad label", "labeler": "unknown error"}
    assert monitor.finished == {}
    assert not run.metrics_path.exists()
    assert monitor.agent_step == 300


def test_the_heartbeat_goes_on_while_a_progress_video_is_recorded(tmp_path, monkeypatch):
    import threading

    from prefrl.runtime import monitor as monitor_module

    recording, release, recorded = threading.Event(), threading.Event(), []

    def slow_video(run_dir, env_step):
        recording.set()
        release.wait(30)
        recorded.append(env_step)

    monkeypatch.setattr(monitor_module, "record_progress_video", slow_video)
    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    monitor = monitor_module.Monitor(run, 1000, 10, progress=False, progress_videos=True)
    monitor.consume([Status("agent", "metrics", 100, {"eval/mean_return": -300.0})])
    assert recording.wait(10)  # the video is being recorded ...
    before = json.loads(run.status_path.read_text())["updated_at"]
    monitor._status_written = 0.0  # the next consume is a heartbeat
    monitor.consume([])  # ... and the supervising loop goes on meanwhile
    assert json.loads(run.status_path.read_text())["updated_at"] > before
    release.set()
    monitor.close()
    assert recorded == [100]


def test_a_roles_error_is_one_line_and_its_traceback_goes_to_errors_log(tmp_path):
    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    monitor = Monitor(run, total_steps=100, total_labels=10, progress=False)
    trace = 'Traceback (most recent call last):\n  File "my_task.py", line 7, in reward\nValueError: bored\n'
    monitor.consume([Status("agent", "error", 0, {"error": "ValueError: bored", "traceback": trace})])
    assert monitor.errors["agent"] == f"ValueError: bored; its traceback is in {run.path / 'errors.log'}"
    monitor.consume([Status("labeler", "error", 0, {"error": "KeyError: 0"})])  # none sent: none logged
    assert monitor.errors["labeler"] == "KeyError: 0"
    log = (run.path / "errors.log").read_text()
    assert log.startswith("--- ") and log.count("--- ") == 1
    assert log.endswith(f": the agent failed near agent step 0\n{trace}\n")


def test_the_status_line_says_when_the_agent_evaluates(tmp_path):
    monitor = Monitor(RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0), 100, 10, progress=False)
    monitor.consume([Status("agent", "metrics", 50, {"eval/episodes_running": 20})])
    assert monitor._agent_doing() == "evaluating (20 episodes)"
    monitor.consume([Status("agent", "metrics", 60, {"eval/episodes_running": 0, "pace/waiting": 1})])
    assert monitor._agent_doing() == "waiting for labels"
    monitor.consume([Status("agent", "done", 100, {})])
    assert monitor._agent_doing() is None
    assert not (tmp_path / "run" / "metrics.csv").exists()  # no metrics: nothing logged


def test_a_summary_takes_what_no_role_reported_again_from_metrics_csv(tmp_path):
    # e.g. a run resumed after its agent had taken all its steps: the agent only finishes
    from test_runtime import small

    from prefrl.runtime.ending import RunEnd
    from prefrl.runtime.run import summarize

    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    before = Monitor(run, 100, 10, progress=False)
    before.consume([Status("agent", "metrics", 50, {"charts/SPS": 812.5, "reward/rollout_true_corr": 0.5})])
    before.consume(
        [Status("reward_trainer", "metrics", 60, {"reward/version": 7, "reward/val_accuracy": 0.75})]
    )
    after = Monitor(run, 100, 10, progress=False)  # a new session: its roles have said nothing yet
    after.consume([Status("reward_trainer", "metrics", 70, {"reward/val_accuracy": 0.8})])
    summary = summarize(small(), run, after, RunEnd(True))
    assert summary["env_steps_per_sec"] == 812.5 and summary["reward_rollout_true_corr"] == 0.5
    assert (summary["reward_model_version"], summary["reward_val_accuracy"]) == (7, 0.8)
