"""The RL agent: PPO for discrete and continuous actions, its defaults and evaluation."""

from prefrl.agent.evaluate import evaluate
from prefrl.agent.hyperparams import HYPERPARAMS, default_config
from prefrl.agent.ppo import PPOAgent, PPOConfig, Rollout, compute_gae

__all__ = [
    "HYPERPARAMS",
    "PPOAgent",
    "PPOConfig",
    "Rollout",
    "compute_gae",
    "default_config",
    "evaluate",
]
