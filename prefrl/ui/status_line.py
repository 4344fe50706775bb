"""The labelling window's status line: the labels given and wanted, what the run is doing,
the reward model's version, and this window's pace (labels per minute and the time to the
label budget at that rate)."""

from __future__ import annotations

from prefrl.ui.run_info import LabelingRun, RunState


def pace_line(answers: int, elapsed_s: float, left: int, sessions: int | None) -> str:
    """This window's pace: ``Window 3: 12 labels, 4.0/min, budget in ~9 min`` (``Window
    3``: the third labelling window opened on the run; ``left``: labels still to give)."""
    head = f"Window {sessions}" if sessions is not None else "This window"
    if answers <= 0:
        return f"{head}: no labels yet"
    minutes = max(elapsed_s, 1.0) / 60.0
    rate = answers / minutes
    text = f"{head}: {answers} label{'s' if answers != 1 else ''}, {rate:.1f}/min"
    if left > 0:
        text += f", budget in {_duration(left / rate)}"
    return text


def _duration(minutes: float) -> str:
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"~{round(minutes)} min"
    hours, rest = divmod(round(minutes), 60)
    return f"~{hours} h {rest:02d} min"


def status_line(state: RunState, given: int, run: LabelingRun, pace: str | None = None) -> str:
    """The status line: labels given / wanted now (budget), the agent's progress or what
    the run is doing, the reward model's version and, with ``pace``, this window's pace
    (:func:`pace_line`)."""
    status, budget = state.status, run.budget
    if state.known and state.live:
        wanted = status.labels_wanted if status.labels_wanted is not None else budget
        steps = f"Agent {status.agent_step or 0:,} / {status.total_steps or run.total_steps:,} env steps"
        if status.agent_waiting:
            steps += ", waiting for your labels"
        labels = f"Labels {given} given / {max(wanted, given)} wanted now (budget {budget})"
    elif state.live:
        steps = "Run starting"
        labels = f"Labels {given} given (budget {budget})"
    else:
        if state.gone:
            steps = "Run stopped unexpectedly (its process is gone)"
        elif state.stale:
            steps = "Run not responding (its status.json is out of date)"
        elif not state.known:
            steps = "Run not started"
        elif state.finished:
            steps = "Run finished"
        else:
            at = f" at {status.agent_step:,} env steps" if status.agent_step is not None else ""
            steps = f"Run stopped{at}"
        labels = f"Labels {given} given (budget {budget})"
    version = status.reward_version
    model = "Reward model not trained yet" if not version else f"Reward model v{version}"
    parts = (labels, steps, model) if pace is None else (labels, steps, model, pace)
    return "     ·     ".join(parts)
