"""The human labelling path: the window a person answers queries in, and what feeds it.

``prefrl label RUN_DIR`` (:func:`run_labeling`) opens a pygame window on a preference run
started with ``--oracle human``, running or stopped; :func:`start_labeling_window` starts
it as a process of its own. See ``docs/labeling.md``.
"""

import os
from typing import TYPE_CHECKING, Any

# Before any module of the package imports pygame: no greeting on the terminal.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

if TYPE_CHECKING:
    from prefrl.errors import RenderError
    from prefrl.status import RunStatus
    from prefrl.ui.cli import LabelingWindowProcess, add_label_arguments, cmd_label, start_labeling_window
    from prefrl.ui.display import check_display
    from prefrl.ui.errors import NoDisplayError
    from prefrl.ui.render_ahead import RenderAhead, RenderedPair
    from prefrl.ui.run_info import NothingToLabelError, RunState, open_run, read_state
    from prefrl.ui.screen import LabelEvent
    from prefrl.ui.session import LabelingSession
    from prefrl.ui.window import LabelingWindow, run_labeling

_LAZY = {
    "add_label_arguments": "prefrl.ui.cli",
    "cmd_label": "prefrl.ui.cli",
    "start_labeling_window": "prefrl.ui.cli",
    "LabelingWindowProcess": "prefrl.ui.cli",
    "NoDisplayError": "prefrl.ui.errors",
    "RenderAhead": "prefrl.ui.render_ahead",
    "RenderedPair": "prefrl.ui.render_ahead",
    "RenderError": "prefrl.errors",
    "NothingToLabelError": "prefrl.ui.run_info",
    "RunState": "prefrl.ui.run_info",
    "RunStatus": "prefrl.status",
    "open_run": "prefrl.ui.run_info",
    "read_state": "prefrl.ui.run_info",
    "LabelEvent": "prefrl.ui.screen",
    "LabelingSession": "prefrl.ui.session",
    "LabelingWindow": "prefrl.ui.window",
    "check_display": "prefrl.ui.display",
    "run_labeling": "prefrl.ui.window",
}
__all__ = [
    "LabelEvent",
    "LabelingSession",
    "LabelingWindow",
    "LabelingWindowProcess",
    "NoDisplayError",
    "NothingToLabelError",
    "RenderAhead",
    "RenderError",
    "RenderedPair",
    "RunState",
    "RunStatus",
    "add_label_arguments",
    "check_display",
    "cmd_label",
    "open_run",
    "read_state",
    "run_labeling",
    "start_labeling_window",
]


def __getattr__(name: str) -> Any:
    # keeps `prefrl --help` and `from prefrl.ui.errors import ...` light: pygame and
    # gymnasium load only with the window
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefrl.ui' has no attribute {name!r}")
