"""When a run is over, and whether it got everything it was promised.

A run is **complete** when the agent has taken all its steps, the whole label budget
has been answered, and the reward model has trained on every answer it can train on.
It ends **short** when no more labels can come: the labeler says so (no answer can be
trained on, too few clips to pair) or the person labelling has gone (the labelling
window closed after the agent finished). Otherwise it goes on: after the agent's last
step the labeler still asks the rest of the budget and the trainer still trains on it.

Both backends decide with :func:`end_of_run`, from what the roles reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefrl.rundir import resume_command


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: ``complete``, or short with the ``reason`` (one line, with how to go on)."""

    complete: bool
    reason: str | None = None


def end_of_run(
    *,
    agent_done: bool,
    labeler_done: dict[str, Any] | None,
    labels_trained: int,
    person_present: bool = True,
    labels_answered: int = 0,
    labels_trainable: int = 0,
    labels_budget: int = 0,
    run_dir: str = "RUN_DIR",
) -> RunEnd | None:
    """The end of the run, or None while it must go on.

    Args:
        agent_done: the agent has taken all its steps.
        labeler_done: the labeler's final report (``complete``, ``reason``,
            ``labels/trainable``), or None while it is still asking.
        labels_trained: labels in the reward model's newest training round.
        person_present: False when a person labels and their window has closed.
        labels_answered, labels_trainable: the answers in the store, and those that can be
            trained on, when the person has gone (the labeler's reports may lag the last ones).
        labels_budget, run_dir: for the message when the person has gone.
    """
    if labeler_done is not None and not labeler_done.get("complete", False):
        return RunEnd(False, str(labeler_done.get("reason") or "the labeler stopped before the budget"))
    if not agent_done:
        return None
    if labeler_done is not None:
        if labels_trained >= int(labeler_done.get("labels/trainable", 0)):
            return RunEnd(True)
        return None  # the reward model has not trained on the last answers yet
    if not person_present:
        if labels_answered >= labels_budget:
            return None  # the whole budget was given: the labeler is about to say so
        if labels_trained < labels_trainable:
            return None  # the reward model trains on the answers given before the run ends
        return RunEnd(
            False,
            f"the labelling window closed with {labels_answered} of {labels_budget} labels given; "
            f"give the rest with: {resume_command(run_dir)}",
        )
    return None
