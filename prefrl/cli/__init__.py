"""The ``prefrl`` command line: its flags (:mod:`prefrl.cli.parser`), what each command
runs (:mod:`prefrl.cli.commands`), and :func:`main`, which runs one and says in one line
what went wrong where the user can mend it."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence

from prefrl.cli.commands import UserError, parse_overrides
from prefrl.cli.parser import BASELINE_REWARDS, build_parser
from prefrl.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SHORT,
    EXIT_USAGE,
    PrefrlError,
    os_refusal,
)
from prefrl.utils.arguments import read_text_arguments

__all__ = ["BASELINE_REWARDS", "UserError", "build_parser", "main", "parse_overrides"]

SQLITE_REFUSALS = {
    "database or disk is full": "no space left on device (or the database is full)",
    "attempt to write a readonly database": "read-only (file system or permissions)",
}
"""SQLite's messages of the OS refusing a write, in plain words"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        read_text_arguments(args)
        result = args.func(args)
    except PrefrlError as err:  # the message says what happened and how to go on
        prefix = "error: " if err.exit_code == EXIT_USAGE else ""
        print(f"prefrl {args.command}: {prefix}{err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # disk full, read-only, permissions...: the user's to fix, in one line
        words = os_refusal(err)
        if words is None:
            raise  # anything else is a bug: keep its traceback
        where, hint = "", ""
        if err.filename is not None:
            from prefrl.rundir import labels_kept, resume_command, run_kind, run_of

            where, run = f"{err.filename}: ", run_of(str(err.filename))
            if args.command in ("train", "resume") and run is not None and run_kind(run) == "train":
                hint = f"; {labels_kept(run)}once fixed, continue with: {resume_command(run)}"
        print(f"prefrl {args.command}: error: {where}{words}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.OperationalError as err:  # the preference store on a full or read-only disk
        if str(err) not in SQLITE_REFUSALS:
            raise
        run_dir = getattr(args, "run_dir", None)
        store = f"{run_dir}/prefs.sqlite" if run_dir else "the preference store"
        print(f"prefrl {args.command}: error: {store}: {SQLITE_REFUSALS[str(err)]}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"prefrl {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(result, dict):
        from prefrl.utils.json_text import json_text

        print(json_text(result))
        if result.get("then"):  # what to do next, besides the numbers (prefrl label: the run died)
            print(f"prefrl {args.command}: {result['then']}", file=sys.stderr)
        if result.get("complete") is False:  # the run said why when it ended; say it last, too
            print(f"prefrl {args.command}: ended short: {result.get('incomplete_reason')}", file=sys.stderr)
            return EXIT_SHORT
    return EXIT_OK
