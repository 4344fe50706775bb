"""The capped and over-rotation-priced backflip person (overturn.py's
``capped_overturn200``) with its turning paid only in a flight that took off from the
foot (docs/benchmarks/tasks.md, "Turning paid only from the foot").

PPO on ``capped_overturn200``'s own reward tumbles on seed 1: short flights off the
back and the thigh, each paid for its backward turning, with the floor's turning free.
And its seed 2 preference run lands flips but jumps again 4-22 steps after a landing,
where a clean flip stands 25. These persons pay backward turning in the air only in a
flight that took off from the foot alone, with the torso within 30 degrees of upright:

- ``takeoff_foot``: after at least one such step on the foot;
- ``takeoff_standing``: after at least 25 such steps in a row, as long as
  count_clean_flips asks a landing to stand: a flip chained onto the last one earns
  nothing for its turning.

The flag "turning paid in this flight" (0/1, 0 on the floor) is one observation extra
more, so the reward model sees the gate as it sees "touching the floor". Everything else
is ``capped_overturn200``: the cap at a whole turn, the charge for turning past it,
uprightness and height, the landing credit, the restarts, the pink noise and the spread
schedule.
"""

import dataclasses
import math

from prefrl.task_library import (
    FULL_TURN,
    LANDING_BONUS,
    UPRIGHT_COS,
    HopperFlight,
    hopper_fallen,
    hopper_flight,
    hopper_foot_down,
    hopper_touching,
)
from prefrl.tasks import ObsExtra, get_task, register_task

OVERTURN_COST = 200.0  # overturn.py's capped_overturn200


class FootFlight(HopperFlight):
    """:class:`HopperFlight` that also knows whether the flight under way took off from
    the foot after at least ``NEED`` steps standing on it, upright."""

    NEED = 1

    def __init__(self, angle):
        super().__init__(angle)
        self.stood = 0  # steps in a row on the foot alone, upright
        self.paid = False

    def advance(self, inner):
        was_flying, stood = self.flying, self.stood
        super().advance(inner)
        if self.flying:
            if not was_flying:  # take-off
                self.paid = stood >= self.NEED
            self.stood = 0
            return
        self.paid = False
        upright = math.cos(float(inner.data.qpos[2])) >= UPRIGHT_COS
        on_foot = bool(hopper_foot_down(inner)) and not hopper_fallen(inner) and upright
        self.stood = stood + 1 if on_foot else 0


class StandingFlight(FootFlight):
    NEED = 25  # count_clean_flips' upright steps after a landing


def person(kind):
    def turning_paid(inner):
        """1 in a flight whose backward turning pays, else 0."""
        return float(hopper_flight(inner, kind).paid)

    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        flight = hopper_flight(inner)
        backwards = -float(data.qvel[2])
        if hopper_touching(inner):
            turning = 0.5 * min(backwards, 0.0)
        elif turning_paid(inner) and flight.turn < FULL_TURN:
            turning = backwards
        else:
            turning = min(backwards, 0.0)
        overturn = OVERTURN_COST * max(flight.turn / FULL_TURN - 1.0, 0.0) if flight.flying else 0.0
        upright = 4.0 * math.cos(float(data.qpos[2])) + 4.0 * (float(data.qpos[1]) - 1.25)
        return turning - overturn + upright + LANDING_BONUS * flight.credit_now()

    return reward, turning_paid


backflip = get_task("backflip")
for name, kind in (("takeoff_foot", FootFlight), ("takeoff_standing", StandingFlight)):
    reward, turning_paid = person(kind)
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=reward,
            obs_extras=(*backflip.obs_extras, ObsExtra("turning paid in this flight", turning_paid, 0.0, 1.0)),
            initial_fraction=0.1,
            decay_fraction=1.0,
        )
    )
