"""Reward sources, the learned reward model, its training, and its gymnasium wrapper."""

from prefrl.reward.model import RewardModel, RewardModelConfig
from prefrl.reward.sources import ConstantReward, LearnedReward, RewardSource, TrueReward
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.reward.wrapper import LearnedRewardWrapper, load_reward_model

__all__ = [
    "ConstantReward",
    "LearnedReward",
    "LearnedRewardWrapper",
    "PreferenceTrainer",
    "RewardModel",
    "RewardModelConfig",
    "RewardSource",
    "TrueReward",
    "load_reward_model",
]
