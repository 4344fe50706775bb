"""A backflip person tried on 2026-11-30: the built-in backflip's (commit 046d2a3) with
uprightness and height weighted 2.5 instead of 5. PPO on it for 1M steps fell backwards
at the start and lay folded on the floor: 1.33 turns, 0 clean flips
(backflip_person_w2_5.csv; docs/benchmarks/tasks.md)."""

import dataclasses
import math

from prefrl.task_library import hopper_touching
from prefrl.tasks import BACKFLIP_TUMBLING, register_task


def reward(env, obs, action, next_obs):
    data = env.unwrapped.data
    backwards = -float(data.qvel[2])
    turning = 0.5 * min(backwards, 0.0) if hopper_touching(env.unwrapped) else backwards
    return turning + 2.5 * math.cos(float(data.qpos[2])) + 2.5 * (float(data.qpos[1]) - 1.25)


register_task(dataclasses.replace(BACKFLIP_TUMBLING, name="flip25", behaviour_reward=reward))
