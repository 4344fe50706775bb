"""The environment layer: building envs, hiding their reward, snapshots, vectors."""

from prefrl.envs.errors import EnvError
from prefrl.envs.make import check_spaces, is_image_space, is_mujoco_id, make_env, observes_images
from prefrl.envs.snapshot import Snapshotter, env_family, snapshotter_for
from prefrl.envs.vector import Episode, VecEnv, VecStep
from prefrl.envs.wrappers import FixedLengthEpisodes, RewardFromSource

__all__ = [
    "EnvError",
    "Episode",
    "FixedLengthEpisodes",
    "RewardFromSource",
    "Snapshotter",
    "VecEnv",
    "VecStep",
    "check_spaces",
    "env_family",
    "is_image_space",
    "is_mujoco_id",
    "make_env",
    "observes_images",
    "snapshotter_for",
]
