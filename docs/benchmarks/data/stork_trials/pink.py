"""The stork with PPO's action noise pink (prefrl.agent.noise) instead of white: does the
noise that found the backflip also steady the stork's reference, which learned the pose
on one seed of three at 500k steps with white noise (docs/benchmarks/tasks.md)?"""

import dataclasses

from prefrl.tasks import get_task, register_task

register_task(dataclasses.replace(get_task("stork"), name="stork_pink", ppo=(("noise_beta", 1.0),)))
