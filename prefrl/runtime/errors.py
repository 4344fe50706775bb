"""Errors that end a run early; each message says what happened and how to go on."""


class RunError(RuntimeError):
    """Base of the errors below."""


class RunInterrupted(RunError):
    """The run was stopped (Ctrl-C) before its end; it can be resumed."""


class RunFailed(RunError):
    """A role kept dying; the message names it and its last error."""


class RunStuck(RunError):
    """No role can make progress any more (in-process: nothing would ever change)."""
