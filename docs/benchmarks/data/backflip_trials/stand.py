"""The built-in backflip with a landing paid only once the hopper has stood on it
(docs/benchmarks/tasks.md, "A landing paid once it has stood").

The built-in person pays a landing's credit from its first step on the foot. A flip
that lands and springs into the next one at once is then paid nearly as much as one that
lands and stands, and a preference run learned just that (the explore arm's seed 1:
upright 3-20 steps after each landing, where the measure asks for 25). This person pays
the same credit, fading over the same 100 steps, but only from the 25th step after the
landing on, while the hopper is still upright: the landing the measure counts. What it
pays is one observation extra, "landing credit, held", which replaces the built-in's
"landing credit"; the rest (turning, uprightness, height, restarts, pink noise) is the
built-in backflip's.

Tried on 2026-12-01: its go / no-go fails on all three seeds (PPO on this person's own
reward, 1M steps: 0 clean flips; backflip_stand.csv). ``backflip_stand_on_top`` keeps the
built-in person's pay for a landing at once, and pays the credit a second time from the
25th upright step on (both credits observed); its go / no-go fails on seeds 0 and 1
(0, 0 and 5.8 clean flips).
"""

import dataclasses
import math

from prefrl.task_library import CREDIT_STEPS, LANDING_BONUS, hopper_flight, hopper_flip_turning
from prefrl.tasks import ObsExtra, get_task, register_task

HOLD_STEPS = 25  # count_clean_flips' upright steps after a landing


def landing_credit_held(inner):
    """The last landing's credit once the hopper has stood HOLD_STEPS steps on it, 0 to 1."""
    flight = hopper_flight(inner)
    if flight.since < HOLD_STEPS:
        return 0.0
    return flight.credit * max(0.0, 1.0 - flight.since / CREDIT_STEPS)


def reward(env, obs, action, next_obs):
    inner = env.unwrapped
    data = inner.data
    upright = 4.0 * math.cos(float(data.qpos[2])) + 4.0 * (float(data.qpos[1]) - 1.25)
    return hopper_flip_turning(inner) + upright + LANDING_BONUS * landing_credit_held(inner)


backflip = get_task("backflip")
register_task(
    dataclasses.replace(
        backflip,
        name="backflip_stand",
        behaviour_reward=reward,
        obs_extras=(
            *backflip.obs_extras[:-1],
            ObsExtra("landing credit, held", landing_credit_held, 0.0, 1.0),
        ),
    )
)


def reward_on_top(env, obs, action, next_obs):
    """The built-in person's pay, and the landing's credit once more from the 25th upright step."""
    inner = env.unwrapped
    return backflip.behaviour_reward(env, obs, action, next_obs) + LANDING_BONUS * landing_credit_held(inner)


register_task(
    dataclasses.replace(
        backflip,
        name="backflip_stand_on_top",
        behaviour_reward=reward_on_top,
        obs_extras=(*backflip.obs_extras, ObsExtra("landing credit, held", landing_credit_held, 0.0, 1.0)),
    )
)
