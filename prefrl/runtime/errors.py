"""Errors that end a run early; each message says what happened and how to go on."""

from prefrl.errors import EXIT_FAILED, PrefrlError


class RunError(PrefrlError, RuntimeError):
    """Base of the errors below."""

    exit_code = EXIT_FAILED


class RunInterrupted(RunError):
    """The run was stopped (Ctrl-C) before its end; it can be resumed."""


class RunFailed(RunError):
    """A role kept dying; the message names it and its last error, in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # a multi-line error of a child, too


class RunStuck(RunError):
    """No role can make progress any more (in-process: nothing would ever change)."""
