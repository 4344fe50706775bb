"""Backflip persons tried with a hopper that lies on the floor for 50 steps stood up
again within the episode, and lying on the floor costing ``c`` per step (an observed
flag): the built-in backflip's (commit 046d2a3) with uprightness and height weighted
2.5 instead of 5, c = 5 (lie5) or 10 (lie10) (docs/benchmarks/tasks.md)."""

import dataclasses
import math

from prefrl.task_library import hopper_fallen, hopper_touching
from prefrl.tasks import BACKFLIP_TUMBLING, ObsExtra, register_task


def person(cost):
    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        backwards = -float(data.qvel[2])
        turning = 0.5 * min(backwards, 0.0) if hopper_touching(inner) else backwards
        upright = 2.5 * (math.cos(float(data.qpos[2])) + float(data.qpos[1]) - 1.25)
        return turning + upright - cost * hopper_fallen(inner)

    return reward


backflip = BACKFLIP_TUMBLING
for name, cost in (("lie5", 5.0), ("lie10", 10.0)):
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=person(cost),
            restart_when=hopper_fallen,
            obs_extras=(*backflip.obs_extras, ObsExtra("lying on the floor", hopper_fallen, 0.0, 1.0)),
        )
    )
