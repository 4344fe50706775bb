"""Labels that outlive their run: ``prefrl train --labels-from`` and gathering labels."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_runtime import small

from prefrl.cli import main
from prefrl.errors import EXIT_INTERRUPTED, ConfigError
from prefrl.fit_reward import fit_reward
from prefrl.metrics import read_metrics
from prefrl.prefs.clips import Answer
from prefrl.prefs.errors import StoreError
from prefrl.prefs.exchange import export_store, gather_labels, import_into, import_run
from prefrl.prefs.store import PreferenceStore
from prefrl.reward import load_reward_model
from prefrl.runtime.channels import LocalClipQueue, LocalStatus, LocalWeights
from prefrl.runtime.labeler import LabelerRole
from prefrl.runtime.run import resume, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A finished 12-label Pendulum run (in-process, deterministic)."""
    run_dir = tmp_path_factory.mktemp("source") / "run"
    summary = train(small(backend="inprocess"), run_dir, progress=False, video=False)
    assert summary["complete"] and summary["labels_used"] == 12
    return run_dir


SMALL_FIT = small().reward_model


def trainable(run_dir: Path) -> int:
    with PreferenceStore(run_dir / "prefs.sqlite") as store:
        return len(store.trainable_labels())


def test_gather_labels_copies_every_answered_pair_of_a_run_an_export_or_a_store(source_run, tmp_path):
    export_store(source_run, tmp_path / "export")
    for i, source in enumerate((source_run, tmp_path / "export", source_run / "prefs.sqlite")):
        gathered = gather_labels(source, tmp_path / f"g{i}.sqlite")
        assert (gathered.env_id, gathered.answered, gathered.trainable) == (
            "Pendulum-v1",
            12,
            trainable(source_run),
        )
        with PreferenceStore(tmp_path / f"g{i}.sqlite") as store:
            assert len(store.trainable_labels()) == gathered.trainable


def test_gather_labels_refuses_what_holds_no_labels_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        StoreError, match=r"empty holds no labels: pass the run directory of a preference run"
    ):
        gather_labels(tmp_path / "empty", tmp_path / "g.sqlite")
    with pytest.raises(StoreError, match=r"nowhere: no such file or directory"):
        gather_labels(tmp_path / "nowhere", tmp_path / "g.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all")
    with pytest.raises(StoreError, match=r"is not an SQLite database"):
        gather_labels(tmp_path / "junk.sqlite", tmp_path / "g.sqlite")
    with PreferenceStore(tmp_path / "clipless.sqlite", "Pendulum-v1") as clipless:
        export_store(clipless, tmp_path / "clipless")
    with pytest.raises(StoreError) as err:
        gather_labels(tmp_path / "clipless", tmp_path / "g.sqlite")
    assert (
        str(err.value)
        == f"{tmp_path / 'clipless'} holds no labels: it is the export of a store without clips"
    )
    assert not (tmp_path / "g.sqlite").exists()


@pytest.mark.parametrize("backend", ["inprocess", "multiprocess"])
def test_a_run_with_no_labels_of_its_own_trains_on_the_reused_ones(source_run, tmp_path, backend):
    config = small(backend=backend, labels=0, labels_from=str(source_run))
    summary = train(config, tmp_path / "reuse", progress=False, video=False)
    reused = trainable(source_run)
    assert summary["complete"] is True, summary["incomplete_reason"]
    assert (summary["labels_used"], summary["labels_budget"], summary["labels_reused"]) == (0, 0, reused)
    rows = [r for r in read_metrics(tmp_path / "reuse" / "metrics.csv") if r.get("reward/labels_reused")]
    assert rows and {float(r["reward/labels_reused"]) for r in rows} == {reused}
    assert {float(r["reward/labels"]) for r in rows} == {0.0}
    saved = json.loads((tmp_path / "reuse" / "config.json").read_text())
    assert saved["labels_from"] == str(source_run.resolve())
    assert (tmp_path / "reuse" / "reused.sqlite").is_file()
    assert not (tmp_path / "reuse" / "prefs.sqlite").exists() or trainable(tmp_path / "reuse") == 0


def test_reused_labels_are_counted_apart_from_the_runs_own_budget(source_run, tmp_path):
    config = small(backend="inprocess", labels=6, labels_from=str(source_run))
    summary = train(config, tmp_path / "more", progress=False, video=False)
    assert summary["complete"] is True
    assert (summary["labels_used"], summary["labels_reused"]) == (6, trainable(source_run))
    last = read_metrics(tmp_path / "more" / "metrics.csv")
    trained = [float(r["reward/labels"]) for r in last if r.get("reward/labels")]
    assert trained[-1] == trainable(tmp_path / "more")
    # a run that reused labels passes them on: its own and the ones it reused
    gathered = gather_labels(tmp_path / "more", tmp_path / "both.sqlite")
    assert gathered.trainable == trainable(tmp_path / "more") + trainable(source_run)
    # resuming it neither copies them again nor loses them
    resumed = resume(tmp_path / "more", labels=8, progress=False, video=False)
    assert (resumed["labels_used"], resumed["labels_reused"]) == (8, trainable(source_run))


def test_a_run_whose_reused_labels_are_gone_gathers_them_again_or_says_what_is_missing(
    source_run, tmp_path, capsys
):
    source = export_store(source_run, tmp_path / "source")  # one that can go
    run = tmp_path / "run"
    train(small(backend="inprocess", labels=6, labels_from=str(source)), run, progress=False, video=False)
    reused = trainable(source_run)
    lost = f"{run / 'reused.sqlite'} is missing (the labels the run reuses, from --labels-from {source.resolve()})"
    (run / "reused.sqlite").unlink()
    capsys.readouterr()
    summary = resume(run, labels=8, progress=False, video=False)
    assert (
        f"prefrl: {lost}: gathered again from that source, {reused} labels to train on\n"
        in capsys.readouterr().out
    )
    assert (summary["labels_used"], summary["labels_reused"]) == (8, reused)
    rows = [r for r in read_metrics(run / "metrics.csv") if r.get("reward/labels_reused")]
    assert float(rows[-1]["reward/labels_reused"]) == reused
    # the source gone too: refused in one line, nothing changed
    (run / "reused.sqlite").unlink()
    shutil.rmtree(source)
    assert main(["resume", str(run), "--labels", "10", "--quiet", "--no-video"]) == 2
    assert capsys.readouterr().err == (
        f"prefrl resume: error: {lost}, and so is that source: put back either of them and resume "
        "again; to go on without those labels, start a new run (prefrl train)\n"
    )
    assert json.loads((run / "config.json").read_text())["labels"] == 8


def pairs(store_path: Path) -> list[tuple]:
    with PreferenceStore(store_path) as store:
        return sorted((lbl.left_clip_id, lbl.right_clip_id, lbl.answer.value) for lbl in store.labels())


def test_a_run_that_reused_labels_exports_and_passes_them_on_with_its_own(source_run, tmp_path, capsys):
    run = tmp_path / "run"
    train(small(backend="inprocess", labels=6, labels_from=str(source_run)), run, progress=False, video=False)
    assert main(["export", str(run), str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reused_store"] == str(run / "reused.sqlite")
    assert (printed["answers"], printed["reused_answers"]) == (6 + 12, 12)
    # the export carries what --labels-from RUN carries, and so does an import of the run
    gather_labels(run, tmp_path / "gathered.sqlite")
    for i, source in enumerate((tmp_path / "out", run)):
        assert main(["import", str(tmp_path / f"copy{i}.sqlite"), str(source)]) == 0
        assert json.loads(capsys.readouterr().out)["answered"] == 18
        assert pairs(tmp_path / f"copy{i}.sqlite") == pairs(tmp_path / "gathered.sqlite")
    # none twice: importing the labels the run reuses into its own store adds none of them
    # (it would train on each twice), and a store that holds them anyway exports them once
    report = import_run(run, source_run)
    assert (report["answers_added"], report["answers_already_reused"], report["answered"]) == (0, 12, 6)
    assert report["clips_added"] == 0  # nor their clips, which the labeler would pair again
    labeler = LabelerRole(
        small(labels=6, labels_from=str(source_run)), run, LocalClipQueue(), LocalWeights(), LocalStatus()
    )
    with PreferenceStore(source_run / "prefs.sqlite") as reused:
        assert reused.asked_pairs() <= labeler.asked  # never asked again
    labeler.close()
    assert main(["export", str(run), str(tmp_path / "again")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["answers"], printed["reused_answers"]) == (18, 12)
    with PreferenceStore(run / "prefs.sqlite") as store:  # as a store written before imports knew
        import_into(store, source_run / "prefs.sqlite")
    assert main(["export", str(run), str(tmp_path / "once")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["answers"], printed["reused_answers"]) == (18, 0)
    # a run with no labels of its own exports the reused ones
    train(
        small(backend="inprocess", labels=0, labels_from=str(run)),
        tmp_path / "only",
        progress=False,
        video=False,
    )
    assert main(["export", str(tmp_path / "only"), str(tmp_path / "only-out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["answers"], printed["reused_answers"]) == (18, 18)


def test_labels_from_is_checked_before_anything_is_written(source_run, tmp_path):
    with pytest.raises(ConfigError, match=r"^--labels 0: must be at least 2 .*0 with --labels-from"):
        small(labels=0)
    with pytest.raises(ConfigError, match=r"^--labels-from .*nowhere: .*nowhere: no such file or directory$"):
        train(small(labels_from=str(tmp_path / "nowhere")), tmp_path / "a", progress=False, video=False)
    with pytest.raises(ConfigError, match=r"its labels are of Pendulum-v1, this run is of CartPole-v1$"):
        config = small(env_id="CartPole-v1", labels_from=str(source_run), fixed_length=200)
        train(config, tmp_path / "b", progress=False, video=False)
    with pytest.raises(
        ConfigError, match=r"this run is of Pendulum-v1\(\); a run's env id is compared as written: "
    ):
        train(
            small(env_id="Pendulum-v1()", labels_from=str(source_run)),
            tmp_path / "c",
            progress=False,
            video=False,
        )
    assert not any((tmp_path / name).exists() for name in "abc")


def test_labels_0_needs_reused_labels_it_can_train_on(source_run, tmp_path):
    only_skips = tmp_path / "skips.sqlite"
    gather_labels(source_run, only_skips)
    with PreferenceStore(only_skips) as store:
        store._conn.execute("UPDATE answers SET answer = 'skipped'")
        store._conn.commit()
    with pytest.raises(
        ConfigError, match=r"none of its 12 answers can be trained on .* --labels 0 asks for no more"
    ):
        train(small(labels=0, labels_from=str(only_skips)), tmp_path / "c", progress=False, video=False)
    assert not (tmp_path / "c").exists()


def test_fit_reward_fits_a_model_on_stored_labels_alone(source_run, tmp_path):
    first = fit_reward(source_run, tmp_path / "fit", rounds=3)
    # the store file alone carries no settings: given the run's, the fit is the same
    fit_reward(source_run / "prefs.sqlite", tmp_path / "again", rounds=3, reward_model=SMALL_FIT)
    assert (first["labels"], first["answered"], first["rounds"]) == (trainable(source_run), 12, 3)
    model = load_reward_model(tmp_path / "fit")
    assert model.version == 3
    for name, weights in model.net.state_dict().items():  # a fit is deterministic in its seed
        torch.testing.assert_close(weights, load_reward_model(tmp_path / "again").net.state_dict()[name])
    rows = read_metrics(tmp_path / "fit" / "metrics.csv")
    assert [int(r["global_step"]) for r in rows] == [1, 2, 3]
    config = json.loads((tmp_path / "fit" / "config.json").read_text())
    assert (config["kind"], config["env_id"], config["fixed_length"]) == ("fit-reward", "Pendulum-v1", False)
    assert json.loads((tmp_path / "fit" / "summary.json").read_text())["labels"] == first["labels"]
    # its labels go on to the next run
    assert gather_labels(tmp_path / "fit", tmp_path / "next.sqlite").trainable == first["labels"]


def test_fit_reward_takes_the_source_runs_reward_model_settings_and_the_users_overrides(source_run, tmp_path):
    summary = fit_reward(source_run, tmp_path / "fit", rounds=1, reward_model={"ensemble_size": 2})
    assert summary["reward_model"]["ensemble_size"] == 2
    assert summary["reward_model"]["epochs_per_round"] == 2  # the source run's own setting
    with pytest.raises(ConfigError, match=r"^--reward-model ensemble_size=0: must be at least 1$"):
        fit_reward(source_run, tmp_path / "bad", reward_model={"ensemble_size": 0})
    with pytest.raises(ConfigError, match=r"^--rounds 0: must be at least 1$"):
        fit_reward(source_run, tmp_path / "bad", rounds=0)
    assert not (tmp_path / "bad").exists()


def test_fit_reward_from_the_command_line(source_run, tmp_path, capsys):
    assert main(["fit-reward", str(source_run), "--run-dir", str(tmp_path / "fit"), "--rounds", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == trainable(source_run)
    assert main(["fit-reward", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("prefrl fit-reward: error: ")


def interrupt(how: str) -> None:
    if how == "ctrl-c":
        raise KeyboardInterrupt
    os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's stop
    time.sleep(5)  # the handler raises before this ends


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_fit_reward_stopped_keeps_the_rounds_done(source_run, tmp_path, capsys, monkeypatch, how):
    from prefrl.reward.trainer import PreferenceTrainer

    train_round = PreferenceTrainer.train_round

    def interrupted_in_the_third(self):
        if self.rounds == 2:
            interrupt(how)
        return train_round(self)

    monkeypatch.setattr(PreferenceTrainer, "train_round", interrupted_in_the_third)
    assert main(["fit-reward", str(source_run), "--run-dir", str(tmp_path / "fit"), "--rounds", "50"]) == 3
    out = capsys.readouterr()
    reason = "interrupted after 2 of 50 rounds; the model of those rounds is saved"
    assert out.err == f"prefrl fit-reward: ended short: {reason}\n"
    summary = json.loads((tmp_path / "fit" / "summary.json").read_text())
    assert (summary["complete"], summary["incomplete_reason"], summary["rounds"]) == (False, reason, 2)
    assert load_reward_model(tmp_path / "fit").version == 2
    assert [int(r["global_step"]) for r in read_metrics(tmp_path / "fit" / "metrics.csv")] == [1, 2]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
@pytest.mark.parametrize("where", ["a new directory", "an empty directory"])
def test_fit_reward_stopped_in_its_first_round_leaves_the_directory_free(
    source_run, tmp_path, capsys, monkeypatch, how, where
):
    from prefrl.reward.trainer import PreferenceTrainer

    train_round = PreferenceTrainer.train_round
    monkeypatch.setattr(PreferenceTrainer, "train_round", lambda self: interrupt(how))
    fit = tmp_path / "fit"
    if where == "an empty directory":
        fit.mkdir()
    argv = ["fit-reward", str(source_run), "--run-dir", str(fit), "--rounds", "1"]
    assert main(argv) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "prefrl fit-reward: interrupted\n"
    if where == "a new directory":
        assert not fit.exists()
    else:  # as the user made it
        assert list(fit.iterdir()) == []
    monkeypatch.setattr(PreferenceTrainer, "train_round", train_round)
    assert main(argv) == 0  # the same directory, used again
    assert json.loads(capsys.readouterr().out)["rounds"] == 1


def test_no_command_overwrites_a_run_directory_that_holds_a_run(source_run, tmp_path, capsys):
    files = {p: p.read_bytes() for p in source_run.rglob("*") if p.is_file()}
    tiny = ["--steps", "64", "--ppo", "num_steps=8", "--no-video", "--quiet"]
    commands = {
        "fit-reward": ["fit-reward", str(source_run), "--rounds", "1"],
        "baseline": ["baseline", "Pendulum-v1", *tiny],
        "baseline --reward": ["baseline", "Pendulum-v1", "--reward", str(source_run), *tiny],
        "train": ["train", "Pendulum-v1", "--labels", "2", *tiny],
    }
    for name, argv in commands.items():
        assert main([*argv, "--run-dir", str(source_run)]) == 2, name
        err = capsys.readouterr().err
        assert err.endswith(
            f"error: {source_run} already holds a run; continue it with: prefrl resume {source_run}\n"
        )
    assert {p: p.read_bytes() for p in source_run.rglob("*") if p.is_file()} == files
    # a run of another kind is no more overwritten, and cannot be resumed
    other = tmp_path / "baseline"
    assert main(["baseline", "Pendulum-v1", *tiny, "--run-dir", str(other)]) == 0
    capsys.readouterr()
    assert main(["fit-reward", str(source_run), "--rounds", "1", "--run-dir", str(other)]) == 2
    assert capsys.readouterr().err == (
        f"prefrl fit-reward: error: {other} already holds a baseline run; choose another --run-dir "
        "(or remove that directory to make this run there)\n"
    )


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_fit_reward_refuses_a_seed_torch_cannot_take_and_writes_nothing(tmp_path, seed):
    with pytest.raises(ConfigError) as err:
        fit_reward(tmp_path / "no-such-run", tmp_path / "fit", seed=seed)
    assert str(err.value) == f"--seed {seed}: must be in [0, 9223372036854775808)"
    assert not (tmp_path / "fit").exists()


def test_fit_reward_warns_when_almost_no_answer_said_one_clip_was_better(tmp_path, capsys):
    from test_monitor import clip

    from prefrl.prefs.clips import Answer

    rng = np.random.default_rng(0)
    with PreferenceStore(tmp_path / "ties.sqlite", "CartPole-v1") as store:
        for i in range(12):
            query = store.add_query(clip(rng), clip(rng), agent_step=i, oracle="perfect", selection="random")
            store.record_answer(query, Answer.EQUAL if i else Answer.LEFT, oracle="perfect")
    summary = fit_reward(tmp_path / "ties.sqlite", tmp_path / "fit", rounds=1)
    assert summary["warnings"] == [
        "only 1 of 12 answers said one clip was better than the other (the rest: 11 equally good, 0 can't "
        "tell, 0 skipped), so the reward model had almost nothing to learn from. If the clips rarely show "
        "what is wanted (a sparse task), explore first (--explore-labels N and --selection diverse: "
        "docs/benchmarks/sparse.md), or give more labels"
    ]
    assert capsys.readouterr().err == f"prefrl: warning: {summary['warnings'][0]}\n"
    assert json.loads((tmp_path / "fit" / "summary.json").read_text())["warnings"] == summary["warnings"]


def test_more_labels_for_a_run_whose_agent_has_finished_pair_the_stored_clips_or_are_refused(
    source_run, tmp_path, capsys
):
    only = tmp_path / "only"
    train(
        small(backend="inprocess", labels=0, labels_from=str(source_run)), only, progress=False, video=False
    )
    config = json.loads((only / "config.json").read_text())
    with pytest.raises(ConfigError) as info:  # nothing to pair: it would end short at once
        resume(only, labels=4, progress=False, video=False)
    assert str(info.value) == (
        "--labels 4: the agent has taken all its 4096 steps, so no new clip will come, and no pair of the "
        f"0 clips the store holds is left to ask; give it more steps too, e.g. prefrl resume {only} --labels 4 "
        "--steps 8192"
    )
    assert json.loads((only / "config.json").read_text()) == config
    run = tmp_path / "run"
    train(small(backend="inprocess", labels=6), run, progress=False, video=False)
    capsys.readouterr()
    summary = resume(run, labels=8, progress=False, video=False)
    assert (summary["complete"], summary["labels_used"]) == (True, 8)
    assert capsys.readouterr().out.startswith(
        "prefrl: the agent has taken all its 4096 steps: the new labels pair the clips the store holds "
        "(of its earlier behaviour), 30 pairs not asked yet; for clips of it acting on, give it more steps "
        f"too, e.g. prefrl resume {run} --labels 8 --steps 8192\n"
    )


def test_fit_reward_into_a_directory_holding_a_store_is_refused_and_keeps_it(source_run, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    shutil.copy(source_run / "prefs.sqlite", labels / "prefs.sqlite")
    before = (labels / "prefs.sqlite").read_bytes()
    assert main(["fit-reward", str(labels), "--run-dir", str(labels), "--rounds", "1"]) == 2
    assert capsys.readouterr().err == (
        f"prefrl fit-reward: error: --run-dir {labels}: it holds a prefs.sqlite; choose another --run-dir\n"
    )
    assert [p.name for p in labels.iterdir()] == ["prefs.sqlite"]
    assert (labels / "prefs.sqlite").read_bytes() == before


def test_a_pair_open_in_the_source_when_its_labels_were_reused_is_imported_once_answered(tmp_path):
    source = tmp_path / "source"
    train(small(backend="inprocess", labels=4), source, progress=False, video=False)
    with PreferenceStore(source / "prefs.sqlite") as store:  # a pair asked, not answered yet
        first, second = store.labels()[:2]
        clips = store.get_clips({first.left_clip_id, second.left_clip_id})
        open_pair = store.add_query(
            clips[first.left_clip_id],
            clips[second.left_clip_id],
            agent_step=0,
            oracle="human",
            selection="random",
        )
    run = tmp_path / "run"
    train(small(backend="inprocess", labels=4, labels_from=str(source)), run, progress=False, video=False)
    key = (first.left_clip_id, second.left_clip_id)
    with PreferenceStore(run / "reused.sqlite") as reused:
        assert key in reused.asked_pairs() and key not in reused.asked_pairs(answered=True)
    with PreferenceStore(source / "prefs.sqlite") as store:  # answered in the source since
        store.record_answer(open_pair, Answer.LEFT, oracle="human")
    report = import_run(run, source)
    assert (report["answers_added"], report["answers_already_reused"]) == (1, 4)  # the new answer, once
    with PreferenceStore(run / "prefs.sqlite") as store:
        assert key in store.asked_pairs(answered=True)
