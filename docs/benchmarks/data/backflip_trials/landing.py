"""Backflip persons that pay for a landing (docs/benchmarks/tasks.md, "A flip is within
reach; PPO does not find it"). A flight's backward turn (in turns, at most 1), once the
hopper lands on its foot, becomes a credit the person pays ``bonus`` times for every
step after it, fading to nothing over 100 steps; see :class:`Fade` for when a landing
earns it and when it is lost. The agent and the reward model see the flight's turn so far
and the credit (observation extras: a person watching the video sees the flip and the
landing). Backward turning in the air pays as in the built-in backflip (commit 046d2a3)
up to a full turn within the flight, and no more beyond it, so a tumble past the landing
earns nothing extra. Uprightness and height weighted 2.5 (at which the hopper found
whole turns, restart25) or 4 (at which it hopped high, tilting back, restart4); a hopper
lying on the floor for 50 steps is stood up again."""

import dataclasses
import math

from prefrl.task_library import hopper_fallen, hopper_foot_down, hopper_touching
from prefrl.tasks import BACKFLIP_TUMBLING, ObsExtra, get_task, register_task

FULL_TURN = 2 * math.pi


class Flight:
    """What the person remembers of the hopper's last flight, advanced once per sim time."""

    def __init__(self, angle):
        self.time, self.angle = 0.0, angle
        self.flying, self.turn = False, 0.0
        self.credit, self.since = 0.0, 0


def flight(inner, fade):
    data = inner.data
    now, angle = float(data.time), float(data.qpos[2])
    state = getattr(inner, "_prefrl_flight", None)
    if state is None or now < state.time or (now == 0.0 and state.time > 0.0):
        state = inner._prefrl_flight = Flight(angle)  # a reset (or a restart) begins afresh
        return state
    if now == state.time:
        return state  # read twice in one step
    backwards = state.angle - angle
    state.time, state.angle = now, angle
    touching = bool(hopper_touching(inner))
    if not touching:
        if not state.flying:
            state.flying, state.turn = True, 0.0
        state.turn += backwards
    elif state.flying:
        state.flying = False
        turned = min(max(state.turn / FULL_TURN, 0.0), 1.0)
        if turned < fade.whole:
            turned *= 0.5
        if fade.at_touch or (fade.upright and hopper_foot_down(inner) and not hopper_fallen(inner)):
            state.credit, state.since = turned * standing(inner), 0
        elif hopper_foot_down(inner) and (fade.graded or not hopper_fallen(inner)):
            state.credit, state.since = turned, 0
    state.since += 1
    if hopper_fallen(inner) and not (fade.graded or fade.at_touch):
        state.credit = 0.0
    if fade.upright and math.cos(float(data.qpos[2])) < math.cos(math.radians(fade.max_lean)):
        state.credit = 0.0
    return state


class Fade:
    """``steps``: how long a landing's credit lasts; ``graded``: a landing counts whenever
    the foot touches first, and the credit is paid in proportion to how well the hopper
    stands (cos of the lean, torso height from 0.3 m to 1.25 m) instead of being lost at a
    fall. ``at_touch``: the credit is set at the first touch of any part after a flight,
    in proportion to how well the hopper stands at that moment, and kept through a fall.
    ``upright``: the credit of a landing on the foot is in proportion to how well the
    hopper stands at the landing, and is lost at a fall or a lean of over ``max_lean``
    degrees. ``whole``: a flight that turned less than this (in turns) earns half."""

    def __init__(self, steps, graded=False, at_touch=False, upright=False, max_lean=60.0, whole=0.0):
        self.steps, self.graded, self.at_touch, self.upright = steps, graded, at_touch, upright
        self.max_lean, self.whole = max_lean, whole


def standing(inner):
    data = inner.data
    height = min(max((float(data.qpos[1]) - 0.3) / 0.95, 0.0), 1.0)
    return max(math.cos(float(data.qpos[2])), 0.0) * height


def credit_now(state, fade):
    return state.credit * max(0.0, 1.0 - state.since / fade.steps)


def person(bonus, fade, weight=2.5, air_height=0.0, air_com=0.0):
    def reward(env, obs, action, next_obs):
        inner = env.unwrapped
        data = inner.data
        state = flight(inner, fade)
        backwards = -float(data.qvel[2])
        if hopper_touching(inner):
            turning = 0.5 * min(backwards, 0.0)
        else:
            turning = backwards if state.turn < FULL_TURN else min(backwards, 0.0)
            turning += air_height * max(float(data.qpos[1]) - 1.25, 0.0)
            turning += air_com * max(float(data.subtree_com[1][2]) - 0.6, 0.0)  # standing: 0.59 m
        upright = weight * math.cos(float(data.qpos[2])) + weight * (float(data.qpos[1]) - 1.25)
        landed = credit_now(state, fade) * (standing(inner) if fade.graded else 1.0)
        return turning + upright + bonus * landed

    return reward


def extras(fade):
    def turn_so_far(inner):
        state = flight(inner, fade)
        return state.turn / FULL_TURN if state.flying else 0.0

    def credit(inner):
        return credit_now(flight(inner, fade), fade)

    return (
        ObsExtra("turned in this flight (turns)", turn_so_far),
        ObsExtra("landing credit", credit, 0.0, 1.0),
    )


backflip = BACKFLIP_TUMBLING
for name, bonus, fade, air_height, *air_com in (
    ("land20", 20.0, Fade(100), 0.0),
    ("land40", 40.0, Fade(100), 0.0),
    ("land40_graded", 40.0, Fade(100, graded=True), 0.0),
    ("land40_jump", 40.0, Fade(100), 5.0),
    ("touch40", 40.0, Fade(100, at_touch=True), 0.0),
    ("touch40_com", 40.0, Fade(100, at_touch=True), 0.0, 20.0),
):
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=person(bonus, fade, air_height=air_height, air_com=sum(air_com)),
            restart_when=hopper_fallen,
            restart_after=50,
            obs_extras=(*backflip.obs_extras, *extras(fade)),
        )
    )

# uprightness and height weighted 4, at which the hopper learned to hop high and tilt back
# in the air (restart4): does a landing's credit draw the tilt on to a whole turn?
for name, bonus in (("land40_w4", 40.0), ("land80_w4", 80.0)):
    register_task(
        dataclasses.replace(
            backflip,
            name=name,
            behaviour_reward=person(bonus, Fade(100), weight=4.0),
            restart_when=hopper_fallen,
            restart_after=50,
            obs_extras=(*backflip.obs_extras, *extras(Fade(100))),
        )
    )

# the same with PPO's entropy bonus at 0.01 (its default for the hopper: 0)
register_task(dataclasses.replace(get_task("land80_w4"), name="land80_w4_ent", ppo=(("ent_coef", 0.01),)))

# a landing on the foot upside down earned the whole credit above (land80_w4, seed 1: three
# hops of 0.15, 0.65 and 0.2 turns, the second landing on the foot leaning 124 degrees)
register_task(
    dataclasses.replace(
        get_task("land80_w4"),
        name="upland80_w4",
        behaviour_reward=person(80.0, Fade(100, upright=True), weight=4.0),
        obs_extras=(*backflip.obs_extras, *extras(Fade(100, upright=True))),
    )
)

# exploration held longer: each action held for 8 physics steps instead of Hopper's 4
# (MuJoCo's frame_skip; 62.5 steps a second, an 8 s episode of 500 steps), so that PPO's
# noise per step moves the body in coarser, longer pushes; stood up after 25 steps (0.4 s)
for name in ("land40", "upland80_w4"):
    task = get_task(name)
    register_task(
        dataclasses.replace(
            task,
            name=f"{name}_skip8",
            env_kwargs=(*task.env_kwargs, ("frame_skip", 8)),
            horizon=500,
            clip_length=32,
            restart_after=25,
        )
    )

# exploration correlated in time: PPO's action noise coloured (prefrl.agent.noise), pink
# (beta 1) or red (beta 2), instead of drawn afresh at every step
for name, beta in (("upland80_w4_pink", 1.0), ("upland80_w4_red", 2.0)):
    register_task(dataclasses.replace(get_task("upland80_w4"), name=name, ppo=(("noise_beta", beta),)))

# pink noise found flips that land on the foot and then rock back 42 degrees and fall
# (upland80_w4_pink, seed 0): the credit lost at a lean over 30 degrees, the measure's
# upright
register_task(
    dataclasses.replace(
        get_task("upland80_w4_pink"),
        name="upland80_w4_pink_lean30",
        behaviour_reward=person(80.0, Fade(100, upright=True, max_lean=30.0), weight=4.0),
        obs_extras=(*backflip.obs_extras, *extras(Fade(100, upright=True, max_lean=30.0))),
    )
)

# the flips of upland80_w4_pink_lean30 (seed 0) turn 0.90 of a turn in the air, just short
# of the measure's whole turn (330 degrees): a flight short of it earns half the credit
WHOLE = Fade(100, upright=True, max_lean=30.0, whole=330 / 360)
register_task(
    dataclasses.replace(
        get_task("upland80_w4_pink"),
        name="upland80_w4_pink_whole",
        behaviour_reward=person(80.0, WHOLE, weight=4.0),
        obs_extras=(*backflip.obs_extras, *extras(WHOLE)),
    )
)
