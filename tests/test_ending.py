"""When a run is over (prefrl.runtime.ending), and end-to-end runs that end on the edge."""

import pytest
from test_runtime import small

from prefrl.errors import ConfigError
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir
from prefrl.runtime.ending import RunEnd, end_of_run
from prefrl.runtime.run import PersonWatch, train

DONE = {"complete": True, "reason": None, "labels/trainable": 10}


def test_a_run_goes_on_until_agent_labels_and_training_are_all_done():
    assert end_of_run(agent_done=False, labeler_done=None, labels_trained=0) is None
    assert end_of_run(agent_done=True, labeler_done=None, labels_trained=5) is None  # labels still to ask
    assert end_of_run(agent_done=False, labeler_done=DONE, labels_trained=10) is None  # steps still to take
    assert end_of_run(agent_done=True, labeler_done=DONE, labels_trained=9) is None  # last label untrained
    assert end_of_run(agent_done=True, labeler_done=DONE, labels_trained=10) == RunEnd(True)


def test_a_run_ends_short_when_no_more_labels_can_come():
    gave_up = {"complete": False, "reason": "too few clips", "labels/trainable": 3}
    assert end_of_run(agent_done=False, labeler_done=gave_up, labels_trained=0) == RunEnd(
        False, "too few clips"
    )
    gone = end_of_run(
        agent_done=True,
        labeler_done=None,
        labels_trained=4,
        person_present=False,
        labels_answered=4,
        labels_budget=20,
        run_dir="runs/x",
    )
    assert gone == RunEnd(
        False,
        "the labelling window closed with 4 of 20 labels given; give the rest with: prefrl resume runs/x",
    )
    # a person who has gone before the agent finished: the run goes on (they may come back)
    assert end_of_run(agent_done=False, labeler_done=None, labels_trained=0, person_present=False) is None


def test_a_person_gone_after_their_last_answers_ends_the_run_on_what_the_store_holds():
    gone = dict(agent_done=True, labeler_done=None, person_present=False, labels_budget=20, run_dir="runs/x")
    # the whole budget is in the store, though the labeler has not reported it: it will
    assert end_of_run(**gone, labels_trained=18, labels_answered=20, labels_trainable=20) is None
    # 6 answers given, 6 trainable, the reward model trained on 4: it trains on the rest first
    assert end_of_run(**gone, labels_trained=4, labels_answered=6, labels_trainable=6) is None
    assert end_of_run(**gone, labels_trained=6, labels_answered=6, labels_trainable=6) == RunEnd(
        False,
        "the labelling window closed with 6 of 20 labels given; give the rest with: prefrl resume runs/x",
    )


def test_the_supervisor_counts_a_gone_persons_answers_in_the_store(tmp_path):
    from test_monitor import write_store

    from prefrl.runtime.monitor import Monitor
    from prefrl.runtime.multiprocess import run_end

    config = small(labels=5)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    write_store(run, queries=5, answered=3)
    monitor = Monitor(run, config.steps, config.labels, progress=False)
    monitor.latest["labeler"]["labels/answered"] = 2  # its last report, one answer behind
    monitor.latest["reward_trainer"]["reward/labels"] = 2
    assert run_end(config, run.path, monitor, lambda: False) is None  # the agent is still running
    monitor.finished["agent"] = {}  # the agent has taken all its steps
    assert run_end(config, run.path, monitor, lambda: False) is None  # 3 answers, 2 trained on
    monitor.latest["reward_trainer"]["reward/labels"] = 3
    end = run_end(config, run.path, monitor, lambda: False)
    assert end is not None and not end.complete
    assert end.reason is not None and end.reason.startswith("the labelling window closed with 3 of 5 labels")
    assert run_end(config, run.path, monitor, lambda: True) is None  # a person labelling still


@pytest.mark.parametrize("backend", ["inprocess", "multiprocess"])
def test_labels_left_when_the_agent_finishes_are_still_asked_and_trained_on(tmp_path, backend):
    # one rollout after the initial clips: the schedule wants most labels only at the very end
    summary = train(small(backend=backend, steps=512, labels=30), tmp_path / "r", progress=False, video=False)
    assert (summary["complete"], summary["incomplete_reason"]) == (True, None)
    assert (summary["labels_used"], summary["labels_budget"]) == (30, 30)
    trainable = sum(summary["answers"][k] for k in ("left", "right", "equal"))
    assert summary["reward_model_version"] >= 1 and trainable == 30


@pytest.mark.parametrize("backend", ["inprocess", "multiprocess"])
@pytest.mark.parametrize("labels, initial_fraction", [(6, 0.25), (12, 0.1)])
def test_a_run_whose_every_answer_is_skipped_ends_short_and_says_why(
    tmp_path, backend, labels, initial_fraction
):
    # every clip pair falls below the threshold of a teacher whose range is far above any return;
    # with 12 labels, the one pair of the 2 initial clips is asked, and the agent waiting for a
    # first model must send more clips for the rest (a pair is never asked twice)
    config = small(
        backend=backend,
        labels=labels,
        initial_fraction=initial_fraction,
        teacher="skip:eps_skip=1.0,return_range=1e6..2e6",
    )
    summary = train(config, tmp_path / "r", progress=False, video=False)
    assert summary["complete"] is False and summary["labels_used"] == labels
    assert summary["incomplete_reason"].startswith(f"none of the {labels} answers can be trained on")


def test_a_budget_below_two_labels_is_refused_before_anything_is_written(tmp_path):
    for labels in (0, 1):
        with pytest.raises(
            ConfigError,
            match=rf"^--labels {labels}: must be at least 2 \(a pair needs 2; PPO without any label",
        ):
            small(labels=labels)


def test_a_pair_is_never_asked_twice_and_a_run_out_of_new_pairs_ends_short(tmp_path):
    # CartPole's early episodes end before most clips of 50 steps are complete: a handful
    # of clips, fewer pairs than the 20 labels asked for
    config = small(
        backend="inprocess",
        env_id="CartPole-v1",
        fixed_length=False,
        clip_length=50,
        steps=2048,
        labels=20,
        ppo={"num_envs": 4, "num_steps": 256},
    )
    summary = train(config, tmp_path / "r", progress=False, video=False)
    with PreferenceStore(tmp_path / "r" / "prefs.sqlite") as store:
        pairs = [frozenset(pair) for pair in store.asked_pairs()]
        clips = len(store.recent_clips(1000))
    assert 2 <= clips and len(set(pairs)) == len(pairs) == clips * (clips - 1) // 2 < 20
    assert summary["complete"] is False and summary["labels_used"] == len(pairs)
    assert summary["incomplete_reason"].startswith(
        f"the agent finished with {clips} clip(s) to compare, and every pair of them was asked; "
        f"{len(pairs)} of 20 labels were given"
    )


@pytest.mark.parametrize(
    ("pace", "explore_labels", "model", "then"),
    [
        ("wait", 0, True, "waits for your labels"),
        ("free", 0, True, "goes on"),
        ("free", 0, False, "waits for your labels"),  # no reward to learn from before the first answers
        ("free", 4, False, "goes on"),  # it explores meanwhile
    ],
)
def test_a_closed_window_says_whether_the_run_waits_for_the_person(
    tmp_path, capsys, pace, explore_labels, model, then
):
    class Closed:
        def poll(self):
            return 0

    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    if model:
        run.reward_checkpoint.write_bytes(b"")
    watch = PersonWatch(Closed(), run, small(oracle="human", pace=pace, explore_labels=explore_labels))
    assert watch() is False
    assert capsys.readouterr().out == (
        f"prefrl: the labelling window is closed; the run {then}. Reopen it with: prefrl label {run.path}\n"
    )
    assert watch() is False and capsys.readouterr().out == ""  # said once


def test_a_window_closed_after_the_last_label_says_the_run_goes_on_to_its_end(tmp_path, capsys):
    from test_monitor import write_store

    class Closed:
        def poll(self):
            return 0

    run = RunDir.create(tmp_path / "run", "train", "Pendulum-v1", 0)
    write_store(run, queries=4, answered=4)
    watch = PersonWatch(Closed(), run, small(oracle="human", labels=4))
    assert watch() is False
    assert capsys.readouterr().out == (
        "prefrl: the labelling window is closed after the last of the run's 4 labels; the run goes on to its end\n"
    )


def test_resuming_a_run_whose_labels_are_all_given_opens_no_window(tmp_path):
    # a person's run killed after its last answer: resuming it has nothing to ask, and a
    # window opened on it would only print "nothing to label" as an error
    from prefrl.runtime.run import resume

    config = small(backend="multiprocess", labels=4)
    train(config, tmp_path / "r", progress=False, video=False)
    run = RunDir(tmp_path / "r")
    run.write_config({**run.read_config(), "oracle": "human"})

    class Launcher:
        def check(self):
            pass

        def start(self, run_dir):
            raise AssertionError(f"a window was opened on {run_dir}, whose every label is given")

    summary = resume(
        run.path, steps=2 * config.steps, progress=False, video=False, labeling_window=Launcher()
    )
    assert (summary["complete"], summary["labels_used"]) == (True, 4)
