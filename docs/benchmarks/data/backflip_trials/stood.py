"""The capped and over-rotation-priced backflip person (overturn.py's
``capped_overturn200``) with a landing's credit that grows with the steps the landing has
stood (docs/benchmarks/tasks.md, "A landing's credit earned by standing").

``capped_overturn200``'s failing preference runs flip fast: each landing stands upright
16-24 steps before the next take-off, where a clean flip stands 25
(count_clean_flips). That person pays a landing's credit in full from its first step,
fading over 100 steps, so a landing left after 16 steps has earned most of what one left
after 25 earns, and ten fast flips pay as much as five slow ones. This person pays the
same credit times the steps stood so far over 25 (0 on the landing step, whole from the
25th on, then fading as before): a take-off before 25 steps forfeits most of the
landing's pay. The credit as paid is the observation extra the reward model sees in place
of the built-in one, so the pay stays a multiple of one observation.

- ``stood_credit``: the ramp from 0 (the measure's own 25 steps);
- ``stood_credit_half``: the ramp from half the credit, so the first, imperfect landings
  PPO finds are still paid half, where a charge on them made its search tumble
  (landing_hold.py).

Both fail their go / no-go (2026-12-02): PPO on their own reward lands 6.0 / 0 / 0
(``stood_credit``) and 0 / 0 / 5.0 (``stood_credit_half``) clean flips on seeds 0-2
(backflip_stood_credit.csv).
"""

import dataclasses
import math

from prefrl.task_library import (
    CREDIT_STEPS,
    FULL_TURN,
    LANDING_BONUS,
    HopperFlight,
    hopper_flight,
    hopper_flip_turning,
)
from prefrl.tasks import ObsExtra, get_task, register_task

OVERTURN_COST = 200.0  # overturn.py's capped_overturn200
HOLD = 25  # count_clean_flips' upright steps after a landing


class StoodFlight(HopperFlight):
    """:class:`HopperFlight` whose landing credit is paid times the steps stood over
    ``HOLD``, from ``floor`` on the landing step (``since`` 0) to 1 at ``HOLD``, then
    fades over ``CREDIT_STEPS`` as the built-in one does; lost, as it is, at a fall or a
    lean past 30 degrees."""

    floor = 0.0

    def credit_now(self) -> float:
        stood = min(self.since / HOLD, 1.0)
        fade = max(0.0, 1.0 - max(self.since - HOLD, 0) / CREDIT_STEPS)
        return self.credit * (self.floor + (1.0 - self.floor) * stood) * fade


class HalfStoodFlight(StoodFlight):
    floor = 0.5


def person(kind):
    def credit(inner):
        return hopper_flight(inner, kind).credit_now()

    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        flight = hopper_flight(inner)
        overturn = OVERTURN_COST * max(flight.turn / FULL_TURN - 1.0, 0.0) if flight.flying else 0.0
        upright = 4.0 * math.cos(float(data.qpos[2])) + 4.0 * (float(data.qpos[1]) - 1.25)
        return hopper_flip_turning(inner) + upright + LANDING_BONUS * credit(inner) - overturn

    return reward, credit


backflip = get_task("backflip")
for name, kind in (("stood_credit", StoodFlight), ("stood_credit_half", HalfStoodFlight)):
    reward, credit = person(kind)
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=reward,
            obs_extras=(*backflip.obs_extras[:-1], ObsExtra("landing credit, as stood", credit, 0.0, 1.0)),
            initial_fraction=0.1,
            decay_fraction=1.0,
        )
    )
