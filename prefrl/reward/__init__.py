"""Reward sources and (later) the learned reward model."""

from prefrl.reward.sources import ConstantReward, RewardSource, TrueReward

__all__ = ["ConstantReward", "RewardSource", "TrueReward"]
