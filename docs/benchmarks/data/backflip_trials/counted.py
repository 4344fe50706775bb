"""The built-in backflip with the person's pay for turning shown to the reward model as
one observation (docs/benchmarks/tasks.md, "The turning that counts, observed").

The built-in person pays backward turning in the air up to a whole turn within the
flight (``hopper_flip_turning``): a product of the turning rate, "in the air" and "the
flight's turn is under one", which its reward models did not learn from clip
comparisons (they paid turning past a whole turn, and turning on the floor, nearly as
much as turning in a flip). A person watching the clips sees which turning counts: the
hopper turning in the air, not yet round. ``backflip_counted`` adds that as an
observation extra, so the person's whole reward is a sum of observed terms (the turning
that counts, cos of the torso angle, the height, the landing credit), each of which a
reward model can fit. The person, the restarts and the pink noise are the built-in
backflip's; the labels are spread into the run as in the spread runs (initial_fraction
0.1, decay_fraction 1.0)."""

import dataclasses

from prefrl.task_library import hopper_flip_turning
from prefrl.tasks import ObsExtra, get_task, register_task

backflip = get_task("backflip")
register_task(
    dataclasses.replace(
        backflip,
        name="backflip_counted",
        obs_extras=(*backflip.obs_extras, ObsExtra("turning that counts for a flip (rad/s)", hopper_flip_turning)),
        initial_fraction=0.1,
        decay_fraction=1.0,
    )
)
