"""Coloured action noise: each step N(0, 1), the spectrum 1/f^beta, white noise unchanged,
and PPO acting and learning with it."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.agent import PPOAgent, PPOConfig, default_config
from prefrl.agent.noise import NoiseStream, coloured_noise
from prefrl.agent.policies import ActorCritic, NumpyActor
from prefrl.agent.ppo import build_policy
from prefrl.envs import VecEnv, make_env
from prefrl.errors import ConfigError
from prefrl.reward import TrueReward

torch.set_num_threads(1)


@pytest.mark.parametrize("length", [1000, 999])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_each_step_is_standard_normal_and_the_spectrum_falls_as_one_over_f_to_the_beta(beta, length):
    x = coloured_noise(beta, 4000, length, np.random.default_rng(0))
    assert x.shape == (4000, length)
    assert abs(x.mean()) < 0.02
    # every step, not just the whole: the variance is 1 at the ends and in the middle
    np.testing.assert_allclose(x[:, [0, length // 2, -1]].var(axis=0), 1.0, atol=0.06)
    power = (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0)[1:]
    freqs = np.fft.rfftfreq(length)[1:]
    slope = np.polyfit(np.log(freqs), np.log(power), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.05)


def test_neighbouring_steps_are_alike_as_the_colour_deepens():
    lag1 = [
        np.mean(x[:, 1:] * x[:, :-1])
        for x in (coloured_noise(beta, 2000, 1000, np.random.default_rng(1)) for beta in (0.0, 1.0, 2.0))
    ]
    assert abs(lag1[0]) < 0.01
    assert 0.7 < lag1[1] < 0.85
    assert lag1[2] > 0.98


def test_white_noise_draws_what_the_generator_draws():
    # beta 0 keeps the white-noise runs of before bit for bit
    stream = NoiseStream(0.0, np.random.default_rng(5))
    expected = np.random.default_rng(5).standard_normal((3, 2, 4), dtype=np.float32)
    np.testing.assert_array_equal(np.stack([stream.draw((2, 4)) for _ in range(3)]), expected)


def test_a_stream_steps_through_its_chunk_one_draw_at_a_time_then_makes_the_next():
    stream = NoiseStream(1.0, np.random.default_rng(2), length=8)
    draws = np.stack([stream.draw((3, 2)) for _ in range(20)], axis=-1)  # (3, 2, 20)
    rng = np.random.default_rng(2)
    chunks = [coloured_noise(1.0, 6, 8, rng).reshape(3, 2, 8) for _ in range(3)]
    np.testing.assert_allclose(draws, np.concatenate(chunks, axis=-1)[..., :20], rtol=1e-6)
    # another batch shape starts a fresh chunk of that shape
    assert stream.draw((1, 2)).shape == (1, 2)


def test_the_actor_acts_with_coloured_noise_and_reports_its_gaussian_log_probability():
    torch.manual_seed(0)
    policy = ActorCritic(5, gym.spaces.Box(-1, 1, (2,)), log_std_init=-0.3)
    actor = NumpyActor(policy, seed=0, noise_beta=2.0)
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    steps = [actor.sample(obs) for _ in range(300)]
    actions = np.stack([a for a, _, _ in steps])  # (300, 4, 2)
    noise = (actions - actor.mode(obs)) / np.exp(actor.log_std)
    assert np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1] > 0.95  # red noise: steps alike
    for a, log_probs, _ in steps[:3]:
        t_log_probs, _, _ = policy.evaluate(torch.from_numpy(obs), torch.from_numpy(a))
        np.testing.assert_allclose(log_probs, t_log_probs.detach().numpy(), rtol=1e-5, atol=1e-5)
    # a given generator (sampled evaluation, clips to show) draws white noise and leaves
    # the training stream where it was
    before = actor.noise._t
    actor.sample(obs, np.random.default_rng(9))
    assert actor.noise._t == before


def test_ppo_collects_with_the_configured_colour_and_learns_from_it():
    config = default_config("Pendulum-v1").replace(num_envs=2, num_steps=64, noise_beta=1.0)
    envs = VecEnv([lambda: make_env("Pendulum-v1")] * 2)
    agent = PPOAgent(envs, config, total_steps=1000, seed=0)
    assert agent.actor.noise.beta == 1.0
    rollout = agent.collect()
    agent.train(rollout, TrueReward())
    # the rollout's actions are the policy's mean plus the stream's pink noise
    noise = (rollout.policy_actions - agent.actor.mode(rollout.policy_obs)) / np.exp(agent.actor.log_std)
    assert np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1] > 0.5


def test_coloured_noise_is_refused_where_actions_are_not_gaussian():
    config = PPOConfig(noise_beta=1.0)
    with pytest.raises(ConfigError, match=r"noise_beta=1\.0 colours Gaussian action noise"):
        build_policy(config, gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), seed=0)
    with pytest.raises(ConfigError, match="noise_beta"):
        default_config("Pendulum-v1").replace(noise_beta=3.0)
