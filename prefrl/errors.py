"""The one base class of the errors a user can cause, and the exit codes of the CLI.

A :class:`PrefrlError` is printed as one line (its message says what happened and how
to go on) and never with a traceback; any other exception is a bug and keeps its
traceback. This module is on the ground floor: it imports nothing from prefrl.
"""

from __future__ import annotations

import errno

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


class MissingFileError(PrefrlError, FileNotFoundError):
    """A file or directory the user named (or one a run should hold by now) is not there;
    the message names it and what to pass instead."""


class RunKindError(PrefrlError, ValueError):
    """A run directory of another kind than the command takes (a baseline run to resume,
    a run labelled by a synthetic oracle to label by hand)."""


OS_REFUSALS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EEXIST: "already exists",
    errno.EISDIR: "is a directory, not a file",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (the disk may be failing or gone)",
}
"""the errnos of an OS refusing a file operation for a reason the user can fix, in plain words"""


def os_refusal(err: BaseException) -> str | None:
    """``err``'s reason in plain words when it is the OS refusing a file operation for a
    reason the user can fix (disk full, read-only, permissions, a file in the way), else None."""
    if isinstance(err, OSError) and err.errno is not None:
        return OS_REFUSALS.get(err.errno)
    return None


class RenderError(PrefrlError, RuntimeError):
    """Frames cannot be drawn: the env cannot render an rgb_array frame, or the render env
    failed to build or to render."""

    exit_code = EXIT_FAILED
