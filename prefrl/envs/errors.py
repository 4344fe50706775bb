"""The one error type the environment layer raises: its message always names the fix."""

from prefrl.errors import PrefrlError


class EnvError(PrefrlError, ValueError):
    """An env prefrl cannot build or use; the message says what to do instead."""
