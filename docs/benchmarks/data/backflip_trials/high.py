"""Backflip persons tried with backward turning paid only in the air and while the torso
is at least ``gate`` m high (an observed 0/1 flag, as "touching the floor" is), so that
a folded tumble close to the floor earns nothing; uprightness weighted 2.5, height 5,
and a hopper lying on the floor for 100 steps stood up again within the episode
(docs/benchmarks/tasks.md)."""

import dataclasses
import math

from prefrl.task_library import hopper_fallen, hopper_touching
from prefrl.tasks import BACKFLIP_TUMBLING, ObsExtra, register_task


def high_above(gate):
    def read(inner):
        return float(float(inner.data.qpos[1]) >= gate)

    return read


def person(gate):
    high = high_above(gate)

    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        backwards = -float(data.qvel[2])
        if hopper_touching(inner):
            turning = 0.5 * min(backwards, 0.0)
        elif high(inner):
            turning = backwards
        else:
            turning = min(backwards, 0.0)
        return turning + 2.5 * math.cos(float(data.qpos[2])) + 5.0 * (float(data.qpos[1]) - 1.25)

    return reward


backflip = BACKFLIP_TUMBLING
for name, gate in (("high1", 1.0), ("high08", 0.8)):
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=person(gate),
            restart_when=hopper_fallen,
            restart_after=100,
            obs_extras=(
                *backflip.obs_extras,
                ObsExtra(f"torso at least {gate} m high", high_above(gate), 0.0, 1.0),
            ),
        )
    )
