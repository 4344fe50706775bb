"""The built-in backflip's person with over-rotation priced through one observation
(docs/benchmarks/tasks.md, "Over-rotation priced"). The built-in person stops paying for
backward turning in the air once the flight has turned a whole turn: the product of the
turning rate and "the flight's turn is under one", which its reward models did not learn
(the spread runs' probe: they pay turning past a whole turn nearly as much as before it).
These persons charge, every step in the air, ``cost`` times the flight's turn past one
whole turn: a function of the observed flight's turn alone, which a reward model can fit.

- ``overturn200``: backward turning in the air pays without the cap, and the charge
  prices over-rotation instead. The turning then pays while the rate exceeds ``cost``
  times the excess: about 0.1 turn past a whole one at 15-20 rad/s, more at a faster spin.
- ``capped_overturn200``: the built-in person (cap included) and the charge on top, so
  over-rotation costs the person, where the built-in person is indifferent to it.

Everything else is the built-in person: uprightness and height, the landing credit, the
observation extras, the restarts and the pink noise. The labels are spread into the run
as in the built-in backflip's spread runs (initial_fraction 0.1, decay_fraction 1.0), at
which every reward model ranked the clean flip first.

``capped_overturn200`` with exploring first (``--explore-labels 270 --selection diverse``,
2026-12-02) lands 3.2, 3.3 and 1.4 clean flips on seeds 0-2 from 900 labels; PPO on its
own reward lands 5.9, 0 and 5.9 (backflip_capped_explore.csv)."""

import dataclasses
import math

from prefrl.task_library import FULL_TURN, LANDING_BONUS, hopper_flight, hopper_flip_reward, hopper_touching
from prefrl.tasks import get_task, register_task


def overturn(inner, cost):
    """The charge for this step: ``cost`` times the flight's turn past a whole turn."""
    flight = hopper_flight(inner)
    if not flight.flying:
        return 0.0
    return cost * max(flight.turn / FULL_TURN - 1.0, 0.0)


def uncapped(cost):
    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        flight = hopper_flight(inner)
        backwards = -float(data.qvel[2])
        if hopper_touching(inner):
            turning = 0.5 * min(backwards, 0.0)
        else:
            turning = backwards - overturn(inner, cost)
        upright = 4.0 * math.cos(float(data.qpos[2])) + 4.0 * (float(data.qpos[1]) - 1.25)
        return turning + upright + LANDING_BONUS * flight.credit_now()

    return reward


def capped(cost):
    def reward(env, obs, action, next_obs):
        return hopper_flip_reward(env, obs, action, next_obs) - overturn(env.unwrapped, cost)

    return reward


for name, person in (("overturn200", uncapped(200.0)), ("capped_overturn200", capped(200.0))):
    register_task(
        dataclasses.replace(
            get_task("backflip"),
            name=name,
            behaviour_reward=person,
            initial_fraction=0.1,
            decay_fraction=1.0,
        )
    )
