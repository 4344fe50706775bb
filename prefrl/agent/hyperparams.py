"""Default PPO hyperparameters per env, in one table.

Sources: rl-baselines3-zoo's tuned PPO settings where they exist (CartPole, Acrobot,
MountainCar; CartPole without normalisation, as in the zoo: with it one seed in three
ended at 472 instead of 500), CleanRL's MuJoCo defaults (Hopper and the other walkers);
Pendulum was tuned here for Gaussian PPO without gSDE (see scripts/bench_baseline.py
for the measured returns), CleanRL's ``ppo_atari`` for image observations (Atari and
MinAtar: the settings the Nature-CNN PPO is known to learn Atari with). Any env not
listed gets its family's defaults.
"""

from __future__ import annotations

from typing import Any

from prefrl.agent.ppo import PPOConfig
from prefrl.envs.make import is_mujoco_id, observes_images, tuned_for
from prefrl.utils.device import torch_device
from prefrl.utils.settings import override

_MUJOCO: dict[str, Any] = dict(
    num_envs=1,
    num_steps=2048,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    minibatch_size=64,
    update_epochs=10,
    ent_coef=0.0,
    clip_coef=0.2,
    max_grad_norm=0.5,
)
_CLASSIC: dict[str, Any] = dict(
    num_envs=8,
    num_steps=128,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    minibatch_size=256,
    update_epochs=10,
    ent_coef=0.0,
)
# CleanRL's ppo_atari: 8 envs x 128 steps, 4 minibatches (of 256), 4 epochs, lr 2.5e-4
# annealed, clip 0.1 (value loss clipped too), entropy 0.01. Images are not normalised by
# running statistics (the CNN scales pixels by 1/high), so norm_obs is off.
_IMAGES: dict[str, Any] = dict(
    num_envs=8,
    num_steps=128,
    learning_rate=2.5e-4,
    anneal_lr=True,
    gamma=0.99,
    gae_lambda=0.95,
    minibatch_size=256,
    update_epochs=4,
    clip_coef=0.1,
    clip_vloss=True,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
    norm_obs=False,
)


# fmt: off
HYPERPARAMS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(num_envs=8, num_steps=32, learning_rate=1e-3, gamma=0.98, gae_lambda=0.8,
                        minibatch_size=256, update_epochs=20, ent_coef=0.0, anneal_clip=True,
                        norm_obs=False, norm_reward=False),
    "Pendulum-v1": dict(num_envs=8, num_steps=256, learning_rate=1e-3, gamma=0.95, gae_lambda=0.95,
                        minibatch_size=256, update_epochs=10, ent_coef=0.0),
    "Acrobot-v1": dict(num_envs=16, num_steps=256, learning_rate=3e-4, gamma=0.99, gae_lambda=0.94,
                       minibatch_size=256, update_epochs=4, ent_coef=0.0),
    "MountainCar-v0": dict(num_envs=16, num_steps=16, learning_rate=3e-4, gamma=0.99, gae_lambda=0.98,
                           minibatch_size=256, update_epochs=4, ent_coef=0.0),
    "MountainCarContinuous-v0": dict(num_envs=1, num_steps=8, learning_rate=7.77e-5, gamma=0.9999,
                                     gae_lambda=0.9, minibatch_size=256, update_epochs=10,
                                     ent_coef=0.00429, clip_coef=0.1, max_grad_norm=5.0,
                                     log_std_init=-3.29),
}
# fmt: on

# Env steps a run takes unless told otherwise: the budgets the baselines are measured at.
DEFAULT_STEPS: dict[str, int] = {
    "CartPole-v1": 100_000,
    "Pendulum-v1": 200_000,
    "Acrobot-v1": 200_000,
    "MountainCar-v0": 1_000_000,
    "MountainCarContinuous-v0": 100_000,
}


def default_config(env_id: str, mujoco: bool = False) -> PPOConfig:
    """The table's :class:`PPOConfig` for ``env_id`` (family defaults if it is not listed:
    MuJoCo's when ``mujoco``, the image envs' when it observes images
    (:func:`~prefrl.envs.make.observes_images`), else classic control's)."""
    base = _MUJOCO if mujoco else _IMAGES if observes_images(env_id) else _CLASSIC
    return PPOConfig(**{**base, **(tuned_for(HYPERPARAMS, env_id) or {})})


def default_steps(env_id: str, mujoco: bool | None = None) -> int:
    """The default env-step budget for ``env_id`` (1M for MuJoCo, 200k otherwise if unlisted)."""
    steps = tuned_for(DEFAULT_STEPS, env_id)
    if steps is not None:
        return steps
    if mujoco is None:
        mujoco = is_mujoco_id(env_id)
    return 1_000_000 if mujoco else 200_000


def resolve_ppo_config(
    env_id: str, overrides: dict[str, Any] | None = None, *, flag: str | None = "--ppo"
) -> PPOConfig:
    """The hyperparameter table's config for ``env_id`` with ``overrides`` applied.

    Raises:
        ConfigError: an unknown setting or a bad value, named as ``{flag} KEY=VALUE``; a
            ``device`` this machine does not have.
    """
    base = default_config(env_id, is_mujoco_id(env_id))
    config = override(base, overrides or {}, prefix=flag, what="PPO setting")
    shown = f"{flag} device={config.device!r}" if flag else None
    torch_device(config.device, shown=shown)
    return config
