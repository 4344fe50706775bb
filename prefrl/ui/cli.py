"""``prefrl label RUN_DIR``: the command line of the labelling window, and starting the
window as a process of its own (what ``prefrl train ENV --oracle human`` does).

``python -m prefrl.ui RUN_DIR`` runs the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefrl.errors import PrefrlError, RenderError
from prefrl.ui.errors import NoDisplayError
from prefrl.ui.render_ahead import BACKENDS
from prefrl.utils.arguments import read_text_arguments

if TYPE_CHECKING:
    from prefrl.ui.screen import EventSink, LabelEvent

# The window (pygame) and prefrl.render (gymnasium) are imported where used, so that
# `prefrl --help` (which builds `prefrl label`'s arguments from here) stays light.

EVENTS_ENV = "PREFRL_LABEL_EVENTS"
"""an environment variable: a file the window appends its events to (for tests that drive
it from another process, e.g. through ``prefrl train --oracle human``)"""


def add_label_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``prefrl label``."""
    p.add_argument(
        "run_dir", help="a run started with `prefrl train ENV --oracle human` (running or stopped)"
    )
    p.add_argument(
        "--max-answers", type=int, default=None, metavar="N", help="stop after N answers (default: no limit)"
    )
    p.add_argument(
        "--size",
        type=_size,
        default=None,
        metavar="WxH",
        help="window size in pixels (default 1280x720, or the screen if smaller)",
    )
    add_min_view_argument(p)
    add_task_trust_options(p)
    p.add_argument(
        "--stop-with-run",
        action="store_true",
        help="close when the run stops, even with questions left (how `prefrl train --oracle human` opens it)",
    )
    p.add_argument(
        "--renderer",
        choices=BACKENDS,
        default="process",
        help="render the next pairs in a separate process (default) or a thread of the window",
    )


def add_task_trust_options(
    p: argparse.ArgumentParser,
    task_help: str = "the run's task, named again: trusts its task file like --trust-task-file",
) -> None:
    """``--trust-task-file`` and ``--task``: of the commands that open a run of a task file
    (``prefrl label``, ``play``, ``resume``, ``fit-reward``)."""
    p.add_argument(
        "--trust-task-file",
        action="store_true",
        help="load the task file the run's config.json names (it is Python: loading it runs it)",
    )
    p.add_argument(
        "--task",
        default=None,
        metavar="FILE.py:NAME",
        help=task_help,
    )


def add_min_view_argument(p: argparse.ArgumentParser) -> None:
    """``--min-view SECONDS``: of ``prefrl label``, and of ``prefrl train`` for its window."""
    p.add_argument(
        "--min-view",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds a pair must be on screen before an answer key counts "
        "(default: one full play of the shorter clip; 0: at once)",
    )


def cmd_label(args: argparse.Namespace) -> dict[str, Any]:
    """Run the window for ``prefrl label``; returns what to print (answers given, the run).

    Raises:
        FileNotFoundError, ValueError, NothingToLabelError, NoDisplayError, RenderError:
            see :func:`prefrl.ui.run_labeling`.
    """
    from prefrl.rundir import mark_stopped_if_dead
    from prefrl.ui.window import run_labeling

    mark_stopped_if_dead(args.run_dir)  # a killed run's status.json says so from now on
    log = os.environ.get(EVENTS_ENV)
    answers = run_labeling(
        args.run_dir,
        max_answers=args.max_answers,
        size=args.size,
        backend=args.renderer,
        stop_with_run=args.stop_with_run,
        on_event=event_log(Path(log)) if log else None,
        min_view_s=getattr(args, "min_view", None),
        trust_task_file=args.trust_task_file,
        task=args.task,
    )
    return {"run_dir": str(args.run_dir), "answers_given": answers, "then": run_died_meanwhile(args.run_dir)}


def run_died_meanwhile(run_dir: str | Path) -> str | None:
    """After the window closed: what to do when the run's process died while it was open
    (killed, crashed: its ``status.json`` still says running), in one line; None when not.
    The window's terminal may be the only one left to say it."""
    from prefrl.rundir import mark_stopped_if_dead, resume_command

    if not mark_stopped_if_dead(run_dir):
        return None
    return (
        "the run stopped unexpectedly (its process is gone); every answer is saved. "
        f"Continue it with: {resume_command(run_dir)}"
    )


def event_log(path: Path) -> EventSink:
    """An observer that appends each :class:`~prefrl.ui.screen.LabelEvent` to ``path`` as a
    line of JSON (``kind``, ``query_id``, ``answer``), flushed at once: how a test driving
    a window in another process (``PREFRL_LABEL_EVENTS``) knows that a pair is on screen."""

    def write(event: LabelEvent) -> None:
        record = {"kind": event.kind, "query_id": event.query_id, "ready": event.ready}
        if event.answer is not None:
            record["answer"] = event.answer.value
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    return write


def start_labeling_window(
    run_dir: str | Path, *, max_answers: int | None = None, min_view_s: float | None = None
) -> subprocess.Popen[bytes]:
    """Start the labelling window on ``run_dir`` as a process of its own and return it.

    For ``prefrl train ENV --oracle human``: call :func:`prefrl.ui.check_display` first (so
    a machine without a display fails before the run starts), then this once the run
    directory has its ``config.json``. The window waits for the run's store and queries,
    and closes by itself once the run has stopped (``status.json`` says so). The
    child gets the SDL video driver this process started with, not the dummy driver prefrl
    may have chosen since for offscreen rendering.
    """
    from prefrl.render import frames

    env = dict(os.environ)
    if frames.USER_SDL_VIDEODRIVER is None:
        env.pop("SDL_VIDEODRIVER", None)
    else:
        env["SDL_VIDEODRIVER"] = frames.USER_SDL_VIDEODRIVER
    # absolute: the window reads its arguments as `prefrl label` does, and would take a
    # run in a folder named ~ here (./~/runs/x, printed ~/runs/x) for one in the home
    command = [sys.executable, "-m", "prefrl.ui", str(Path(run_dir).absolute()), "--stop-with-run"]
    if max_answers is not None:
        command += ["--max-answers", str(max_answers)]
    if min_view_s is not None:
        command += ["--min-view", repr(float(min_view_s))]
    return subprocess.Popen(command, env=env)


class LabelingWindowProcess:
    """The labelling window of ``prefrl train / resume`` with ``--oracle human``: checked
    before the run writes anything, started as a process of its own once the run directory
    exists (a :class:`prefrl.runtime.run.WindowLauncher`: ``train(..., labeling_window=...)``).

    Args:
        min_view_s: the window's ``--min-view`` (None: its default).
    """

    def __init__(self, min_view_s: float | None = None):
        self.min_view_s = min_view_s

    def check(self) -> None:
        from prefrl.ui.display import check_display

        check_display()

    def start(self, run_dir: Path) -> subprocess.Popen[bytes]:
        return start_labeling_window(run_dir, min_view_s=self.min_view_s)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prefrl.ui RUN_DIR ...``: exit status 0 after labelling, 2 on a usage
    problem (printed without a traceback)."""
    parser = argparse.ArgumentParser(prog="prefrl label", description="Label a preference run's clips.")
    add_label_arguments(parser)
    args = parser.parse_args(argv)
    try:
        read_text_arguments(args)
        result = cmd_label(args)
    except (PrefrlError, ValueError, FileNotFoundError, NoDisplayError, RenderError) as err:
        print(f"prefrl label: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefrl label: interrupted; the pair on screen stays pending", file=sys.stderr)
        return 130
    print(f"prefrl label: {result['answers_given']} answers given to {result['run_dir']}")
    if result["then"] is not None:
        print(f"prefrl label: {result['then']}", file=sys.stderr)
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 200:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT of at least 200x200, e.g. 1280x720, got {text!r}"
        )
    return size
