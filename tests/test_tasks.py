"""Behaviour tasks: the scripted persons' rewards and measures, and tasks from a user's file."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl import task_library, tasks
from prefrl.envs.make import base_env_id, make_env
from prefrl.envs.wrappers import RestartWhen
from prefrl.errors import ConfigError
from prefrl.play import play
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
from prefrl.tasks import get_task, trust_task_file

REPO = Path(__file__).resolve().parent.parent

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
    # a task without a trace has one measure; measure_all runs it on a policy's episodes
    push = lambda obs: np.full((len(obs), 1), 2.0)  # noqa: E731 - full torque counter-clockwise
    measured = tasks.measure_all(push, spin, episodes=2)
    assert list(measured) == ["counter-clockwise rotations per episode"]
    assert measured[spin.measure_name] == tasks.measure_behaviour(push, spin, episodes=2)
    assert all(turns > 0 for turns in measured[spin.measure_name])


def test_right_rewards_being_up_further_right_and_nothing_fallen():
    right = get_task("right")
    env = make_env(right.gym_id, fixed_length=True)
    up_right, up_left = np.array([1.0, 0, 0.0, 0]), np.array([-1.0, 0, 0.0, 0])
    fallen = np.array([1.0, 0, 0.5, 0])
    rewards = [right.behaviour_reward(env, s, 0, s) for s in (up_right, up_left, fallen)]
    assert rewards == [pytest.approx(3.4 / 4.8), pytest.approx(1.4 / 4.8), 0.0]
    # only upright steps with x > 0.5 count, 0.02 s each
    assert right.measure(env, rewards * 10) == pytest.approx(10 * 0.02)


def hopper_at(env, height, angle, turn_rate=0.0):
    """Put the backflip env's hopper at ``height`` m, torso ``angle`` rad, turning at
    ``turn_rate`` rad/s, legs straight; MuJoCo's contacts follow (set_state runs forward)."""
    inner = env.unwrapped
    qpos, qvel = inner.init_qpos.copy(), np.zeros(inner.model.nv)
    qpos[1], qpos[2], qvel[2] = height, angle, turn_rate
    inner.set_state(qpos, qvel)


def test_backflip_reads_foot_and_floor_contact_from_mujoco():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    env.reset(seed=0)
    flags = []
    for height, angle in [(1.2, 0.0), (2.25, 0.0), (0.1, math.pi)]:  # standing, in the air, on its head
        hopper_at(env, height, angle, turn_rate=-12.5)
        flags.append([extra.read(env.unwrapped) for extra in backflip.obs_extras])
        assert backflip.trace(env) == (angle, height, flags[-1][0])
    names = ["foot on the floor", "touching the floor", "torso turning rate"]
    names += ["turned in this flight (turns)", "landing credit"]
    assert [e.name for e in backflip.obs_extras] == names
    # no simulated time passed: no flight, no landing
    assert flags == [[1.0, 1.0, -12.5, 0.0, 0.0], [0.0, 0.0, -12.5, 0.0, 0.0], [0.0, 1.0, -12.5, 0.0, 0.0]]


def test_the_tumbling_backflip_pays_for_turning_in_the_air_uprightness_and_height():
    # the built-in backflip's person before landings were paid, which the tried persons in
    # docs/benchmarks/data/backflip_trials build on
    backflip = tasks.BACKFLIP_TUMBLING
    env = make_env(get_task("backflip").gym_id, fixed_length=True)
    env.reset(seed=0)
    reward = lambda: backflip.behaviour_reward(env, None, None, None)  # noqa: E731
    hopper_at(env, 2.25, 0.0, turn_rate=-3.0)  # 1 m up, upright, turning backwards at 3 rad/s
    assert reward() == pytest.approx(3.0 + 5.0 + 5.0)
    hopper_at(env, 2.25, -math.pi, turn_rate=-30.0)  # upside down, turning fast
    assert reward() == pytest.approx(30.0 - 5.0 + 5.0)
    hopper_at(env, 0.1, math.pi, turn_rate=-3.0)  # the same turn on its head on the floor
    assert reward() == pytest.approx(0.0 - 5.0 + 5.0 * (0.1 - 1.25))
    hopper_at(env, 2.25, 0.0, turn_rate=3.0)  # turning forwards costs, in the air
    assert reward() == pytest.approx(-3.0 + 5.0 + 5.0)
    hopper_at(env, 0.1, math.pi, turn_rate=3.0)  # and half as much on the floor
    assert reward() == pytest.approx(-1.5 - 5.0 + 5.0 * (0.1 - 1.25))


def fly(env, angles, height=2.25):
    """One step of simulated time per angle, the hopper at ``height`` m (in the air unless
    low enough to stand); the backflip's person reads each step once."""
    backflip = get_task("backflip")
    rewards = []
    for angle in angles:
        env.unwrapped.data.time += env.unwrapped.dt
        hopper_at(env, height, angle)
        rewards.append(backflip.behaviour_reward(env, None, None, None))
    return rewards


def test_backflip_pays_a_landing_after_a_whole_flip_fading_and_lost_at_a_lean():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    env.reset(seed=0)
    credit = lambda: backflip.obs_extras[4].read(env.unwrapped)  # noqa: E731
    turned = lambda: backflip.obs_extras[3].read(env.unwrapped)  # noqa: E731
    fly(env, [0.0], height=1.2)  # standing on the foot
    rewards = fly(env, np.linspace(0.0, FULL, 61)[1:])  # a whole backward turn in 60 steps
    assert turned() == pytest.approx(1.0)
    # in the air, upright at the end: 4 cos + 4 (2.25 - 1.25), no turning rate set
    assert rewards[-1] == pytest.approx(4.0 + 4.0)
    standing = (1.2 - 0.3) / 0.95  # upright, torso at 1.2 m
    landing = fly(env, [FULL] * 3, height=1.2)
    upright = 4.0 + 4.0 * (1.2 - 1.25)
    # the credit (1 whole turn times how well it stands) is paid 80 times, fading over 100 steps
    assert landing == [pytest.approx(upright + 80.0 * standing * (1 - k / 100)) for k in (1, 2, 3)]
    assert (turned(), credit()) == (0.0, pytest.approx(standing * 0.97))
    # leaning back 40 degrees loses it
    fly(env, [FULL - math.radians(40.0)], height=1.2)
    assert credit() == 0.0


def test_backflip_pays_half_for_a_flight_short_of_a_whole_flip():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    env.reset(seed=0)
    credit = lambda: backflip.obs_extras[4].read(env.unwrapped)  # noqa: E731
    fly(env, [0.0], height=1.2)
    short = -0.8 * 2 * math.pi  # four fifths of a turn from upright, down leaning 72 degrees
    fly(env, np.linspace(0.0, short, 41)[1:])
    fly(env, [short], height=1.1)
    assert credit() == 0.0  # lost at once: the landing leans over 30 degrees
    # a take-off leaning back 0.5 rad, 0.85 of a turn in the air, a landing leaning 25
    # degrees forwards: half of 0.85 times how well it stands
    fly(env, [-0.5], height=1.1)
    landed = -0.5 - 0.85 * 2 * math.pi
    fly(env, np.linspace(-0.5, landed, 41)[1:])
    fly(env, [landed], height=1.1)
    standing = math.cos(landed) * (1.1 - 0.3) / 0.95
    assert credit() == pytest.approx(0.5 * 0.85 * standing * 0.99)


def test_the_built_in_backflip_is_the_published_landing_person():
    # docs/benchmarks/tasks.md measured it as landing.py:upland80_w4_pink_whole: the same
    # rewards, observations and PPO settings, step for step, through a flip and random steps
    landing = REPO / "docs" / "benchmarks" / "data" / "backflip_trials" / "landing.py"
    trust_task_file(landing)
    trial, built_in = get_task(f"{landing}:upland80_w4_pink_whole"), get_task("backflip")
    assert trial.ppo == built_in.ppo == (("noise_beta", 1.0),)
    assert (trial.restart_when, trial.restart_after) == (built_in.restart_when, built_in.restart_after)
    actions = np.loadtxt(
        REPO / "docs" / "benchmarks" / "data" / "hopper_flip_search" / "actions.csv",
        delimiter=",",
        skiprows=1,
    )
    actions = np.concatenate([actions, np.random.default_rng(0).uniform(-1, 1, (300, 3))])
    envs = [make_env(task.gym_id, fixed_length=True) for task in (trial, built_in)]
    first = [env.reset(seed=0)[0] for env in envs]
    np.testing.assert_array_equal(first[0], first[1])
    credits = []
    for action in actions:
        (obs_a, r_a, *_, info_a), (obs_b, r_b, *_, info_b) = (env.step(action) for env in envs)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b and info_a.get("restarted") == info_b.get("restarted")
        credits.append(obs_b[-1])
    assert max(credits) > 0.5  # the flip landed and was paid


def test_backflip_sees_the_torso_angle_as_cos_and_sin_so_a_full_turn_looks_the_same():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    # Hopper's 11, the angle replaced by its cos and sin, then foot and floor contact, the
    # turning rate, the flight's turn and the landing credit
    assert env.observation_space.shape == (17,)
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
    # all but the flight's memory, which counts the jump of 2 pi in the air as a turn
    np.testing.assert_allclose(turned[:-2], same[:-2], atol=1e-6)
    angle = float(data.qpos[2])
    np.testing.assert_allclose(turned[-7:-5], [math.cos(angle), math.sin(angle)], atol=1e-6)
    # and the measure counts that turn
    episode = tasks.EpisodeTrace(env, [0.0], np.array([backflip.trace(env)]))
    assert backflip.measures[0].of(episode) == pytest.approx(1.0, abs=0.05)


# Hand-made hopper trajectories, one step per row: (torso angle in rad, height in m, foot down)
def stand(steps, angle=0.0, height=1.2):
    return [(angle, height, True)] * steps


def flight(steps, start, end, height=1.8):
    return [(start + (end - start) * (i + 1) / steps, height, False) for i in range(steps)]


def flips(*parts):
    angle, height, foot_down = np.array([row for part in parts for row in part], dtype=float).T
    return tasks.count_clean_flips(angle, height, foot_down > 0.5)


FULL = -2 * math.pi


def test_a_flip_that_lands_and_stands_is_clean():
    assert flips(stand(10), flight(60, 0.0, FULL), stand(30, FULL)) == 1
    # two in a row, each landing upright for 25 steps before the next take-off
    assert (
        flips(
            stand(10), flight(60, 0, FULL), stand(25, FULL), flight(60, FULL, 2 * FULL), stand(25, 2 * FULL)
        )
        == 2
    )


def test_a_roll_on_the_floor_is_no_flip():
    # rolling backwards on the floor (torso 0.3 m up), the foot touching the floor half way
    # round, then standing up: no flight turns a full turn
    roll = (
        flight(50, 0.0, FULL / 2, height=0.3)
        + stand(1, FULL / 2, 0.3)
        + flight(50, FULL / 2, FULL, height=0.3)
    )
    assert flips(stand(10), roll, stand(40, FULL)) == 0


def test_a_flip_that_ends_on_the_back_is_no_flip():
    # the foot touches down leaning 70 degrees back, then the hopper lies on its back
    lying = [(FULL - 1.2 - 0.03 * i, 1.0 - 0.7 * min(i, 20) / 20, True) for i in range(60)]
    assert flips(stand(10), flight(60, 0.0, FULL - 1.2), lying) == 0
    # or never puts its foot down again: a flight the episode ends in
    assert flips(stand(10), flight(60, 0.0, FULL - 1.6)) == 0


def test_a_flip_must_stand_25_steps_after_landing():
    falls = [(FULL - 0.6 - 0.1 * i, 1.0 - 0.04 * i, True) for i in range(20)]  # tips over backwards
    assert flips(stand(10), flight(60, 0.0, FULL), stand(24, FULL), falls) == 0
    assert flips(stand(10), flight(60, 0.0, FULL), stand(25, FULL), falls) == 1
    assert flips(stand(10), flight(60, 0.0, FULL), stand(24, FULL)) == 0  # the episode ends first
    crouched = stand(25, FULL, height=0.79)  # upright but below 0.8 m
    assert flips(stand(10), flight(60, 0.0, FULL), crouched) == 0


def test_a_flip_turns_a_full_turn_less_the_upright_lean_in_the_air():
    short = FULL + 0.5  # lands 28.6 degrees short of a full turn, still upright
    assert flips(stand(10), flight(60, 0.0, short), stand(30, short)) == 1
    # the same landing after a take-off 5.7 degrees back: 34.4 degrees short
    assert flips(stand(10, -0.1), flight(60, -0.1, short), stand(30, short)) == 0
    # turning forwards does not count
    assert flips(stand(10), flight(60, 0.0, -FULL), stand(30, -FULL)) == 0


def test_flights_are_the_stretches_off_the_floor_that_end_on_it():
    down = np.array([1, 0, 0, 1, 1, 0, 1, 0], dtype=bool)
    assert task_library.flights(down) == [(1, 3), (5, 6)]  # the last, still in the air, is left out
    assert task_library.flights(np.array([0, 0, 1], dtype=bool)) == [(0, 2)]
    assert task_library.flights(np.ones(4, dtype=bool)) == []


def test_count_clean_flips_wants_one_row_per_step():
    with pytest.raises(ValueError, match=r"must be \[steps\] each"):
        tasks.count_clean_flips(np.zeros(3), np.zeros(3), np.zeros(2, dtype=bool))


def test_the_published_open_loop_flip_is_a_clean_flip_when_played_again():
    # docs/benchmarks/data/hopper_flip_search: the actions scripts/hopper_flip_search.py found
    published = REPO / "docs" / "benchmarks" / "data" / "hopper_flip_search"
    actions = np.loadtxt(published / "actions.csv", delimiter=",", skiprows=1)
    env = gym.make("Hopper-v5", terminate_when_unhealthy=False)
    env.reset(seed=0)
    rows = []
    for action in actions:
        env.step(action)
        data = env.unwrapped.data  # type: ignore[attr-defined]
        rows.append((float(data.qpos[2]), float(data.qpos[1]), task_library.hopper_foot_down(env.unwrapped)))
    angle, height, foot = np.array(rows).T
    assert task_library.count_clean_flips(angle, height, foot > 0.5) == 1
    trajectory = np.loadtxt(published / "trajectory.csv", delimiter=",", skiprows=1)
    flip = slice(0, 120)  # take-off to standing after the landing (the rest is a fall)
    np.testing.assert_allclose(trajectory[flip, 1], np.round(angle[flip] / (2 * math.pi), 4), atol=1e-3)


def test_backflip_reports_clean_flips_next_to_backward_turns():
    backflip = get_task("backflip")
    assert [m.name for m in backflip.measures] == ["backward turns per episode", "clean flips per episode"]
    env = make_env(backflip.gym_id, fixed_length=True)
    env.reset(seed=0)
    hopper_at(env, 1.2, FULL)
    rows = stand(10) + flight(60, 0.0, FULL) + stand(30, FULL)
    episode = tasks.EpisodeTrace(env, [0.0] * len(rows), np.array(rows, dtype=float))
    assert [m.of(episode) for m in backflip.measures] == [pytest.approx(1.0), 1.0]
    # measured on the env: a hopper that does nothing falls and flips no time
    measured = tasks.measure_all(lambda obs: np.zeros((len(obs), 3)), backflip, episodes=2)
    assert list(measured) == ["backward turns per episode", "clean flips per episode"]
    assert measured["clean flips per episode"] == [0.0, 0.0]
    assert measured["backward turns per episode"] == tasks.measure_behaviour(
        lambda obs: np.zeros((len(obs), 3)), backflip, episodes=2
    )


def test_a_hopper_lying_on_the_floor_is_stood_up_again_within_the_episode():
    env = RestartWhen(
        gym.make("Hopper-v5", terminate_when_unhealthy=False).unwrapped, task_library.hopper_fallen, after=5
    )
    env.reset(seed=0)
    fresh = env.unwrapped.init_qpos[1]
    hopper_at(env, 0.1, math.pi)  # on its head
    assert task_library.hopper_fallen(env.unwrapped)
    infos = [env.step(np.zeros(3))[4] for _ in range(5)]
    assert [info.get("restarted", False) for info in infos] == [False] * 4 + [True]
    assert env.unwrapped.data.qpos[1] == pytest.approx(fresh, abs=0.01)  # standing again
    assert not task_library.hopper_fallen(env.unwrapped)
    # steps down count in a row: a hopper up again in between starts the count anew
    hopper_at(env, 0.1, math.pi)
    env.step(np.zeros(3))
    env.step(np.zeros(3))
    hopper_at(env, 1.25, 0.0)
    env.step(np.zeros(3))
    hopper_at(env, 0.1, math.pi)
    assert [env.step(np.zeros(3))[4].get("restarted", False) for _ in range(5)] == [False] * 4 + [True]
    with pytest.raises(ValueError, match="restart_after"):
        dataclasses.replace(get_task("backflip"), restart_after=0)
    with pytest.raises(ValueError, match=r"initial_fraction must be in \[0, 1\]"):
        dataclasses.replace(get_task("backflip"), initial_fraction=1.5)
    with pytest.raises(ValueError, match="decay_fraction must be above 0"):
        dataclasses.replace(get_task("backflip"), decay_fraction=0.0)


def test_a_restarted_episode_is_measured_stretch_by_stretch():
    backflip = get_task("backflip")
    env = make_env(backflip.gym_id, fixed_length=True)
    lying = [(FULL + 1.2, 0.2, False)] * 50  # a flip short by 1.2 rad, on its back
    rows = stand(10) + flight(60, 0.0, FULL) + stand(30, FULL) + flight(40, FULL, FULL + 1.2) + lying
    rows += stand(10) + flight(60, 0.0, FULL) + stand(30, FULL)  # restarted: up at 0 again
    restarted = np.zeros(len(rows), dtype=bool)
    restarted[len(rows) - 100] = True
    episode = tasks.EpisodeTrace(env, [0.0] * len(rows), np.array(rows, dtype=float), restarted)
    assert episode.stretches() == [slice(0, len(rows) - 100), slice(len(rows) - 100, len(rows))]
    turns = (2 * math.pi - 1.2 + 2 * math.pi) / (2 * math.pi)  # what each stretch turned
    assert [m.of(episode) for m in backflip.measures] == [pytest.approx(turns), 2.0]
    unsplit = tasks.EpisodeTrace(env, episode.rewards, episode.states)
    assert unsplit.stretches() == [slice(0, len(rows))]
    assert backflip.measures[0].of(unsplit) == pytest.approx(1.0)  # only the last angle


def walker_at(env, height, angle=0.0, speed=0.0, left_thigh=0.0):
    """Put the stork env's walker at ``height`` m, torso ``angle`` rad, moving forwards at
    ``speed`` m/s, its purple (left) thigh swung by ``left_thigh`` rad."""
    inner = env.unwrapped
    qpos, qvel = inner.init_qpos.copy(), np.zeros(inner.model.nv)
    qpos[1], qpos[2], qpos[6], qvel[0] = height, angle, left_thigh, speed
    inner.set_state(qpos, qvel)


def test_stork_reads_each_foot_on_the_floor_and_pays_for_the_purple_one_alone():
    stork = get_task("stork")
    env = make_env(stork.gym_id, fixed_length=True)
    env.reset(seed=0)
    reward = lambda: stork.behaviour_reward(env, None, None, None)  # noqa: E731
    assert [e.name for e in stork.obs_extras] == ["purple foot on the floor", "other foot on the floor"]
    walker_at(env, 1.2)  # both feet down, upright
    assert [e.read(env.unwrapped) for e in stork.obs_extras] == [1.0, 1.0]
    assert reward() == pytest.approx(1.0 + 2.0 * (1.2 - 1.25) + 1.0)
    # the other leg (tan) swung forwards: only the purple foot down
    inner = env.unwrapped
    qpos = inner.init_qpos.copy()
    qpos[1], qpos[3] = 1.2, -1.2
    inner.set_state(qpos, np.zeros(inner.model.nv))
    assert [e.read(inner) for e in stork.obs_extras] == [1.0, 0.0]
    assert stork.trace(env) == (1.0, 0.0, 0.0, 1.2)
    assert reward() == pytest.approx(1.0 + 2.0 * (1.2 - 1.25) + 2.0)
    walker_at(env, 2.25, speed=-1.5)  # in the air, moving backwards: both feet off, speed costs
    assert [e.read(inner) for e in stork.obs_extras] == [0.0, 0.0]
    assert reward() == pytest.approx(1.0 + 2.0 * 1.0 + 1.0 - 1.5)
    walker_at(env, 0.3, angle=math.pi / 2)  # lying on its back
    assert reward() == pytest.approx(
        0.0 + 2.0 * (0.3 - 1.25) + stork.obs_extras[0].read(inner) + 1.0 - stork.obs_extras[1].read(inner)
    )


def test_steps_in_stretches_counts_only_poses_held_long_enough():
    flags = [1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert task_library.steps_in_stretches(np.array(flags, dtype=bool), 3) == 3 + 4
    assert task_library.steps_in_stretches(np.array(flags, dtype=bool), 1) == 9
    assert task_library.steps_in_stretches(np.zeros(5, dtype=bool), 1) == 0


def test_seconds_on_one_leg_wants_the_purple_foot_alone_upright_and_held():
    def seconds(left, right, angle=0.0, height=1.2):
        n = len(left)
        return task_library.seconds_on_one_leg(
            np.array(left, dtype=bool),
            np.array(right, dtype=bool),
            np.full(n, angle),
            np.full(n, height),
            0.008,
        )

    assert seconds([1] * 30, [0] * 30) == pytest.approx(30 * 0.008)
    assert seconds([1] * 24 + [0] + [1] * 24, [0] * 49) == 0.0  # a stride, twice: never held 25 steps
    assert seconds([1] * 30, [1] * 30) == 0.0  # both feet down
    assert seconds([0] * 30, [1] * 30) == 0.0  # the other leg
    assert seconds([1] * 30, [0] * 30, angle=math.radians(31)) == 0.0  # leaning over
    assert seconds([1] * 30, [0] * 30, angle=2 * math.pi) == pytest.approx(30 * 0.008)  # upright after a turn
    assert seconds([1] * 30, [0] * 30, height=0.7) == 0.0  # fallen to its knee


def test_a_measure_that_reads_the_trace_can_be_a_tasks_headline_measure():
    stork = get_task("stork")
    assert stork.measure_name == "seconds standing on the purple (left) leg per episode"
    assert [m.name for m in stork.measures] == [stork.measure_name]
    measured = tasks.measure_all(lambda obs: np.zeros((len(obs), 6)), stork, episodes=1)
    assert measured == {stork.measure_name: [0.0]}  # a limp walker falls over
    bare = dict(name="x", env_id="CartPole-v1", instruction="?", behaviour_reward=None)
    with pytest.raises(ValueError, match="differs from its Measure's name"):
        tasks.Task(**bare, measure=tasks.Measure("a", lambda episode: 0.0), measure_name="b")
    with pytest.raises(ValueError, match="name what its measure counts"):
        tasks.Task(**bare, measure=lambda env, rewards: 0.0)


def test_a_task_on_a_namespaced_env_registers_and_makes_its_env():
    task = tasks.register_task(
        tasks.Task(
            name="nsbreakout",
            env_id="MinAtar/Breakout-v1",
            instruction="?",
            behaviour_reward=lambda env, obs, action, next_obs: 1.0,
            measure=lambda env, rewards: float(sum(rewards)),
            measure_name="steps",
            horizon=20,
            clip_length=10,
        )
    )
    assert task.gym_id == "prefrl/MinAtarBreakoutNsbreakout-v0"
    assert get_task("backflip").gym_id == "prefrl/HopperBackflip-v0"
    env = make_env(task.gym_id, fixed_length=True)
    env.reset(seed=0)
    assert env.step(0)[1] == 1.0  # the behaviour reward
    env.close()
    # an env of one's own, MODULE:ID: the task goes by its ID
    own = tasks.register_task(
        dataclasses.replace(task, name="ownpendulum", env_id="gymnasium.envs:Pendulum-v1")
    )
    assert own.gym_id == "prefrl/PendulumOwnpendulum-v0" and base_env_id(own.gym_id) == "Pendulum-v1"
    env = make_env(own.gym_id, fixed_length=True)
    assert env.reset(seed=0)[0].shape == (3,) and env.step(np.zeros(1, np.float32))[1] == 1.0
    env.close()
    for made in (task, own):
        del gym.registry[made.gym_id], tasks.TASKS[made.name]


@pytest.mark.parametrize(
    ("paid", "shown"), [(np.zeros(4), "an array of shape (4,)"), (None, "None"), ("much", "'much'")]
)
def test_a_scripted_person_paying_other_than_one_number_is_one_line_naming_the_task(paid, shown):
    task = tasks.register_task(
        tasks.Task(
            name="paysodd",
            env_id="CartPole-v1",
            instruction="?",
            behaviour_reward=lambda env, obs, action, next_obs: paid,
            measure=lambda env, rewards: float(sum(rewards)),
            measure_name="steps",
            horizon=20,
            clip_length=10,
        )
    )
    try:
        env = make_env(task.gym_id, fixed_length=True)
        env.reset(seed=0)
        with pytest.raises(ConfigError) as caught:
            env.step(0)
        assert str(caught.value) == (
            f"task paysodd: its behaviour_reward must return one number per step, not {shown}"
        )
        env.close()
    finally:
        del gym.registry[task.gym_id], tasks.TASKS[task.name]


def test_an_obs_extra_with_bounds_no_box_takes_is_refused_naming_it():
    read = task_library.hopper_foot_down
    for low, high in ((1.0, 0.0), (math.nan, 1.0), (0.0, math.nan)):
        with pytest.raises(
            ConfigError, match=rf"^ObsExtra 'foot': bounds low={low}, high={high}: give low <= high"
        ):
            tasks.ObsExtra("foot", read, low, high)
    assert tasks.ObsExtra("foot", read, 1.0, 1.0).high == 1.0
    assert tasks.ObsExtra("foot", read).low == -math.inf


def test_a_short_stork_run_goes_end_to_end_and_is_measured(tmp_path):
    config = TrainConfig(
        task="stork",
        steps=1024,
        labels=6,
        backend="inprocess",
        num_evals=1,
        eval_episodes=1,
        ppo={"num_steps": 512},
        reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
    )
    summary = train(config, tmp_path / "run", progress=False, video=False)
    assert summary["labels_used"] == 6 and summary["env_steps"] >= 1024
    played = play(tmp_path / "run", episodes=1, out=tmp_path / "stork.mp4", max_frames=50)
    seconds = played["seconds standing on the purple (left) leg per episode"]
    assert seconds == [0.0] * 5  # play measures 5 episodes; 1024 steps teach no standing yet
    assert (tmp_path / "stork.mp4").stat().st_size > 0


def test_a_task_brings_its_own_budgets_unless_told_otherwise():
    from prefrl.cli import build_parser

    assert (TrainConfig(task="backflip").labels, TrainConfig(task="backflip").steps) == (900, 1_000_000)
    assert (TrainConfig(task="right").labels, TrainConfig(task="right").steps) == (400, 600_000)
    assert TrainConfig(task="right").ppo == {"gamma": 0.99}
    assert (TrainConfig(task="stork").labels, TrainConfig(task="stork").steps) == (500, 500_000)
    assert (TrainConfig(env_id="CartPole-v1").labels, TrainConfig(env_id="CartPole-v1").steps) == (
        100,
        100_000,
    )
    told = TrainConfig(task="backflip", labels=2, steps=2048)
    assert (told.labels, told.steps) == (2, 2048)
    args = build_parser().parse_args(["train", "--task", "spin"])
    assert (args.labels, args.steps) == (None, None)  # left to the task: 200 labels, 200k steps


def test_unknown_task_names_the_known_ones_and_how_to_add_one():
    with pytest.raises(ValueError, match=r"unknown task 'nope'.*backflip, right, spin, stork.*FILE\.py:NAME"):
        get_task("nope")


TASK_FILE = """
    from prefrl.tasks import Measure, ObsExtra, Task, register_task

    def lean_right(env, obs, action, next_obs):
        return float(next_obs[2] > 0.0)

    def cart_right(inner):
        return float(inner.state[0] > 0.0)

    register_task(Task(
        name="{name}", env_id="CartPole-v1", instruction="Which pole leans to the right?",
        behaviour_reward=lean_right, measure=lambda env, rewards: float(sum(rewards)),
        measure_name="steps leaning right", horizon=100, clip_length=25,
        obs_extras=(ObsExtra("cart right of the centre", cart_right, 0.0, 1.0),),
        trace=lambda env: (cart_right(env.unwrapped),),
        more_measures=(Measure("steps right of the centre", lambda episode: float(episode.states[:, 0].sum())),),
        ppo=(("gamma", 0.97),),
    ))
"""


def write_task_file(tmp_path, name):
    path = tmp_path / f"{name}_tasks.py"
    path.write_text(textwrap.dedent(TASK_FILE.format(name=name)))
    return path


def small_task_run(task: str, steps: int = 512, labels: int = 4) -> TrainConfig:
    """A run of ``task`` small enough for a test: in-process, a few labels, short rollouts."""
    return TrainConfig(
        task=task,
        steps=steps,
        labels=labels,
        backend="inprocess",
        num_evals=1,
        eval_episodes=1,
        ppo={"num_envs": 2, "num_steps": 128},
        reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
    )


def test_a_task_from_a_file_errors_clearly(tmp_path):
    path = write_task_file(tmp_path, "leanerr")
    trust_task_file(path)
    with pytest.raises(ValueError, match=r"registers no task 'other'; known tasks: .*leanerr"):
        get_task(f"{path}:other")
    with pytest.raises(ValueError, match=r"task file .*missing\.py not found"):
        get_task(f"{tmp_path / 'missing.py'}:x")
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(path))} is a file: name its task too, .*:NAME; known"
    ):
        get_task(str(path))


def test_a_task_file_that_imports_a_missing_module_or_does_not_compile_is_one_line(tmp_path, capsys):
    from prefrl.cli import main

    (tmp_path / "needs.py").write_text("import prefrl_no_such_module\n")
    (tmp_path / "broken.py").write_text("from prefrl.tasks import Task\n\ndef reward(:\n    pass\n")
    cases = {
        "needs.py": f"task file {tmp_path / 'needs.py'} imports prefrl_no_such_module, which is not "
        "installed: install the package that provides it",
        "broken.py": f"task file {tmp_path / 'broken.py'} is not valid Python: {tmp_path / 'broken.py'}:3: ",
    }
    for name, words in cases.items():
        task = f"{tmp_path / name}:x"
        assert main(["train", "--task", task, "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"prefrl train: error: --task {task}: {words}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"measure_name": ""}, "task 'x': name what its measure counts (measure_name)"),
        ({"horizon": 0, "clip_length": 1}, "task 'x': horizon 0: an episode lasts at least 1 step"),
        ({"clip_length": 0}, "task 'x': clip_length 0: a clip is 1 to horizon (1000) steps long"),
        (
            {"horizon": 20, "clip_length": 25},
            "task 'x': clip_length 25: a clip is 1 to horizon (20) steps long",
        ),
        ({"labels": 1}, "task 'x': labels 1: a run needs at least 2 (a pair)"),
        ({"steps": -1}, "task 'x': steps -1: give 0 (the env's default) or more"),
        ({"restart_after": 0}, "task 'x': restart_after must be at least 1 step"),
    ],
)
def test_a_task_out_of_range_is_a_config_error(change, message):
    fields = dict(
        name="x",
        env_id="CartPole-v1",
        instruction="?",
        behaviour_reward=None,
        measure=lambda env, rewards: 0.0,
        measure_name="steps",
    )
    with pytest.raises(ConfigError) as err:
        tasks.Task(**{**fields, **change})
    assert str(err.value) == message


@pytest.mark.parametrize("name", ["my task", "a/b", "", "lean:right", "-lean", "lean\n"])
def test_a_task_name_gymnasium_or_the_command_line_cannot_take_is_refused(name):
    with pytest.raises(ConfigError) as err:
        tasks.Task(
            name=name,
            env_id="CartPole-v1",
            instruction="?",
            behaviour_reward=None,
            measure=lambda env, rewards: 0.0,
            measure_name="steps",
        )
    assert str(err.value) == (
        f"task name {name!r}: a name may hold only letters, digits, '_', '-' and '.', starting with a "
        "letter or digit (it is written in --task FILE.py:NAME and in the task's gymnasium id), "
        "e.g. 'lean_right'"
    )


def test_task_names_of_letters_digits_and_separators_register():
    made = [
        tasks.register_task(
            tasks.Task(
                name=name,
                env_id="CartPole-v1",
                instruction="?",
                behaviour_reward=lambda env, obs, action, next_obs: 1.0,
                measure=lambda env, rewards: 0.0,
                measure_name="steps",
                horizon=20,
                clip_length=5,
            )
        ).gym_id
        for name in ("lean_right2", "lean-v2", "lean.left", "3lean")
    ]
    assert made == [
        "prefrl/CartPoleLean_right2-v0",
        "prefrl/CartPoleLean-v2-v0",
        "prefrl/CartPoleLean.left-v0",
        "prefrl/CartPole3lean-v0",
    ]
    assert all(made_id in gym.registry for made_id in made)
    for name in made:
        del gym.registry[name]
    for name in ("lean_right2", "lean-v2", "lean.left", "3lean"):
        del tasks.TASKS[name]


def test_a_task_file_whose_task_is_refused_is_one_line_naming_the_file_and_line(tmp_path, capsys):
    from prefrl.cli import main

    path = write_task_file(tmp_path, "leanclip")
    path.write_text(path.read_text().replace("clip_length=25", "clip_length=0"))
    task = f"{path}:leanclip"
    assert main(["train", "--task", task, "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    line = path.read_text().splitlines().index("register_task(Task(") + 1
    assert capsys.readouterr().err == (
        f"prefrl train: error: --task {task}: task file {path}:{line}: task 'leanclip': clip_length 0: "
        "a clip is 1 to horizon (100) steps long\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_tasks_ppo_settings_are_its_runs_and_its_references_unless_told_otherwise(tmp_path):
    from prefrl.baseline import BaselineSettings

    path = write_task_file(tmp_path, "leanppo")
    trust_task_file(path)
    assert TrainConfig(env_id="CartPole-v1").ppo_config().gamma == 0.98  # the env's own
    config = TrainConfig(task=f"{path}:leanppo")
    assert config.ppo == {"gamma": 0.97} and config.ppo_config().gamma == 0.97
    told = TrainConfig(task=f"{path}:leanppo", ppo={"gamma": 0.9, "num_envs": 2})
    assert told.ppo == {"gamma": 0.9, "num_envs": 2}
    # PPO on the scripted person's reward: the task's settings, then --ppo
    reference = BaselineSettings(env_id="prefrl/CartPoleLeanppo-v0")
    assert reference.ppo_config().gamma == 0.97 and reference.ppo_config({"gamma": 0.9}).gamma == 0.9
    assert BaselineSettings(env_id="CartPole-v1").ppo_config().gamma == 0.98


def test_baseline_trains_on_a_task_file_and_retrains_on_its_runs_learned_reward_only_when_trusted(
    tmp_path, capsys
):
    """``prefrl baseline --task FILE.py:NAME``: PPO on the scripted person's reward (the
    task's reference); ``--reward RUN_DIR`` of a run of a task file loads that file only
    if the user trusts it, and trains on the task's env."""
    from prefrl.cli import main
    from prefrl.reward.model import RewardModel
    from prefrl.rundir import RunDir

    small = ["--steps", "512", "--ppo", "num_envs=2", "--ppo", "num_steps=256", "--quiet", "--no-video"]
    path = write_task_file(tmp_path, "leanref")
    assert main(["baseline", "--task", f"{path}:leanref", "--run-dir", str(tmp_path / "ref"), *small]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] == 512
    config = json.loads((tmp_path / "ref" / "config.json").read_text())
    assert config["env_id"] == "prefrl/CartPoleLeanref-v0" and config["task"] == f"{path.resolve()}:leanref"
    assert config["fixed_length"] is True and config["ppo"]["gamma"] == 0.97  # the task's settings
    assert main(["baseline", "Pendulum-v1", "--task", f"{path}:leanref", *small]) == 2
    assert capsys.readouterr().err.endswith("the task runs on CartPole-v1, not Pendulum-v1\n")
    assert main(["baseline", *small]) == 2
    assert "no env: give ENV_ID" in capsys.readouterr().err

    their = write_task_file(tmp_path, "leanlearned")  # another file: not loaded in this process yet
    env = make_env("prefrl/CartPoleLeanref-v0")  # the same spaces as leanlearned's env
    run = RunDir(tmp_path / "their-run")
    RewardModel(env.observation_space.shape, env.action_space, seed=0).save(run.reward_checkpoint)
    task = f"{their.resolve()}:leanlearned"
    run.write_config({"kind": "train", "env_id": "prefrl/CartPoleLeanlearned-v0", "task": task, "ppo": {}})
    out = tmp_path / "retrained"
    retrain = ["baseline", "--reward", str(run.path), "--run-dir", str(out), *small]
    assert main(retrain) == 2
    assert capsys.readouterr().err == (
        f"prefrl baseline: error: config.json of {run.path} names the task file {their.resolve()}, which runs "
        f"code when loaded; run it only if you trust it: add --trust-task-file (or pass --task {task} again)\n"
    )
    assert main([*retrain, "--task", f"{path}:leanref"]) == 2
    assert "is not the task of" in capsys.readouterr().err
    assert not out.exists()
    assert main([*retrain, "--trust-task-file"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["env_id"], config["task"], config["reward"]) == (
        "prefrl/CartPoleLeanlearned-v0",
        task,
        "learned",
    )
    assert config["fixed_length"] is True  # none in the run's config.json: a task's episodes are fixed-length


def test_a_task_from_a_file_runs_and_is_found_again_in_a_fresh_process(tmp_path, monkeypatch):
    path = write_task_file(tmp_path, "leanrun")
    monkeypatch.chdir(tmp_path)
    trust_task_file(path.name)  # what `prefrl train --task` does; the fresh process inherits it
    config = small_task_run(f"{path.name}:leanrun", steps=1024, labels=6)  # relative to the working directory
    assert config.task == f"{path.resolve()}:leanrun" and config.env_id == "prefrl/CartPoleLeanrun-v0"
    assert config.fixed_length is True and config.clip_length == 25
    summary = train(config, tmp_path / "run", progress=False, video=False)
    assert summary["labels_used"] == 6 and summary["env_steps"] >= 1024
    env = make_env(config.env_id, fixed_length=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs[4] == float(env.unwrapped.state[0] > 0)  # CartPole's 4, then the extra
    played = play(tmp_path / "run", out=tmp_path / "play.mp4")
    assert len(played["steps leaning right"]) == len(played["steps right of the centre"]) == 5
    assert all(0 <= steps <= 100 for steps in played["steps right of the centre"])
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


def test_the_labels_and_the_window_of_a_task_file_run_open_elsewhere_only_when_trusted(tmp_path, capsys):
    """``prefrl fit-reward`` and ``prefrl label`` on a run of a task file, from a fresh
    process: refused, naming the flag, until the user trusts the file; then the fit's run
    names the task, so that ``prefrl baseline --reward`` trains on the task's env."""
    from prefrl.baseline import run_baseline
    from prefrl.cli import main
    from prefrl.ui.run_info import open_run

    path = write_task_file(tmp_path, "leanfit")
    name = f"{path.resolve()}:leanfit"
    trust_task_file(path)  # what `prefrl train --task` does
    config = small_task_run(name)
    run = tmp_path / "run"
    assert train(config, run, progress=False, video=False)["labels_used"] == 4
    human = tmp_path / "human"  # a run a person labels, of the same task
    human.mkdir()
    (human / "config.json").write_text(
        json.dumps({**json.loads((run / "config.json").read_text()), "oracle": "human"})
    )

    fresh = {k: v for k, v in os.environ.items() if k != tasks.TRUSTED_TASK_FILES_ENV}
    untrusted = f"names the task file {path.resolve()}, which runs code when loaded; run it only if you trust it: add --trust-task-file"
    for command in (["fit-reward", str(run), "--run-dir", str(tmp_path / "nofit")], ["label", str(human)]):
        out = subprocess.run(
            [sys.executable, "-m", "prefrl.cli", *command], env=fresh, capture_output=True, text=True
        )
        assert out.returncode == 2 and untrusted in out.stderr, out.stderr
    assert not (tmp_path / "nofit").exists()

    assert (
        main(
            ["fit-reward", str(run), "--run-dir", str(tmp_path / "fit"), "--rounds", "1", "--trust-task-file"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["labels"] >= 1
    assert json.loads((tmp_path / "fit" / "config.json").read_text())["task"] == name
    # the store alone names no task: --task says which; another task's env is refused
    store = str(run / "prefs.sqlite")
    assert (
        main(["fit-reward", store, "--run-dir", str(tmp_path / "fit2"), "--rounds", "1", "--task", name]) == 0
    )
    assert json.loads((tmp_path / "fit2" / "config.json").read_text())["task"] == name
    assert main(["fit-reward", store, "--run-dir", str(tmp_path / "fit3"), "--task", "spin"]) == 2
    assert capsys.readouterr().err.endswith(
        f"--task spin: the task runs on prefrl/PendulumSpin-v0, the labels of {store} on prefrl/CartPoleLeanfit-v0\n"
    )
    summary = run_baseline(
        reward=tmp_path / "fit",
        steps=256,
        run_dir=tmp_path / "retrained",
        trust_task_file=True,
        ppo_overrides={"num_envs": 2, "num_steps": 128},
        progress=False,
        video=False,
    )
    assert summary["env_steps"] == 256
    assert (
        json.loads((tmp_path / "retrained" / "config.json").read_text())["env_id"]
        == "prefrl/CartPoleLeanfit-v0"
    )
    assert open_run(human, trust_task_file=True).instruction == "Which pole leans to the right?"
    with pytest.raises(tasks.TaskMismatch, match="is not the task of"):
        open_run(human, task="spin")


def test_a_task_file_run_made_elsewhere_opens_with_the_users_copy_of_the_file(tmp_path):
    """A run of a task file, shared with someone whose copy of the file is elsewhere (its
    config.json names a path that is not on their machine): every command says so and
    asks for ``--task COPY.py:NAME``; given that, it opens with the copy, and ``prefrl
    resume`` records the copy in config.json."""
    from prefrl.ui.run_info import open_run

    alice = tmp_path / "alice"
    alice.mkdir()
    original = write_task_file(alice, "leanmoved")
    trust_task_file(original)
    config = small_task_run(f"{original.resolve()}:leanmoved")
    assert train(config, alice / "run", progress=False, video=False)["labels_used"] == 4
    bob = tmp_path / "bob"  # the run and a copy of the file, on a machine without Alice's
    shutil.copytree(alice / "run", bob / "run")
    copy = bob / "my_copy.py"
    shutil.copy(original, copy)
    original.unlink()
    run, mine = bob / "run", f"{copy.resolve()}:leanmoved"
    human = bob / "human"  # a run of the same task that a person labels
    human.mkdir()
    (human / "config.json").write_text(
        json.dumps({**json.loads((run / "config.json").read_text()), "oracle": "human"})
    )

    def prefrl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "prefrl.cli", *args], capture_output=True, text=True)

    out = prefrl("play", str(run), "--trust-task-file", "--out", str(bob / "a.mp4"))
    assert out.returncode == 2, out.stderr
    assert out.stderr.endswith(
        f"names the task file {original.resolve()}, which is not on this machine (the run was made or "
        "moved elsewhere): pass --task FILE.py:leanmoved with your copy of that file\n"
    )
    out = prefrl("play", str(run), "--task", f"{bob / 'nothere.py'}:leanmoved")
    assert out.returncode == 2 and f"task file {bob / 'nothere.py'} not found" in out.stderr, out.stderr
    assert (
        prefrl("play", str(run), "--task", str(copy) + ":leanmoved", "--out", str(bob / "b.mp4")).returncode
        == 0
    )
    assert open_run(human, task=str(copy) + ":leanmoved").task == mine  # the window renders with the copy
    fit = prefrl(
        "fit-reward", str(run), "--task", f"{copy}:leanmoved", "--rounds", "1", "--run-dir", str(bob / "fit")
    )
    assert fit.returncode == 0, fit.stderr
    assert json.loads((bob / "fit" / "config.json").read_text())["task"] == mine
    resumed = prefrl(
        "resume", str(run), "--task", f"{copy}:leanmoved", "--steps", "768", "--no-video", "--quiet"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "config.json").read_text())["task"] == mine
    assert json.loads((run / "summary.json").read_text())["env_steps"] >= 768
    assert prefrl("play", str(run), "--trust-task-file", "--out", str(bob / "c.mp4")).returncode == 0


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_play_refuses_a_seed_torch_cannot_take(tmp_path, seed):
    with pytest.raises(ConfigError) as err:
        play(tmp_path / "no-such-run", seed=seed)
    assert str(err.value) == f"--seed {seed}: must be in [0, 9223372036854775808)"
