"""The ``prefrl`` command line."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from typing import Any


class UserError(Exception):
    """A mistake in what the user asked for; printed without a traceback."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["learning_rate=1e-3", "hidden_sizes=(128,128)"]`` -> ``{...}`` (Python literals)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()  # a bare word, e.g. activation=relu
    return out


def _fixed_length(value: str) -> bool | int:
    if value.lower() in ("true", "yes", "on"):
        return True
    if value.lower() in ("false", "no", "off", "0"):
        return False
    return int(value)


def add_env_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--run-dir",
        default=None,
        help="where to write the run (default runs/<kind>-<env>-s<seed>-<time>)",
    )
    p.add_argument(
        "--fixed-length",
        type=_fixed_length,
        default=False,
        metavar="BOOL|STEPS",
        help="hide termination: every episode lasts the env's time limit (true) or STEPS steps",
    )
    p.add_argument(
        "--ppo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a PPO hyperparameter, e.g. --ppo learning_rate=1e-3 (repeatable)",
    )
    p.add_argument("--no-video", action="store_true", help="skip the final policy video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefrl",
        description="Deep reinforcement learning from human preferences for gymnasium control tasks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("baseline", help="train PPO on the true reward (the reference for preference runs)")
    p.add_argument("env_id", help="gymnasium env id, e.g. CartPole-v1, Pendulum-v1, Hopper-v5")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps (default: per env, see prefrl/agent/hyperparams.py)",
    )
    p.add_argument(
        "--reward",
        choices=["true", "constant"],
        default="true",
        help="true: the env's reward; constant: 1 every step (shows what termination alone teaches)",
    )
    add_env_options(p)
    p.set_defaults(func=cmd_baseline)
    return parser


def cmd_baseline(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.agent.hyperparams import default_steps
    from prefrl.baseline import run_baseline

    return run_baseline(
        args.env_id,
        args.steps or default_steps(args.env_id),
        seed=args.seed,
        run_dir=args.run_dir,
        reward=args.reward,
        fixed_length=args.fixed_length,
        ppo_overrides=parse_overrides(args.ppo),
        video=not args.no_video,
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (UserError, ValueError, FileNotFoundError) as err:  # EnvError is a ValueError
        print(f"prefrl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"prefrl {args.command}: interrupted", file=sys.stderr)
        return 130
    if isinstance(result, dict):
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
