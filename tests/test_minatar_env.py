"""MinAtar through prefrl's image path: channels first, colour frames, snapshots, restarts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("minatar")

from prefrl.envs import make_env, snapshotter_for
from prefrl.envs.minatar import GAMES, PALETTE, render_channels


@pytest.mark.parametrize("name", sorted(GAMES))
def test_observations_are_object_channels_first(name):
    env = make_env(f"MinAtar/{name}-v1")
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape
    assert obs.shape[1:] == (10, 10) and set(np.unique(obs)) <= {0, 1}
    assert isinstance(env.action_space, gym.spaces.Discrete)


def test_all_actions_on_request():
    assert make_env("MinAtar/Breakout-v1", minimal_actions=False).action_space.n == 6
    assert make_env("MinAtar/Breakout-v1").action_space.n == 3


def test_seed_repeats_the_game():
    runs = []
    for _ in range(2):
        env = make_env("MinAtar/SpaceInvaders-v1")
        obs = [env.reset(seed=4)[0]]
        obs += [env.step(i % 4)[0] for i in range(50)]
        runs.append(np.stack(obs))
    assert np.array_equal(*runs)


def test_render_draws_the_highest_channel_of_each_cell():
    channels = np.zeros((3, 10, 10), np.uint8)
    channels[0, 0, 0] = channels[2, 0, 0] = 1
    channels[1, 9, 9] = 1
    image = render_channels(channels, 2)
    assert image.shape == (20, 20, 3)
    assert (image[:2, :2] == PALETTE[3]).all()
    assert (image[18:, 18:] == PALETTE[2]).all()
    assert (image[5, 5] == PALETTE[0]).all()


def test_snapshots_render_the_step_they_were_taken_at():
    env = make_env("MinAtar/Seaquest-v1", render_mode="rgb_array", fixed_length=True)
    env.reset(seed=0)
    snapshotter = snapshotter_for(env)
    kept = []
    for t in range(40):
        env.step(t % 6)
        kept.append((snapshotter.capture(env), env.render().copy()))
    other = make_env("MinAtar/Seaquest-v1", render_mode="rgb_array", fixed_length=True)
    other.reset(seed=1)
    for snapshot, frame in reversed(kept):
        snapshotter_for(other).restore(other, snapshot)
        assert np.array_equal(other.render(), frame)


def test_game_over_restarts_inside_a_fixed_length_episode():
    env = make_env("MinAtar/Breakout-v1", fixed_length=300)
    env.reset(seed=0)
    restarts = 0
    for t in range(300):
        _, _, terminated, truncated, info = env.step(0)  # a still paddle misses the ball
        assert not terminated
        restarts += bool(info.get("terminated_inner"))
        assert truncated == (t == 299)
    assert restarts >= 2
