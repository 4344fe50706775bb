"""Whether the labelling window has a display to open on, checked before pygame starts.

:func:`check_display` fails early, with how to run the window anyway, when no X server or
Wayland compositor answers (:func:`probe_x11`, :func:`probe_wayland`: a connection to its
socket, no window opened). Without it SDL would fall back to its off-screen driver and the
window would open where nobody can see it. No pygame here: opening the window itself is
:mod:`prefrl.ui.view`'s.
"""

from __future__ import annotations

import os
import socket
import sys

from prefrl.render import frames
from prefrl.ui.errors import NO_DISPLAY_HELP, NoDisplayError

DISPLAY_PROBE_S = 2.0
"""how long the display check waits for the X server or Wayland compositor to answer"""


def check_display() -> None:
    """Fail early when no display can be reached.

    On Linux (and other X11 systems) a display is there when ``DISPLAY`` names an X server
    that answers, or ``WAYLAND_DISPLAY`` a Wayland compositor that does (a connection to
    its socket, no window opened), or the user chose an SDL video driver themselves
    (``SDL_VIDEODRIVER`` set before prefrl started: respected as it is, e.g. ``dummy`` for
    tests). Without this check SDL would fall back to its off-screen driver and the window
    would open where nobody can see it.

    An ``SDL_VIDEODRIVER`` that prefrl itself set (it points SDL at the dummy driver for
    offscreen rendering on machines without a display) does not count: only the one the
    process started with (:data:`prefrl.render.frames.USER_SDL_VIDEODRIVER`).

    Raises:
        NoDisplayError: with how to run the window anyway.
    """
    if sys.platform in ("darwin", "win32", "cygwin") or frames.USER_SDL_VIDEODRIVER:
        return
    x11, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
    if not (x11 or wayland):
        raise NoDisplayError(f"{NO_DISPLAY_HELP} (DISPLAY and WAYLAND_DISPLAY are not set)")
    problems = []
    if wayland:
        why = probe_wayland(wayland)
        if why is None:
            return
        problems.append(f"WAYLAND_DISPLAY={wayland}: {why}")
    if x11:
        why = probe_x11(x11)
        if why is None:
            return
        problems.append(f"DISPLAY={x11}: {why}")
    raise NoDisplayError(f"{NO_DISPLAY_HELP} ({'; '.join(problems)})")


def probe_x11(display: str, timeout_s: float = DISPLAY_PROBE_S) -> str | None:
    """None when an X server answers at ``display`` (``[host]:N[.S]``), else why not.

    A local display (no host, or ``unix``) is its socket ``/tmp/.X11-unix/XN`` (or the
    abstract one of the same name); ``host:N`` is TCP port 6000 + N (e.g. ssh's X
    forwarding, ``localhost:10.0``). Only a connection is made: nothing is sent.
    """
    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return "not a display name of the form [host]:N"
    host = host.removeprefix("unix/")  # unix/:N is a local display too
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets: list[str | bytes] = [path]
        if sys.platform.startswith("linux"):
            targets.insert(0, b"\0" + path.encode())  # the abstract socket X servers also listen on
        for target in targets:
            if _connects(socket.AF_UNIX, target, timeout_s):
                return None
        return f"no X server answers (nothing listens on {path})"
    if host.startswith("/"):  # a socket path (XQuartz style)
        return None if _connects(socket.AF_UNIX, display, timeout_s) else f"nothing listens on {display}"
    port = 6000 + int(number)
    if _connects(socket.AF_INET, (host, port), timeout_s):
        return None
    return f"no X server answers on {host}, port {port}"


def probe_wayland(name: str, timeout_s: float = DISPLAY_PROBE_S) -> str | None:
    """None when a Wayland compositor listens on ``name`` (relative to ``XDG_RUNTIME_DIR``
    unless absolute), else why not."""
    if not name.startswith("/"):
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if not runtime:
            return "XDG_RUNTIME_DIR is not set, so its socket cannot be found"
        name = os.path.join(runtime, name)
    return None if _connects(socket.AF_UNIX, name, timeout_s) else f"no compositor listens on {name}"


def _connects(family: int, address: str | bytes | tuple[str, int], timeout_s: float) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(address)
        return True
    except (OSError, ValueError):
        return False
