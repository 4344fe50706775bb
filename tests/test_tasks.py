"""Behaviour tasks: the scripted persons' rewards and measures, and tasks from a user's file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from prefrl import tasks
from prefrl.envs.make import make_env
from prefrl.play import play
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
from prefrl.tasks import get_task, trust_task_file

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_trusted_task_files(monkeypatch):
    """Each test starts trusting no task file, and what it trusts ends with it."""
    monkeypatch.setattr(tasks, "_TRUSTED", set())
    monkeypatch.delenv(tasks.TRUSTED_TASK_FILES_ENV, raising=False)


def test_spin_counts_net_counter_clockwise_turns():
    spin = get_task("spin")
    env = make_env(spin.gym_id, fixed_length=True)
    obs = np.array([1.0, 0.0, 0.0])
    # 4 rad/s counter-clockwise for 200 steps of 0.05 s = 40 rad
    reward = spin.behaviour_reward(env, obs, None, np.array([1.0, 0.0, 4.0]))
    assert reward == 0.5
    assert spin.measure(env, [reward] * 200) == pytest.approx(40 / (2 * math.pi))
    assert spin.measure(env, [-reward] * 200) == pytest.approx(-40 / (2 * math.pi))


def test_right_rewards_being_up_further_right_and_nothing_fallen():
    right = get_task("right")
    env = make_env(right.gym_id, fixed_length=True)
    up_right, up_left = np.array([1.0, 0, 0.0, 0]), np.array([-1.0, 0, 0.0, 0])
    fallen = np.array([1.0, 0, 0.5, 0])
    rewards = [right.behaviour_reward(env, s, 0, s) for s in (up_right, up_left, fallen)]
    assert rewards == [pytest.approx(3.4 / 4.8), pytest.approx(1.4 / 4.8), 0.0]
    # only upright steps with x > 0.5 count, 0.02 s each
    assert right.measure(env, rewards * 10) == pytest.approx(10 * 0.02)


def test_backflip_pays_for_backward_turning_and_height():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    env.reset(seed=0)
    data = env.unwrapped.data
    data.qpos[1], data.qvel[2] = 1.0, -3.0  # 1 m up, turning backwards at 3 rad/s
    assert backflip.behaviour_reward(env, None, None, None) == pytest.approx(3.0 - 0.5)
    data.qpos[1], data.qvel[2] = 0.25, 3.0  # on the floor, turning forwards
    assert backflip.behaviour_reward(env, None, None, None) == pytest.approx(-3.0 - 2.0)


def test_backflip_sees_the_torso_angle_as_cos_and_sin_so_a_full_turn_looks_the_same():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    assert env.observation_space.shape == (12,)  # Hopper's 11, the angle replaced by cos and sin
    env.reset(seed=0)
    data = env.unwrapped.data
    inner = env.unwrapped
    env.step(np.zeros(3))
    state = inner.state_vector().copy()
    qpos, qvel = state[: inner.model.nq].copy(), state[inner.model.nq :].copy()
    inner.set_state(qpos, qvel)
    same = env.step(np.zeros(3))[0]
    qpos[2] -= 2 * math.pi  # one full backward turn later
    inner.set_state(qpos, qvel)
    turned = env.step(np.zeros(3))[0]
    np.testing.assert_allclose(turned, same, atol=1e-6)
    angle = float(data.qpos[2])
    np.testing.assert_allclose(turned[-2:], [math.cos(angle), math.sin(angle)], atol=1e-6)
    # and the measure counts that turn
    assert backflip.measure(env, []) == pytest.approx(1.0, abs=0.05)


def test_a_task_brings_its_own_budgets_unless_told_otherwise():
    from prefrl.cli import build_parser

    assert (TrainConfig(task="backflip").labels, TrainConfig(task="backflip").steps) == (900, 1_000_000)
    assert (TrainConfig(task="right").labels, TrainConfig(task="right").steps) == (400, 300_000)
    assert (TrainConfig(env_id="CartPole-v1").labels, TrainConfig(env_id="CartPole-v1").steps) == (
        100,
        100_000,
    )
    told = TrainConfig(task="backflip", labels=2, steps=2048)
    assert (told.labels, told.steps) == (2, 2048)
    args = build_parser().parse_args(["train", "--task", "spin"])
    assert (args.labels, args.steps) == (None, None)  # left to the task: 200 labels, 200k steps


def test_unknown_task_names_the_known_ones_and_how_to_add_one():
    with pytest.raises(ValueError, match=r"unknown task 'nope'.*backflip, right, spin.*FILE\.py:NAME"):
        get_task("nope")


TASK_FILE = """
    from prefrl.tasks import Task, register_task

    def lean_right(env, obs, action, next_obs):
        return float(next_obs[2] > 0.0)

    register_task(Task(
        name="{name}", env_id="CartPole-v1", instruction="Which pole leans to the right?",
        behaviour_reward=lean_right, measure=lambda env, rewards: float(sum(rewards)),
        measure_name="steps leaning right", horizon=100, clip_length=25,
    ))
"""


def write_task_file(tmp_path, name):
    path = tmp_path / f"{name}_tasks.py"
    path.write_text(textwrap.dedent(TASK_FILE.format(name=name)))
    return path


def test_a_task_from_a_file_errors_clearly(tmp_path):
    path = write_task_file(tmp_path, "leanerr")
    trust_task_file(path)
    with pytest.raises(ValueError, match=r"registers no task 'other'; known tasks: .*leanerr"):
        get_task(f"{path}:other")
    with pytest.raises(ValueError, match=r"task file .*missing\.py not found"):
        get_task(f"{tmp_path / 'missing.py'}:x")


def test_a_task_from_a_file_runs_and_is_found_again_in_a_fresh_process(tmp_path, monkeypatch):
    path = write_task_file(tmp_path, "leanrun")
    monkeypatch.chdir(tmp_path)
    trust_task_file(path.name)  # what `prefrl train --task` does; the fresh process inherits it
    config = TrainConfig(
        task=f"{path.name}:leanrun",  # relative to the working directory
        steps=1024,
        labels=6,
        backend="inprocess",
        num_evals=1,
        eval_episodes=1,
        ppo={"num_envs": 2, "num_steps": 128},
        reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
    )
    assert config.task == f"{path.resolve()}:leanrun" and config.env_id == "prefrl/CartPoleLeanrun-v0"
    assert config.fixed_length is True and config.clip_length == 25
    summary = train(config, tmp_path / "run", progress=False, video=False)
    assert summary["labels_used"] == 6 and summary["env_steps"] >= 1024
    assert play(tmp_path / "run", out=tmp_path / "play.mp4")["steps leaning right"]
    # a child process or `prefrl resume` elsewhere rebuilds the config from config.json alone
    code = (
        "import json, sys; from prefrl.runtime.config import TrainConfig; from prefrl.envs.make import make_env; "
        "c = TrainConfig.from_dict(json.load(open(sys.argv[1]))); "
        "print(make_env(c.env_id, fixed_length=c.fixed_length).spec.id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run" / "config.json")],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "prefrl/CartPoleLeanrun-v0"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task"] == config.task
