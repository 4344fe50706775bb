"""End-to-end runs of the preference pipeline (small budgets: seconds each)."""

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL_RUN_FLAGS
from test_store import flip_byte, make_clip

from prefrl.agent.evaluate import evaluation_warning
from prefrl.cli import main
from prefrl.envs.make import episode_horizon, make_env
from prefrl.errors import ConfigError
from prefrl.metrics import column, read_metrics
from prefrl.oracles import make_oracle
from prefrl.prefs.exchange import import_run
from prefrl.prefs.repair import repair_store
from prefrl.prefs.store import PreferenceStore
from prefrl.reward import load_reward_model
from prefrl.rundir import RunDir
from prefrl.runtime.channels import ClipBatch, LocalClipQueue, LocalStatus, LocalWeights
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunInterrupted, RunStuck
from prefrl.runtime.labeler import LabelerRole
from prefrl.runtime.multiprocess import ORPHAN_EXIT_S
from prefrl.runtime.run import resume, train
from prefrl.utils.checkpoint import WAY_OUT, load_checkpoint

SMALL = dict(
    env_id="Pendulum-v1",
    steps=4096,
    labels=12,
    clip_length=25,
    num_evals=2,
    eval_episodes=2,
    ppo={"num_envs": 2, "num_steps": 256},
    reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
)


def small(**changes):
    return TrainConfig(**{**SMALL, **changes})


def store_answers(run_dir):
    with PreferenceStore(Path(run_dir) / "prefs.sqlite") as store:
        labels = store.labels()
        clips = store.get_clips({c for lbl in labels for c in (lbl.left_clip_id, lbl.right_clip_id)})
        return [
            (clips[lbl.left_clip_id].true_return, clips[lbl.right_clip_id].true_return, lbl.answer)
            for lbl in labels
        ]


def test_inprocess_run_is_deterministic(tmp_path):
    first = train(small(backend="inprocess"), tmp_path / "a", progress=False, video=False)
    second = train(small(backend="inprocess"), tmp_path / "b", progress=False, video=False)
    assert first["labels_used"] == second["labels_used"] == 12
    assert store_answers(tmp_path / "a") == store_answers(tmp_path / "b")
    wa, wb = load_reward_model(tmp_path / "a"), load_reward_model(tmp_path / "b")
    assert wa.version == wb.version > 0
    for k, v in wa.net.state_dict().items():
        torch.testing.assert_close(v, wb.net.state_dict()[k], rtol=0, atol=0)
    assert first["final_eval_return"] == second["final_eval_return"]


def test_multiprocess_run_end_to_end(tmp_path):
    summary = train(small(), tmp_path / "run", progress=False, video=True)
    run = tmp_path / "run"
    assert summary["labels_used"] == 12 and summary["env_steps"] >= 4096
    assert summary["complete"] is True and summary["agent_wait_share"] == 0  # a synthetic oracle: never waits
    assert summary["answers"]["left"] + summary["answers"]["right"] + summary["answers"]["equal"] == 12
    for key in ("final_eval_return", "final_train_return", "reward_val_accuracy", "env_steps_per_sec"):
        assert summary[key] is not None, key
    assert json.loads((run / "summary.json").read_text())["labels_used"] == 12
    rows = read_metrics(run / "metrics.csv")
    for key in ("labels/answered", "reward/val_accuracy", "charts/episodic_return", "eval/mean_return"):
        assert column(rows, key)[0], key
    assert (run / "learning_curve.png").exists() and (run / "videos" / "final_policy.mp4").exists()
    assert load_reward_model(run).version == summary["reward_model_version"]
    # the agent trained on the learned reward from the first model on
    assert min(column(rows, "reward/version_used")[1]) >= 1


def test_runs_leave_no_file_descriptor_open(tmp_path):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    train(small(), tmp_path / "warm-up", progress=False, video=False)  # first uses open fonts, caches
    before = open_fds()
    for n in range(2):
        train(small(), tmp_path / f"r{n}", progress=False, video=False)
    # (weights sent with the multiprocessing pickler left their shared memory open here)
    assert open_fds() <= before + 2


def test_a_killed_child_is_restarted_and_the_run_completes(tmp_path, capsys):
    result = {}
    config = small(steps=8192)
    thread = threading.Thread(
        target=lambda: result.update(train(config, tmp_path / "run", progress=False, video=False))
    )
    thread.start()
    victim = None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline:
        victim = next((p for p in mp.active_children() if p.name == "prefrl-reward_trainer"), None)
        time.sleep(0.2)
    assert victim is not None
    trained = RunDir(tmp_path / "run").trainer_checkpoint
    while not trained.exists() and time.time() < deadline + 60:  # let it do some work first: one round
        time.sleep(0.1)
    assert trained.exists()
    os.kill(victim.pid, signal.SIGKILL)
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert result["labels_used"] == 12 and result["env_steps"] >= 8192
    assert "the reward_trainer process died" in capsys.readouterr().out


def cli(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "prefrl.cli", *args],
        env=env,
        start_new_session=True,
        **kwargs,
    )


def wait_for_labels(run_dir, n, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        db = Path(run_dir) / "prefs.sqlite"
        if db.exists() and (Path(run_dir) / "checkpoints" / "agent.pt").exists():
            with PreferenceStore(db) as store:
                if store.num_answered() >= n:
                    return store.num_answered()
        time.sleep(0.3)
    raise AssertionError(f"{run_dir} never reached {n} labels")


def child_pids(parent):
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


ARGS = [
    "Pendulum-v1",
    "--steps",
    "30000",
    "--labels",
    "40",
    *SMALL_RUN_FLAGS,
]


@pytest.mark.parametrize("how", ["kill", "ctrl-c", "sigterm-inprocess"])
def test_resume_after_a_stopped_run_keeps_every_label(tmp_path, how):
    run = tmp_path / "run"
    backend = ["--backend", "inprocess"] if how == "sigterm-inprocess" else []
    proc = cli("train", *ARGS, *backend, "--run-dir", str(run), stderr=subprocess.PIPE, text=True)
    before = wait_for_labels(run, 12)
    if how == "kill":
        children = child_pids(proc.pid)
        assert len(children) >= 3
        proc.kill()  # the supervisor dies outright: its children must notice and end too
        proc.wait(10)
        # each role notices within ORPHAN_EXIT_S and a poll; more on a loaded machine
        deadline = time.time() + ORPHAN_EXIT_S + 12
        while any(alive(pid) for pid in children) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in children)
        _, err = proc.communicate(timeout=30)
        assert "leaked" not in err, err  # no semaphore (or shared memory) was left behind
    else:
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        else:
            proc.send_signal(signal.SIGTERM)  # what a scheduler sends
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert f"prefrl resume {run}" in err
    with PreferenceStore(run / "prefs.sqlite") as store:
        kept = store.num_answered()
        answered_ids = [lbl.query_id for lbl in store.labels()]
    assert kept >= before
    summary = resume(run, progress=False, video=False)
    assert summary["labels_used"] == 40 and summary["env_steps"] >= 30000
    with PreferenceStore(run / "prefs.sqlite") as store:
        assert [lbl.query_id for lbl in store.labels()][: len(answered_ids)] == answered_ids
        assert store.pending_queries() == []


@pytest.mark.parametrize(("stopped_in", "evaluated_at"), [(1, [2560, 4096]), (2, [2048, 4096])])
def test_a_run_stopped_during_an_evaluation_evaluates_again_when_resumed(
    tmp_path, monkeypatch, stopped_in, evaluated_at
):
    """The agent is saved just before an evaluation, marked: a run stopped during one
    resumes from those steps and evaluates at its first rollout (during the last one: at
    once), so metrics.csv keeps every evaluation."""
    from prefrl.runtime import agent as agent_module

    evaluate_both = agent_module.evaluate_both
    calls: list[int] = []

    def stopped(agent, *args, **kwargs):
        calls.append(agent.env_steps)
        if len(calls) == stopped_in:
            raise KeyboardInterrupt
        return evaluate_both(agent, *args, **kwargs)

    monkeypatch.setattr(agent_module, "evaluate_both", stopped)
    with pytest.raises(RunInterrupted):
        train(small(backend="inprocess", checkpoint_every=1000), tmp_path / "r", progress=False, video=False)
    checkpoint = load_checkpoint(tmp_path / "r" / "checkpoints" / "agent.pt", "agent")
    assert (checkpoint["env_steps"], checkpoint["evaluating"]) == (calls[-1], True)
    monkeypatch.setattr(agent_module, "evaluate_both", evaluate_both)
    summary = resume(tmp_path / "r", progress=False, video=False)
    evaluated, _ = column(read_metrics(tmp_path / "r" / "metrics.csv"), "eval/mean_return")
    assert evaluated == evaluated_at and summary["complete"]
    checkpoint = load_checkpoint(tmp_path / "r" / "checkpoints" / "agent.pt", "agent")
    assert checkpoint["evaluating"] is False


def test_a_run_whose_store_or_agent_checkpoint_is_gone_is_not_resumed_in_silence(tmp_path, capsys):
    run = RunDir(tmp_path / "r")
    train(small(backend="inprocess"), run.path, progress=False, video=False)
    run.store_path.rename(tmp_path / "kept.sqlite")
    for extra in run.path.glob("prefs.sqlite-*"):
        extra.unlink()
    with pytest.raises(FileNotFoundError, match=r"prefs.sqlite is missing, but the run had 12 answers"):
        resume(run.path, steps=8192, progress=False, video=False)
    assert not run.store_path.exists()  # no new store was started
    run.store_path.touch()  # emptied
    with pytest.raises(FileNotFoundError, match=r"prefs.sqlite is empty, but the run had 12 answers"):
        resume(run.path, steps=8192, progress=False, video=False)
    assert run.store_path.stat().st_size == 0
    assert json.loads(run.config_path.read_text())["steps"] == 4096  # nor the budget changed
    (tmp_path / "kept.sqlite").rename(run.store_path)
    run.agent_checkpoint.unlink()
    capsys.readouterr()
    summary = resume(run.path, steps=8192, progress=False, video=False)
    out = capsys.readouterr().out
    assert (
        f"warning: no agent checkpoint ({run.agent_checkpoint}), though the agent had reached step 4096"
        in out
    )
    assert summary["labels_used"] == 12 and summary["complete"] is True


def test_a_damaged_checkpoint_names_the_way_out_and_deleting_it_resumes(tmp_path, capsys):
    trained = tmp_path / "trained"
    train(small(backend="inprocess"), trained, progress=False, video=False)
    for kind in ("agent", "reward_model", "reward_trainer"):
        run = RunDir(shutil.copytree(trained, tmp_path / kind))
        path = run.checkpoints / f"{kind}.pt"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short by a power loss
        resume_further = ["resume", str(run.path), "--steps", "8192", "--quiet", "--no-video"]
        capsys.readouterr()
        assert main(resume_further) == 2
        assert capsys.readouterr().err == (
            f"prefrl resume: error: {path} is not a readable checkpoint (truncated, or not a torch file); "
            f"delete it and resume (prefrl resume {run.path}): {WAY_OUT[kind]}\n"
        )
        path.unlink()
        assert main(resume_further) == 0, capsys.readouterr().err
        summary = run.read_summary()
        assert (summary["complete"], summary["labels_used"], summary["env_steps"]) == (True, 12, 8192), kind
        assert summary["reward_model_version"] > 0
        load_checkpoint(path, kind)  # written again


def test_every_damaged_checkpoint_is_named_at_once(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    train(small(), run.path, progress=False, video=False)  # multiprocess: each role loads its own
    damaged = [run.agent_checkpoint, run.trainer_checkpoint]
    for path in damaged:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    resume_further = ["resume", str(run.path), "--steps", "8192", "--quiet", "--no-video"]
    capsys.readouterr()
    assert main(resume_further) == 2
    err = capsys.readouterr().err
    assert err == (
        f"prefrl resume: error: 2 of the run's checkpoints cannot be loaded: "
        f"(1) {damaged[0]} is not a readable checkpoint (truncated, or not a torch file); "
        f"delete it and resume (prefrl resume {run.path}): {WAY_OUT['agent']} | "
        f"(2) {damaged[1]} is not a readable checkpoint (truncated, or not a torch file); "
        f"delete it and resume (prefrl resume {run.path}): {WAY_OUT['reward_trainer']}\n"
    )
    assert json.loads(run.config_path.read_text())["steps"] == 4096  # refused before anything changed
    for path in damaged:
        path.unlink()
    assert main(resume_further) == 0, capsys.readouterr().err
    summary = run.read_summary()
    assert (summary["complete"], summary["labels_used"], summary["env_steps"]) == (True, 12, 8192)


def test_a_finished_run_trains_further_with_a_larger_budget(tmp_path):
    run = tmp_path / "r"
    first = train(small(backend="inprocess"), run, progress=False, video=False)
    assert first["env_steps"] == 4096 and first["labels_used"] == 12
    rows_before = read_metrics(run / "metrics.csv")
    with pytest.raises(ValueError, match="below the run's budget of 4096"):
        resume(run, steps=2048, progress=False, video=False)
    more = resume(run, steps=8192, labels=20, progress=False, video=False)
    assert more["env_steps"] == 8192 and more["labels_used"] == 20
    config = json.loads((run / "config.json").read_text())
    assert (config["steps"], config["labels"], config["kind"]) == (8192, 20, "train")
    rows = read_metrics(run / "metrics.csv")  # one run's metrics, continued
    assert rows[: len(rows_before)] == rows_before and int(rows[-1]["global_step"]) == 8192
    assert float(rows[len(rows_before)]["wall_time"]) >= float(rows_before[-1]["wall_time"])  # one clock
    agent = load_checkpoint(RunDir(run).agent_checkpoint, "agent")
    assert agent["total_steps"] == 8192  # its learning rate anneals over the new budget
    # every label given: the labeler has nothing to report, the status still counts them
    resume(run, steps=10240, progress=False, video=False)
    status = json.loads((run / "status.json").read_text())
    assert (status["labels_answered"], status["agent_step"], status["running"]) == (20, 10240, False)


def test_a_run_that_ended_before_its_first_clip_sends_its_first_clips_when_resumed(tmp_path):
    # 256 steps over 4 envs: 64 steps each, shorter than a clip of 150
    run = tmp_path / "r"
    config = small(backend="inprocess", steps=256, clip_length=150, ppo={"num_envs": 4, "num_steps": 64})
    first = train(config, run, progress=False, video=False)
    assert (first["complete"], first["labels_used"]) == (False, 0)
    assert first["incomplete_reason"].endswith(
        "Its --steps 256 over 4 envs are 64 steps each, fewer than a clip of 150: "
        f"prefrl resume {run} --steps 1024 gives each env a whole clip more"
    )
    more = resume(run, steps=1024, progress=False, video=False)  # as advised: clips come
    assert (more["env_steps"], more["labels_used"]) == (1024, 6)  # 4 clips: every pair of them asked
    more = resume(run, steps=2048, progress=False, video=False)
    assert (more["complete"], more["labels_used"], more["env_steps"]) == (True, 12, 2048)


def test_a_finished_run_whose_labels_changed_asks_and_trains_on_them_when_resumed(tmp_path, capsys):
    run = RunDir(tmp_path / "r")
    assert train(small(backend="inprocess"), run.path, progress=False, video=False)["complete"]
    # `prefrl repair` sets a damaged clip's answers aside: their labels go back to the budget
    with PreferenceStore(run.store_path) as store:
        victim = store.labels()[0].left_clip_id
    flip_byte(run.store_path, victim, "obs", 140)
    kept = repair_store(run.path)["answered"]
    assert kept < 12
    capsys.readouterr()
    summary = resume(run.path, progress=False, video=False)
    assert (
        f"prefrl: {run.path}: the store now holds {kept} of 12 answers (changed since the run ended); "
        "asking the rest\n" in capsys.readouterr().out
    )
    with PreferenceStore(run.store_path) as store:
        assert store.num_answered() == 12 and store.pending_queries() == []
    assert summary["complete"] and json.loads(run.summary_path.read_text())["labels_used"] == 12
    # labels imported into it (another run's) are trained on
    train(small(backend="inprocess", seed=1), tmp_path / "other", progress=False, video=False)
    import_run(run.path, tmp_path / "other")
    with PreferenceStore(run.store_path) as store:
        answered, trainable = store.num_answered(), store.num_trainable()
    assert answered > 12
    version = load_reward_model(run.path).version
    summary = resume(run.path, progress=False, video=False)
    assert (
        f"prefrl: {run.path}: the store now holds {answered} answers, {trainable} to train on (12 answers "
        "when the run ended); training the reward model on them\n" in capsys.readouterr().out
    )
    assert summary["complete"] and summary["labels_used"] == answered
    assert load_reward_model(run.path).version > version
    trained = column(read_metrics(run.metrics_path), "reward/labels")[1]
    assert trained[-1] == trainable
    # and then it is complete: nothing to do
    assert resume(run.path, progress=False, video=False)["labels_used"] == answered
    assert f"prefrl: {run.path} is complete;" in capsys.readouterr().out


def test_impossible_settings_fail_before_anything_is_written(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^--clip-length 500: longer than an episode of Pendulum-v1 \(200 steps\)"
    ):
        train(small(clip_length=500), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match=r"^--teacher grumpy: unknown oracle .grumpy"):
        train(small(teacher="grumpy"), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_inprocess_run_that_cannot_progress_says_why(tmp_path):
    # the labeler never gets enough labels for the first model: nothing can ever change
    config = small(backend="inprocess", labels=4, initial_fraction=1.0)
    config.pool_size = 1  # one clip: no pair can be formed
    with pytest.raises(RunStuck, match="cannot progress"):
        train(config, tmp_path / "r", progress=False, video=False)


def test_query_videos_keep_every_pair_that_was_asked(tmp_path):
    summary = train(
        small(backend="inprocess", labels=6, query_videos=True), tmp_path / "r", progress=False, video=False
    )
    videos = sorted((tmp_path / "r" / "videos").glob("query_*.mp4"))
    assert summary["labels_used"] == 6
    assert [v.name for v in videos] == [f"query_{i:05d}.mp4" for i in range(1, 7)]
    assert all(v.stat().st_size > 1000 for v in videos)


def test_questions_already_in_the_store_are_answered_when_due_and_never_past_the_budget(tmp_path):
    """Unanswered queries in a synthetic run's store (asked before a crash, or imported
    from another run) are answered as the labeler's own are: when the schedule wants them,
    and none past the label budget."""
    config = small(labels=4)
    run = RunDir.create(tmp_path / "r", "train", config.env_id, 0)
    run.write_config({"kind": "train", **config.to_dict()})
    rng = np.random.default_rng(0)
    clips = [make_clip(rng, config.clip_length, env_id=config.env_id) for _ in range(12)]
    with PreferenceStore(run.store_path, env_id=config.env_id) as store:
        for k in range(6):
            store.add_query(
                clips[2 * k], clips[2 * k + 1], agent_step=0, oracle="perfect", selection="random"
            )
    queue = LocalClipQueue()
    queue.put(ClipBatch(clips, agent_step=0))
    role = LabelerRole(config, run.path, queue, LocalWeights(), LocalStatus())
    try:
        for _ in range(3):
            role.step()
        assert config.schedule().labels_wanted(0) == role.store.num_answered() == 1
        queue.put(ClipBatch([], agent_step=config.steps, final=True))
        for _ in range(3):
            role.step()
        assert role.done and role.store.num_answered() == 4
        assert [query.query_id for query in role.store.pending_queries()] == [5, 6]
    finally:
        role.close()


def test_a_labeler_started_again_gives_its_teacher_the_pairs_it_answered(tmp_path):
    """A resumed run's teacher measures returns against the range of every pair it was
    asked (not only those since the restart), and its random numbers go on."""
    config = small(backend="inprocess", labels=6, teacher="stochastic")
    train(config, tmp_path / "r", progress=False, video=False)
    with PreferenceStore(tmp_path / "r" / "prefs.sqlite") as store:
        returns = store.answered_returns("stochastic(beta=10.0)")
    assert sorted(returns) == sorted((left, right) for left, right, _ in store_answers(tmp_path / "r"))
    role = LabelerRole(config, tmp_path / "r", LocalClipQueue(), LocalWeights(), LocalStatus())
    try:
        scale = role.oracle.return_scale
        assert (scale.lo, scale.hi) == (min(map(min, returns)), max(map(max, returns)))
        fresh = make_oracle("stochastic", seed=config.seed)
        fresh._rng.random(len(returns))
        assert role.oracle._rng.random() == fresh._rng.random()
    finally:
        role.close()


def test_a_run_whose_evaluations_outweigh_its_training_is_warned_before_it_starts(tmp_path, capsys):
    """Atari's fixed-length episodes are 27,000 steps: 20 of them per evaluation dwarf a
    short run's training, which then seems to hang. The warning names the flags."""
    pong = make_env("ALE/Pong-v5", fixed_length=True)
    try:
        assert episode_horizon(pong) == 27_000
    finally:
        pong.close()
    assert evaluation_warning(4096, 1024, 10, 10, 27_000) == (
        "the policy's 4 evaluation(s) may take up to 2,160,000 env steps (20 episodes of up to 27,000 "
        "steps each), 527.3 times the 4,096 of training; --eval-episodes and --num-evals make them fewer"
    )
    assert evaluation_warning(10_000_000, 1024, 10, 10, 27_000) is None
    assert evaluation_warning(4096, 1024, 10, 10, None) is None  # a game played to its end
    config = small(eval_episodes=8, backend="inprocess")  # 2 evaluations x 16 episodes x 200 steps
    train(config, tmp_path / "r", progress=False, video=False)
    warning = (
        "prefrl: warning: the policy's 2 evaluation(s) may take up to 6,400 env steps (16 episodes of up "
        "to 200 steps each), 1.6 times the 4,096 of training; --eval-episodes and --num-evals make them fewer"
    )
    assert capsys.readouterr().err.splitlines()[0] == warning
    argv = ["baseline", "Pendulum-v1", "--steps", "4096", "--ppo", "num_envs=2", "--ppo", "num_steps=256"]
    assert (
        main(
            [
                *argv,
                "--eval-episodes",
                "8",
                "--num-evals",
                "2",
                "--run-dir",
                str(tmp_path / "b"),
                "--quiet",
                "--no-video",
            ]
        )
        == 0
    )
    assert capsys.readouterr().err.splitlines()[0] == warning
    train(small(backend="inprocess"), tmp_path / "light", progress=False, video=False)  # 1,600 steps
    assert "warning: the policy's" not in capsys.readouterr().err


def test_the_agent_is_saved_before_each_evaluation(tmp_path, monkeypatch):
    """An evaluation of long episodes takes minutes: a run stopped in one resumes from the
    steps taken, not from the checkpoint before."""
    from prefrl.runtime import agent as agent_module

    evaluate_both = agent_module.evaluate_both
    saved_at: list[tuple[int, int]] = []

    def evaluate_after_a_look(agent, *args, **kwargs):
        checkpoint = load_checkpoint(tmp_path / "r" / "checkpoints" / "agent.pt", "agent")
        saved_at.append((agent.env_steps, int(checkpoint["env_steps"])))
        return evaluate_both(agent, *args, **kwargs)

    monkeypatch.setattr(agent_module, "evaluate_both", evaluate_after_a_look)
    train(small(backend="inprocess", checkpoint_every=1000), tmp_path / "r", progress=False, video=False)
    assert len(saved_at) == 2 and all(steps == saved for steps, saved in saved_at)
