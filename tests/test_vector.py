import numpy as np
import pytest

from prefrl.envs import VecEnv, make_env


def test_autoreset_returns_final_obs_and_records_episodes():
    envs = VecEnv([lambda: make_env("CartPole-v1")] * 2, capture_snapshots=True)
    envs.reset(seed=0)
    right = np.ones(2, dtype=np.int64)  # pushing right topples the pole within ~10 steps
    episodes = []
    for _ in range(40):
        step = envs.step(right)
        for i in np.flatnonzero(step.terminated):
            # the new episode starts near the origin; the final obs is past the angle limit
            assert abs(step.final_obs[i][2]) > 0.2
            assert abs(step.obs[i][2]) <= 0.05
        not_done = ~(step.terminated | step.truncated)
        np.testing.assert_array_equal(step.final_obs[not_done], step.obs[not_done])
        episodes += envs.pop_finished()
    assert len(episodes) >= 4
    assert all(ep.true_return == ep.length for ep in episodes)  # CartPole pays 1 per step
    assert envs.snapshots().shape == (2, 4)


def test_episode_returns_are_true_returns():
    envs = VecEnv([lambda: make_env("Pendulum-v1")])
    envs.reset(seed=5)
    rewards = []
    for _ in range(200):
        step = envs.step(np.zeros((1, 1), dtype=np.float32))
        rewards.append(step.true_rewards[0])
    (episode,) = envs.pop_finished()
    assert episode.length == 200 and step.truncated[0] and not step.terminated[0]
    assert episode.true_return == pytest.approx(np.sum(np.array(rewards, dtype=np.float64)), rel=1e-7)
