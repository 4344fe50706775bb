"""The capped and over-rotation-priced backflip person (overturn.py's
``capped_overturn200``) with a charge for leaving a flip's landing before it has stood
(docs/benchmarks/tasks.md, "A landing left early, charged").

``capped_overturn200``'s preference runs on seeds 2 and 4 land flips but turn into the
next one 4-32 steps after a landing, where a clean flip stands upright 25
(count_clean_flips), while PPO on the person's own reward stands long enough. Gating the
pay for turning on a take-off from standing (takeoff.py) made the reward sparser, and
PPO's own search failed. These persons keep all of ``capped_overturn200``'s pay and
charge ``cost`` per step for leaving a flip's landing early, each seen through one 0/1
observation extra more, so that the charge is a function of one observation, as the
over-rotation charge is of the flight's turn: something a reward model fits from clip
sums.

- ``early_takeoff50``: every step in the air (no part touching the floor) of a flight
  that took off within 25 steps of a landing after a whole flip (WHOLE_FLIP's turn, on
  any part);
- ``lean_in_hold100``: every step, within 25 steps of landing a whole flip on the foot,
  that the hopper is not upright (torso within 30 degrees of vertical and at least 0.8 m
  high, the measure's pose): the measure's own failure, where a hop that stays upright
  is free, and at most 25 steps' charge per landing, so that a landing that falls costs
  no more than a tumble that never lands.

Both charges made PPO on the person's own reward tumble on seeds 2 and 4, where
``capped_overturn200``'s lands 6 clean flips: the first landings PPO finds are imperfect,
and charging them makes the tumble pay more. So ``held_landing40`` charges nothing and
pays ``cost`` (40) more per step, for 25 steps, once a whole flip's landing on the foot
has stood upright 25 steps: the clean landing is paid where the landings on the way to it
are paid as before.
"""

import dataclasses
import math

from prefrl.task_library import (
    FULL_TURN,
    UPRIGHT_COS,
    WHOLE_FLIP,
    HopperFlight,
    hopper_fallen,
    hopper_flight,
    hopper_flip_reward,
    hopper_foot_down,
)
from prefrl.tasks import ObsExtra, get_task, register_task

OVERTURN_COST = 200.0  # overturn.py's capped_overturn200
HOLD = 25  # count_clean_flips' upright steps after a landing
MIN_HEIGHT = 0.8  # count_clean_flips' upright torso height


class LandingFlight(HopperFlight):
    """:class:`HopperFlight` that also knows whether the flight under way took off within
    ``HOLD`` steps of landing a whole flip (``early``), and whether the hopper is not
    upright within ``HOLD`` steps of landing a whole flip on the foot (``leaning``), or
    has been upright every step since such a landing ``HOLD`` steps ago, for ``HOLD``
    steps more (``held``)."""

    def __init__(self, angle):
        super().__init__(angle)
        self.since_flip = HOLD  # steps on the floor since a whole flip's landing
        self.since_foot = HOLD + 1  # steps since a whole flip's landing on the foot
        self.early = self.leaning = self.held = False
        self.upright_since_foot = False  # upright every step since that landing

    def advance(self, inner):
        was_flying, turn = self.flying, self.turn
        super().advance(inner)
        self.since_foot += 1
        if self.flying:
            if not was_flying:  # take-off
                self.early = self.since_flip < HOLD
        else:
            self.early = False
            if was_flying and turn / FULL_TURN >= WHOLE_FLIP:
                self.since_flip = 0
                if hopper_foot_down(inner) and not hopper_fallen(inner):
                    self.since_foot = 1  # the landing step is the hold's first
            self.since_flip += 1
        data = inner.data
        upright = math.cos(float(data.qpos[2])) >= UPRIGHT_COS and float(data.qpos[1]) >= MIN_HEIGHT
        self.leaning = self.since_foot <= HOLD and not upright
        self.upright_since_foot = upright and (self.since_foot == 1 or self.upright_since_foot)
        self.held = self.upright_since_foot and HOLD < self.since_foot <= 2 * HOLD


def took_off_early(inner):
    """1 in a flight that left a whole flip's landing within ``HOLD`` steps, else 0."""
    return float(hopper_flight(inner, LandingFlight).early)


def leaning_early(inner):
    """1 while not upright within ``HOLD`` steps of a whole flip's landing on the foot."""
    return float(hopper_flight(inner, LandingFlight).leaning)


def landing_held(inner):
    """1 for ``HOLD`` steps once a whole flip's landing on the foot has stood upright ``HOLD``."""
    return float(hopper_flight(inner, LandingFlight).held)


def person(cost, flag):
    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        flight = hopper_flight(inner)
        overturn = OVERTURN_COST * max(flight.turn / FULL_TURN - 1.0, 0.0) if flight.flying else 0.0
        return hopper_flip_reward(env, obs, action, next_obs) - overturn - cost * flag(inner)

    return reward


backflip = get_task("backflip")
for name, cost, flag, words in (
    ("early_takeoff50", 50.0, took_off_early, "flight left a landing early"),
    ("lean_in_hold100", 100.0, leaning_early, "landing left before it stood"),
    ("held_landing40", -40.0, landing_held, "a landing held"),
):
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=person(cost, flag),
            obs_extras=(*backflip.obs_extras, ObsExtra(words, flag, 0.0, 1.0)),
            initial_fraction=0.1,
            decay_fraction=1.0,
        )
    )
