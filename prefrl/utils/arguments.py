"""What every command does first with the values given to it as text."""

from __future__ import annotations

import argparse
import os
from typing import Any

from prefrl.errors import ConfigError


def read_text_arguments(args: argparse.Namespace) -> None:
    """Expand a leading ``~`` in every value given as text, as the shell does when it is
    not quoted: a quoted ``"~/runs/x"`` would otherwise make a directory named ``~`` here,
    and an ``rm -r ~`` meant for it would delete the home directory. An empty value is
    refused: to the file system it is the current directory, so ``prefrl export RUN ''``
    would write its files here and ``--run-dir ''`` make this directory a run.

    Raises:
        ConfigError: a value is the empty text.
    """

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value:
            raise ConfigError(
                "an empty argument (''): give every path, id and name in full ('.' is the current directory)"
            )
        return os.path.expanduser(value)

    for key, value in vars(args).items():
        setattr(args, key, [read(v) for v in value] if isinstance(value, list) else read(value))
