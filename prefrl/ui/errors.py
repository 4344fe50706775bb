"""Errors of the labelling window that the command line turns into plain messages."""

from __future__ import annotations

from prefrl.errors import EXIT_FAILED, PrefrlError

NO_DISPLAY_HELP = (
    "The labelling window needs a display. Run it on a machine with a screen; or under a "
    "virtual display (apt-get install -y xvfb), e.g. `Xvfb :99 & DISPLAY=:99 prefrl label RUN_DIR` "
    "(watch it through a VNC server such as x11vnc); or let a synthetic oracle answer instead: "
    "`prefrl train ENV --oracle synthetic`."
)


class NoDisplayError(PrefrlError, RuntimeError):
    """There is no display to open the labelling window on (the message says how to get one)."""

    exit_code = EXIT_FAILED
