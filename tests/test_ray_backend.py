"""The ray backend (``prefrl train --backend ray``): the roles as Ray actors on a private
cluster on loopback, the agent's envs spread over rollout workers, and its faults."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from test_faults import answered_ids, assert_every_label_kept, run_with_kills
from test_runtime import small

from prefrl.cli import main
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.errors import ConfigError
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir
from prefrl.runtime.run import resume, train
from prefrl.utils.ray_cluster import RayConnectError, RayMissingError, connect

ray = pytest.importorskip("ray")

FAULT_RUNS = int(os.environ.get("PREFRL_FAULT_RUNS_RAY", "2"))


@pytest.fixture(scope="module")
def cluster():
    """One private cluster for the module: every run in this process joins it."""
    with connect(num_cpus=4) as ray_module:
        yield ray_module


def agents(env_id, num_envs, workers, seed, **env_kwargs):
    """A PPO agent on local envs and one on rollout workers, same settings and seed."""
    from prefrl.agent.ppo import PPOAgent
    from prefrl.runtime.rollout_workers import RolloutWorkers

    config = small(env_id=env_id, ppo={"num_envs": num_envs, "num_steps": 64}, **env_kwargs)
    ppo = config.ppo_config()
    local = VecEnv(
        [lambda: make_env(env_id, fixed_length=config.fixed_length or False)] * num_envs,
        capture_snapshots=True,
    )
    spread = RolloutWorkers(config.to_dict(), ppo, workers, seed=seed, capture_snapshots=True)
    return PPOAgent(local, ppo, total_steps=10_000, seed=seed), PPOAgent(
        spread, ppo, total_steps=10_000, seed=seed
    )


def test_rollout_workers_collect_with_the_agents_policy_in_the_runs_envs(cluster):
    here, there = agents("Pendulum-v1", 5, 2, seed=7)
    try:
        with torch.no_grad():  # a policy that acts (almost) deterministically: its mean
            there.policy.log_std.fill_(-30.0)
        first = here.collect(capture_snapshots=True)
        rollouts, norms = [], []
        for _ in range(4):  # 256 steps: past the end of the first episodes (200 steps)
            norms.append(copy.deepcopy(there.obs_norm))  # the statistics the policy acts with
            rollouts.append(there.collect(capture_snapshots=True))
        rollout = rollouts[0]
        assert rollout.obs.shape == (64, 5, 3) and rollout.snapshots.shape[:2] == (64, 5)
        # the same envs, seeded alike: the same first observations and states
        np.testing.assert_array_equal(rollout.obs[0], first.obs[0])
        np.testing.assert_array_equal(rollout.snapshots[0], first.snapshots[0])
        # the workers acted with the agent's policy and observation statistics
        for r, norm in zip(rollouts, norms, strict=True):
            seen = r.policy_obs.reshape(-1, 3)
            np.testing.assert_allclose(seen, norm(r.obs.reshape(-1, 3)), rtol=1e-6)
            np.testing.assert_allclose(r.policy_actions.reshape(-1, 1), there.actor.mode(seen), atol=1e-5)
        assert there.env_steps == 4 * 64 * 5 and rollouts[-1].env_steps == there.env_steps
        assert sorted((e.env_index, e.length) for _, e in there.episodes) == [(i, 200) for i in range(5)]
    finally:
        there.envs.close()
        here.envs.close()


def test_rollout_workers_give_atari_snapshots_of_one_width(cluster):
    """ALE states differ in length from env to env: the workers' snapshots are padded to
    one width, each holding the same state bytes as the local env's."""
    here, there = agents("ALE/Pong-v5", 3, 2, seed=3, fixed_length=256)
    try:
        a, b = there.collect(capture_snapshots=True), here.collect(capture_snapshots=True)
        np.testing.assert_array_equal(a.obs[0], b.obs[0])
        for x, y in zip(a.snapshots[0], b.snapshots[0], strict=True):
            n = int(x[0])
            assert n == int(y[0]) and x[1] == y[1]  # byte count, action
            assert x[2:].view(np.uint8)[:n].tobytes() == y[2:].view(np.uint8)[:n].tobytes()
            assert not x[2:].view(np.uint8)[n:].any()  # the padding
    finally:
        there.envs.close()
        here.envs.close()


def test_a_ray_run_with_two_rollout_workers_gets_its_whole_budget(cluster, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "Pendulum-v1", "--steps", "2048", "--labels", "8", "--clip-length", "25"]
    argv += ["--backend", "ray", "--workers", "2", "--ppo", "num_envs=4", "--ppo", "num_steps=256"]
    assert main([*argv, "--run-dir", str(run_dir), "--quiet", "--no-video"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True and summary["backend"] == "ray"
    assert summary["labels_used"] == 8 and summary["env_steps"] == 2048
    config = json.loads((run_dir / "config.json").read_text())
    assert config["workers"] == 2 and config["ray_address"] is None
    with PreferenceStore(run_dir / "prefs.sqlite") as store:
        assert store.pending_queries() == [] and store.num_answered() == 8


def test_a_ray_run_of_a_task_file_runs_on_a_cluster_started_before_the_file_was_trusted(
    cluster, tmp_path, capsys
):
    """The cluster's workers were started before this process trusted the file (as on a
    cluster started elsewhere, whose workers never see our environment): the actors and
    the rollout workers are told which task files the run trusts."""
    from test_tasks import write_task_file

    from prefrl.tasks import TRUSTED_TASK_FILES_ENV

    path = write_task_file(tmp_path, "leanray")
    assert str(path.resolve()) not in os.environ.get(TRUSTED_TASK_FILES_ENV, "")
    run_dir = tmp_path / "run"
    argv = ["train", "--task", f"{path}:leanray", "--steps", "1024", "--labels", "6", "--backend", "ray"]
    argv += ["--workers", "1", "--ppo", "num_envs=2", "--ppo", "num_steps=256"]
    assert main([*argv, "--run-dir", str(run_dir), "--quiet", "--no-video"]) == 0, capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True and summary["labels_used"] == 6 and summary["env_steps"] == 1024


def test_a_run_whose_actors_have_not_started_after_a_minute_says_so_once(capsys):
    from prefrl.runtime import ray_backend

    hub = ray_backend._Hub.__new__(ray_backend._Hub)  # its notice alone: no cluster
    hub.incarnation = {"agent": "a1", "labeler": None, "reward_trainer": None}
    hub.started, hub.start_notice_given = time.monotonic() - ray_backend.START_NOTICE_S + 5, False
    hub._notice_slow_start()
    assert capsys.readouterr().out == ""  # not yet
    hub.started -= 5
    hub._notice_slow_start()
    hub._notice_slow_start()
    assert capsys.readouterr().out == (
        "prefrl: after 60 s Ray has not started the run's labeler and reward_trainer actors yet: the cluster "
        "may be busy or short of CPUs (`ray status` shows it). The run goes on waiting; Ctrl-C stops it, "
        "every label kept\n"
    )


@pytest.mark.faults
@pytest.mark.parametrize("role", ["agent", "labeler", "reward_trainer"])
def test_a_role_actor_killed_at_random_moments_never_costs_a_label(cluster, tmp_path, role, capsys):
    base = int(os.environ.get("PREFRL_FAULT_SEED", "0")) or int(time.time())
    total_kills = 0
    for n in range(FAULT_RUNS):
        seed = base + n
        run_dir = tmp_path / f"run{n}"
        summary, kills, before = run_with_kills(run_dir, role, seed, backend="ray")
        total_kills += kills
        where = f"{role}, seed {seed} (replay: PREFRL_FAULT_SEED={seed} PREFRL_FAULT_RUNS_RAY=1)"
        assert_every_label_kept(summary, run_dir, before, where)
    assert total_kills >= 1  # the kills did land
    # a kill after the role finished its job is not seen (nothing asks it again)
    assert capsys.readouterr().out.count(f"the {role} actor died") >= total_kills // 2


@pytest.mark.faults
@pytest.mark.parametrize("role", ["agent", "labeler", "reward_trainer"])
def test_a_role_actor_stopped_at_a_random_moment_is_ended_and_restarted(
    cluster, tmp_path, role, capsys, monkeypatch
):
    monkeypatch.setenv("PREFRL_HANG_S", "5")
    seed = int(os.environ.get("PREFRL_FAULT_SEED", "0")) or int(time.time())
    summary, stops, before = run_with_kills(tmp_path / "run", role, seed, backend="ray", sig=signal.SIGSTOP)
    where = f"{role}, seed {seed} (replay: PREFRL_FAULT_SEED={seed})"
    assert_every_label_kept(summary, tmp_path / "run", before, where)
    out = capsys.readouterr().out
    # a stop after the role finished its job is not seen (nothing asks it again)
    assert (
        stops == 0 or f"the {role} actor died (hung: it sent nothing and used under 0.5 s of CPU in" in out
    ), where


@pytest.mark.faults
def test_a_ray_run_whose_driver_is_killed_resumes_with_every_label(cluster, tmp_path):
    run_dir = tmp_path / "run"
    argv = ["train", "Pendulum-v1", "--steps", "8192", "--labels", "16", "--clip-length", "25"]
    argv += ["--backend", "ray", "--ppo", "num_envs=2", "--ppo", "num_steps=256", "--no-video"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "prefrl.cli", *argv, "--run-dir", str(run_dir), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600  # only a safety: the loop ends on the sixth answer
        while len(answered_ids(run_dir)) < 6 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.poll() is None, "the run ended before it could be killed"
        assert RunDir(run_dir).running()  # the driver holds the run's lock
        driver.send_signal(signal.SIGKILL)  # its private cluster and actors die with it
        driver.wait(30)
    finally:
        driver.kill()
    assert not RunDir(run_dir).running()  # let go with the driver: no Ray process kept it
    before = answered_ids(run_dir)
    assert len(before) >= 6
    summary = resume(run_dir, progress=False, video=False)
    assert summary["complete"] is True, summary["incomplete_reason"]
    after = answered_ids(run_dir)
    assert before <= after and len(after) == 16


def test_without_ray_the_error_names_the_extra_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    with pytest.raises(RayMissingError, match=r"prefrl\[ray\]"):
        train(small(backend="ray"), tmp_path / "run", progress=False, video=False)
    assert not (tmp_path / "run").exists()
    argv = ["train", "Pendulum-v1", "--backend", "ray", "--run-dir", str(tmp_path / "cli")]
    assert main(argv) == 2
    assert "pip install 'prefrl[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_an_address_where_no_cluster_listens_fails_at_once(tmp_path):
    started = time.monotonic()
    with pytest.raises(RayConnectError, match=r"127\.0\.0\.1:9 .*ray start --head"):
        train(small(backend="ray", ray_address="127.0.0.1:9"), tmp_path / "run", progress=False, video=False)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 2}, "--workers: for the ray backend only; add --backend ray"),
        ({"ray_address": "auto"}, "--ray-address: for the ray backend only"),
        ({"backend": "ray", "workers": 3}, "--workers 3: more than the 2 envs the agent steps"),
        ({"backend": "ray", "workers": -1}, "--workers -1"),
    ],
)
def test_ray_settings_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        small(**changes)
