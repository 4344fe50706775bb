import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_same_next_update

from prefrl.agent import PPOAgent, PPOConfig, compute_gae, default_config, evaluate
from prefrl.agent.policies import ActorCritic, NumpyActor
from prefrl.envs import VecEnv, make_env
from prefrl.reward import ConstantReward, TrueReward


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.8
    rewards = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    values = np.array([[0.5], [1.0], [1.5]], dtype=np.float32)
    dones = np.array([[False], [True], [False]])
    last_values = np.array([2.0], dtype=np.float32)
    adv, ret = compute_gae(rewards, values, dones, last_values, gamma, lam)
    # by hand, backwards: step 2 bootstraps from last_values; step 1 ends its episode
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # 3.3
    a2 = d2
    d1 = 2.0 - 1.0  # episode ended: no bootstrap
    a1 = d1
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a0 = d0 + 0.9 * 0.8 * a1  # 2.12
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, adv + values, rtol=1e-6)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,))])
def test_numpy_actor_matches_torch_policy(space):
    torch.manual_seed(0)
    policy = ActorCritic(5, space, log_std_init=-0.3)
    actor = NumpyActor(policy, seed=0)
    obs = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    actions, log_probs, values = actor.sample(obs)
    t_log_probs, _, t_values = policy.evaluate(torch.from_numpy(obs), torch.from_numpy(actions))
    np.testing.assert_allclose(log_probs, t_log_probs.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, t_values.detach().numpy(), rtol=1e-5, atol=1e-6)
    # the numpy views follow in-place parameter updates
    with torch.no_grad():
        for p in policy.critic.parameters():
            p.add_(1.0)
    np.testing.assert_allclose(
        actor.value(obs), policy.value(torch.from_numpy(obs)).detach().numpy(), rtol=1e-5
    )


def make_agent(env_id="CartPole-v1", seed=0, **overrides):
    cfg = default_config(env_id).replace(**{"num_envs": 2, "num_steps": 16, **overrides})
    envs = VecEnv([lambda: make_env(env_id)] * cfg.num_envs, capture_snapshots=True)
    return PPOAgent(envs, cfg, total_steps=1000, seed=seed)


def test_rollout_shapes_and_snapshots_follow_observations():
    agent = make_agent("Pendulum-v1")
    rollout = agent.collect(capture_snapshots=True)
    assert rollout.obs.shape == (16, 2, 3) and rollout.actions.shape == (16, 2, 1)
    assert rollout.snapshots is not None and rollout.snapshots.shape == (16, 2, 3)
    theta, theta_dot = rollout.snapshots[..., 0], rollout.snapshots[..., 1]
    # Pendulum's observation is (cos th, sin th, th_dot): the snapshot renders the same state
    np.testing.assert_allclose(rollout.obs[..., 0], np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(rollout.obs[..., 2], theta_dot, atol=1e-5)
    assert np.all(np.abs(rollout.actions) <= 2.0)
    assert rollout.episode_starts[0].all() and not rollout.episode_starts[1:].any()


def test_reward_source_decides_what_the_agent_learns_from():
    agent = make_agent()
    rollout = agent.collect()
    np.testing.assert_array_equal(agent.rewards_for(rollout, TrueReward()), rollout.true_rewards)
    assert (agent.rewards_for(rollout, ConstantReward(3.0)) == 3.0).all()
    seen = {}

    class Spy:
        name = "spy"

        def __call__(self, obs, actions, true_rewards):
            seen["shapes"] = (obs.shape, actions.shape)
            return np.zeros(len(obs), dtype=np.float32)

    stats = agent.train(rollout, Spy())
    assert seen["shapes"] == ((32, 4), (32,))
    assert stats["charts/reward_mean"] == 0.0


def test_truncated_episodes_bootstrap_from_the_final_observation():
    agent = make_agent("Pendulum-v1", num_steps=210)
    rollout = agent.collect()
    t_idx, _ = np.nonzero(rollout.truncated)
    assert list(t_idx) == [199, 199]
    assert np.all(rollout.bootstrap_values[199] != 0)
    assert np.count_nonzero(rollout.bootstrap_values) == 2


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    agent = make_agent("Pendulum-v1", seed=3)
    for _ in range(2):
        agent.train(agent.collect(), TrueReward())
    agent.save(tmp_path / "agent.pt")
    obs = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)

    clone = make_agent("Pendulum-v1", seed=99)
    clone.load(tmp_path / "agent.pt")
    np.testing.assert_array_equal(clone.act(obs), agent.act(obs))
    assert clone.env_steps == agent.env_steps == 64
    np.testing.assert_array_equal(clone.obs_norm.rms.mean, agent.obs_norm.rms.mean)
    assert_same_next_update(agent, clone)  # the optimiser state came along


def test_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match=r"no PPO setting learning_rat \(did you mean learning_rate\?\)"):
        PPOConfig().replace(learning_rat=1.0)


@pytest.mark.learning
def test_cartpole_learns_within_small_budget():
    torch.set_num_threads(1)
    cfg = default_config("CartPole-v1")
    envs = VecEnv([lambda: make_env("CartPole-v1")] * cfg.num_envs)
    agent = PPOAgent(envs, cfg, total_steps=50_000, seed=1)
    agent.learn(50_000, TrueReward())
    returns = evaluate(agent.act, "CartPole-v1", episodes=10)
    assert np.mean(returns) >= 400, returns
