"""Loading a trained policy for acting only (videos, ``prefrl play``, evaluation)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np

from prefrl.agent.ppo import PPOConfig, build_policy, obs_normalizer
from prefrl.envs.make import is_image_space
from prefrl.errors import MissingFileError
from prefrl.rundir import RunDir
from prefrl.utils.checkpoint import load_checkpoint


class TrainedPolicy:
    """A policy network with its observation statistics: ``act(obs[B, ...]) -> actions[B, ...]``.

    It acts on the CPU whatever device it learnt on (``config.device``).
    """

    def __init__(
        self, config: PPOConfig, observation_space: gym.Space, action_space: gym.Space, seed: int = 0
    ):
        cpu_config = dataclasses.replace(config, device="cpu")
        self.network, self.actor = build_policy(cpu_config, observation_space, action_space, seed)
        self.obs_norm = obs_normalizer(config, observation_space)
        self.image = is_image_space(observation_space)  # raw uint8 in, scaled by the CNN
        self.action_space = action_space

    def act(
        self, obs: np.ndarray, deterministic: bool = True, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        x = obs if self.image else self.obs_norm(obs).reshape(len(obs), -1)
        actions = self.actor.mode(x) if deterministic else self.actor.sample(x, rng)[0]
        if isinstance(self.action_space, gym.spaces.Box):
            return np.clip(actions, self.action_space.low, self.action_space.high)
        return actions

    @classmethod
    def load(cls, path: str | Path, observation_space: gym.Space, action_space: gym.Space) -> TrainedPolicy:
        """Read an agent checkpoint written by :meth:`prefrl.agent.ppo.PPOAgent.save`
        (loading it never runs code from the file)."""
        state = load_checkpoint(path, "agent")
        cfg = dict(state["config"])
        cfg["hidden_sizes"] = tuple(cfg["hidden_sizes"])
        policy = cls(PPOConfig(**cfg), observation_space, action_space)
        policy.network.load_state_dict(state["policy"])
        policy.obs_norm.load_state_dict(state["obs_norm"])
        return policy


def load_policy(run_dir: str | Path, env: gym.Env) -> TrainedPolicy:
    """The latest policy of a run directory (or an ``agent.pt``), for acting in ``env``.

    Raises:
        MissingFileError (a FileNotFoundError): the run has no agent checkpoint yet.
    """
    path = Path(run_dir)
    file = path if path.is_file() else RunDir(path).agent_checkpoint
    if not file.exists():
        raise MissingFileError(f"no agent checkpoint at {file}; has the run taken its first PPO update?")
    return TrainedPolicy.load(file, env.observation_space, env.action_space)
