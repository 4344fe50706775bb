"""Backflip persons tried with a hopper that lies on the floor (a part other than its
foot touching it, or its torso below 0.6 m) for 50 steps stood up again within the
episode: the built-in backflip's (commit 046d2a3) with uprightness and height weighted
2.5 (restart25) and 4 (restart4) instead of 5; weighted 2.5 with the hopper stood up
after 100 (restart25_100) or 150 steps (restart25_150); and, stood up after 100 steps,
uprightness weighted 2.5 (up25_height5) or 2 (up2_height5) and height 5
(docs/benchmarks/tasks.md)."""

import dataclasses
import math

from prefrl.task_library import hopper_fallen, hopper_touching
from prefrl.tasks import BACKFLIP_TUMBLING, register_task


def weighted(upright, height=None):
    height = upright if height is None else height

    def reward(env, obs, action, next_obs):
        data = env.unwrapped.data
        backwards = -float(data.qvel[2])
        turning = 0.5 * min(backwards, 0.0) if hopper_touching(env.unwrapped) else backwards
        return turning + upright * math.cos(float(data.qpos[2])) + height * (float(data.qpos[1]) - 1.25)

    return reward


for name, reward, after in (
    ("restart25", weighted(2.5), 50),
    ("restart4", weighted(4.0), 50),
    ("restart25_100", weighted(2.5), 100),
    ("restart25_150", weighted(2.5), 150),
    ("up25_height5", weighted(2.5, 5.0), 100),
    ("up2_height5", weighted(2.0, 5.0), 100),
):
    register_task(
        dataclasses.replace(
            BACKFLIP_TUMBLING,
            name=name,
            behaviour_reward=reward,
            restart_when=hopper_fallen,
            restart_after=after,
        )
    )
