"""The built-in backflip with a landing paid only for a flip that started from standing
(docs/benchmarks/tasks.md, "A flip paid only from standing").

The built-in person pays a landing's credit from its first step on the foot, and goes on
paying it while the hopper is in the air again, until the next landing replaces it. A
hopper that lands and springs into the next flip at once (the explore arms' seed 0, the
capped and explored arm's seed 2: upright 4-22 steps after a landing, where the measure
asks for 25) is then paid more per second than one that lands and stands. This person
pays the same credit, but not to a flight that took off within 25 steps of a flip's
landing (a landing after a flight of half a turn backwards or more; the hops and the
settling at the episode's start do not count): a flip chained onto the last one earns no
landing credit. The
credit it pays is one observation extra, "landing credit (from standing)", in place of the
built-in "landing credit"; the rest (turning, uprightness, height, restarts, pink noise)
is the built-in backflip's.

Tried on 2026-12-02: its go / no-go fails on seeds 1 and 2 (PPO on this person's own
reward, 1M steps: 5, 0 and 0 clean flips; backflip_from_standing.csv). Seed 2 lands and
leaves within 25 steps by a front flip, which this person does not price.
"""

import dataclasses
import math

from prefrl.task_library import FULL_TURN, LANDING_BONUS, HopperFlight, hopper_flight, hopper_flip_turning
from prefrl.tasks import ObsExtra, get_task, register_task

STAND_STEPS = 25  # count_clean_flips' upright steps after a landing


class StandingFlight(HopperFlight):
    """:class:`HopperFlight` whose landing keeps no credit if its flight took off fewer
    than STAND_STEPS steps after the landing of a flip."""

    def __init__(self, angle):
        super().__init__(angle)
        self.flipped = False  # a flip has landed since the start (or a stand-up)
        self.from_standing = True

    def advance(self, inner):
        was_flying, since = self.flying, self.since
        super().advance(inner)
        if self.flying and not was_flying:  # take-off
            self.from_standing = not self.flipped or since >= STAND_STEPS
        elif was_flying and not self.flying:  # a touch down
            self.flipped = self.flipped or self.turn >= 0.5 * FULL_TURN
            if not self.from_standing:
                self.credit = 0.0


def landing_credit_from_standing(inner):
    """The last landing's credit as it fades, 0 to 1; 0 for a flip that did not start from standing."""
    return hopper_flight(inner, StandingFlight).credit_now()


def reward(env, obs, action, next_obs):
    inner = env.unwrapped
    data = inner.data
    upright = 4.0 * math.cos(float(data.qpos[2])) + 4.0 * (float(data.qpos[1]) - 1.25)
    return hopper_flip_turning(inner) + upright + LANDING_BONUS * landing_credit_from_standing(inner)


backflip = get_task("backflip")
register_task(
    dataclasses.replace(
        backflip,
        name="backflip_from_standing",
        behaviour_reward=reward,
        obs_extras=(
            *backflip.obs_extras[:-1],
            ObsExtra("landing credit (from standing)", landing_credit_from_standing, 0.0, 1.0),
        ),
    )
)
