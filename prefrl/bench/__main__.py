"""``python -m prefrl.bench run CONFIG [--jobs N] [--out DIR]`` and ``python -m prefrl.bench report OUT``:
the bench commands without the ``prefrl`` entry point."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from prefrl.bench import bench, report
from prefrl.runtime.errors import RunError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prefrl.bench", description="Benchmark grids of prefrl runs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a grid file's unfinished cells, then write results and report")
    p.add_argument("config", help="grid file (TOML), e.g. benchmarks/classic.toml")
    p.add_argument("--jobs", type=int, default=None, help="runs at a time (default: the grid's jobs, else 1)")
    p.add_argument("--out", default=None, help="output directory (default runs/bench/<config name>)")
    p = sub.add_parser("report", help="rebuild results.csv, report.md and figures of an output directory")
    p.add_argument("out", help="the output directory of a bench run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            # the command as typed, for report.md (argv given: a call from Python, e.g. a test)
            command = None if argv is None else shlex.join(["python", "-m", "prefrl.bench", *argv])
            result = bench(args.config, args.out, jobs=args.jobs, command=command)
        else:
            result = report(args.out)
    except (ValueError, FileNotFoundError) as err:  # GridError is a ValueError
        print(f"prefrl bench: error: {err}", file=sys.stderr)
        return 2
    except RunError as err:  # BenchIncomplete, BenchBusy
        print(f"prefrl bench: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prefrl bench: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
