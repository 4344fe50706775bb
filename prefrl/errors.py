"""The one base class of the errors a user can cause, and the exit codes of the CLI.

A :class:`PrefrlError` is printed as one line (its message says what happened and how
to go on) and never with a traceback; any other exception is a bug and keeps its
traceback. This module is on the ground floor: it imports nothing from prefrl.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed or was stopped; the message says how to go on
EXIT_USAGE = 2  # what was asked for cannot be done (a bad value, a missing file)
EXIT_SHORT = 3  # the run ended without its whole label budget (summary.json says why)
EXIT_INTERRUPTED = 130  # Ctrl-C


class PrefrlError(Exception):
    """A problem the user can fix; the message is one line that names the fix."""

    exit_code = EXIT_USAGE


class ConfigError(PrefrlError, ValueError):
    """A setting with a value prefrl cannot use; the message names it and the accepted values."""
