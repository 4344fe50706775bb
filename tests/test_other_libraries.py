"""Another library trains on a learned reward through ``prefrl.LearnedRewardWrapper``.

Needs the ``bench`` extra (stable-baselines3): ``pip install -e ".[bench]"``; skipped without it.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefrl

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

torch.set_num_threads(1)


def pendulum_reward(obs: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Pendulum-v1's reward of taking ``action`` in ``obs`` (cos, sin, angular velocity)."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    torque = np.clip(action[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque**2)


class StepRecorder(BaseCallback):
    """Each step's observations before it, actions sent, rewards and infos, as SB3 saw them."""

    def __init__(self) -> None:
        super().__init__()
        self.obs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.true_rewards: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.obs.append(np.array(self.model._last_obs))
        self.actions.append(np.array(self.locals["clipped_actions"]))
        self.rewards.append(np.array(self.locals["rewards"]))
        self.true_rewards.append(np.array([info["true_reward"] for info in self.locals["infos"]]))
        return True


def test_stable_baselines3_trains_on_exactly_the_learned_reward(tmp_path):
    env = gym.make("Pendulum-v1")
    model = prefrl.RewardModel(env.observation_space.shape, env.action_space, seed=0)
    rng = np.random.default_rng(0)
    features = model.features(rng.normal(size=(500, 3)), rng.uniform(-2, 2, size=(500, 1)))
    model.fit_input_normalization(features)
    model.fit_output_normalization(features)
    model.save(tmp_path / "checkpoints" / "reward_model.pt")
    loaded = prefrl.load_reward_model(tmp_path)  # a run directory, as a user passes it

    venv = make_vec_env(
        "Pendulum-v1",
        n_envs=2,
        seed=0,
        wrapper_class=prefrl.LearnedRewardWrapper,
        wrapper_kwargs={"model": loaded},
    )
    agent = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    recorder = StepRecorder()
    agent.learn(256, callback=recorder)

    obs, actions = np.concatenate(recorder.obs), np.concatenate(recorder.actions)
    rewards, true_rewards = np.concatenate(recorder.rewards), np.concatenate(recorder.true_rewards)
    assert len(rewards) == 256 and rewards.std() > 0
    np.testing.assert_allclose(rewards, model.predict(obs, actions), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(true_rewards, pendulum_reward(obs, actions), rtol=1e-5, atol=1e-5)
    assert np.abs(rewards - true_rewards).max() > 0.1  # the two rewards differ: SB3 had the learned one
