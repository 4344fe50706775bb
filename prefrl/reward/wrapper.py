"""Using a reward learned by prefrl outside its run: load it, wrap a gymnasium env with it.

    import gymnasium as gym, prefrl
    model = prefrl.load_reward_model("runs/train-Pendulum-v1-s0-...")
    env = prefrl.LearnedRewardWrapper(gym.make("Pendulum-v1"), model)
    # env's step reward is now the learned one; info["true_reward"] keeps the env's own.

Any gymnasium-compatible trainer (stable-baselines3, CleanRL, ...) can then train on it,
given the settings that carry over (the run's fixed length, reward scaling, the discount):
docs/learned_reward.md. Needs only torch and numpy: none of prefrl's runtime is started.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from prefrl.envs.wrappers import RewardFromSource
from prefrl.errors import MissingFileError
from prefrl.reward.model import RewardModel
from prefrl.rundir import RunDir


def load_reward_model(path: str | Path) -> RewardModel:
    """The newest reward model of a run directory (or a ``reward_model.pt`` file).

    Raises:
        MissingFileError (a FileNotFoundError): no reward model there yet, with what to do about it.
    """
    path = Path(path)
    file = path if path.is_file() else RunDir(path).reward_checkpoint
    if not file.exists():
        raise MissingFileError(
            f"no reward model at {file}. Pass a run directory of `prefrl train` whose reward "
            "trainer has finished at least one round (or the path of a reward_model.pt)."
        )
    return RewardModel.load(file)


class LearnedRewardWrapper(RewardFromSource):
    """Step reward = the learned reward of (observation, action); true reward in ``info``.

    Raises:
        ValueError: the env's spaces do not match the ones the model was trained on.
    """

    def __init__(self, env: gym.Env, model: RewardModel):
        model.check_spaces(env.observation_space, env.action_space)
        space = env.action_space
        start = int(space.start) if isinstance(space, gym.spaces.Discrete) else 0
        if start:  # prefrl counts discrete actions from 0 (ZeroBasedActions), as the model was trained
            super().__init__(env, lambda obs, actions: model.predict(obs, np.asarray(actions) - start))
        else:
            super().__init__(env, model.predict)
        self.model = model
