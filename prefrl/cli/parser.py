"""The ``prefrl`` command line's flags: one subcommand per command of
:mod:`prefrl.cli.commands`, and the option groups they share."""

from __future__ import annotations

import argparse

from prefrl.cli.commands import (
    cmd_baseline,
    cmd_bench,
    cmd_export,
    cmd_fit_reward,
    cmd_import,
    cmd_label,
    cmd_play,
    cmd_repair,
    cmd_report,
    cmd_resume,
    cmd_train,
    cmd_upgrade,
)

BASELINE_REWARDS = ("true", "constant")
"""``prefrl baseline --reward``'s names: the env's reward, or 1 every step
(prefrl.baseline.REWARDS); any other value is a run directory with a learned reward"""


def add_ray_options(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--cpus-per-cell``: a grid's cells as Ray tasks (docs/ray.md)."""
    p.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=False,
        metavar="ADDRESS",
        help="run each cell as a Ray task (pip install 'prefrl[ray]'; docs/ray.md): alone, on a "
        "cluster of this machine; with HOST:PORT (or auto), on that cluster. Put it after CONFIG",
    )
    p.add_argument(
        "--cpus-per-cell",
        type=float,
        default=None,
        metavar="N",
        help="with --ray: CPUs each cell's task reserves (default 1)",
    )


def _fixed_length(value: str) -> bool | int:
    """``--fixed-length``: true, false or a number of steps (argparse names the flag)."""
    if value.lower() in ("true", "yes", "on"):
        return True
    if value.lower() in ("false", "no", "off", "0"):
        return False
    try:
        return _at_least_one(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: choose true, false or a number of steps (at least 1)"
        ) from None


def _at_least_one(value: str) -> int:
    """A whole number, at least 1 (argparse names the flag)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number, at least 1")
    return number


def _seed(value: str) -> int:
    """``--seed``: a whole number from 0 to below
    :data:`~prefrl.runtime.config.SEEDS_BELOW` (argparse names the flag)."""
    from prefrl.runtime.config import SEEDS_BELOW  # only for a seed given: it loads torch

    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number < SEEDS_BELOW:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number from 0 to 2**63 - 1")
    return number


def add_env_options(p: argparse.ArgumentParser, fixed_length_default: str | None = None) -> None:
    """The options every command that trains shares; ``fixed_length_default`` words the
    default of ``--fixed-length`` in its help (None: not said)."""
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--run-dir",
        default=None,
        help="where to write the run (default runs/<kind>-<env>-s<seed>-<time>)",
    )
    p.add_argument(
        "--fixed-length",
        type=_fixed_length,
        default=None,
        metavar="BOOL|STEPS",
        help="hide termination: every episode lasts the env's time limit (true) or STEPS steps"
        + (f" (default {fixed_length_default})" if fixed_length_default else ""),
    )
    p.add_argument(
        "--ppo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a PPO hyperparameter, e.g. --ppo learning_rate=1e-3 (repeatable)",
    )
    p.add_argument(
        "--eval-episodes",
        type=_at_least_one,
        default=10,
        metavar="N",
        help="episodes per evaluation of the policy on the true reward, each with the most likely "
        "and with sampled actions (default 10; an Atari episode is 27,000 steps)",
    )
    p.add_argument(
        "--num-evals",
        type=_at_least_one,
        default=10,
        metavar="N",
        help="evaluations during the run (default 10)",
    )
    p.add_argument("--no-video", action="store_true", help="skip the final policy video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from prefrl.runtime.choices import BACKENDS, ORACLES, PACES, SELECTIONS  # light: no torch for --help

    parser = argparse.ArgumentParser(
        prog="prefrl",
        description="Deep reinforcement learning from human preferences for gymnasium control tasks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "baseline",
        help="train PPO on the true reward (the reference for preference runs), or retrain on a learned one",
        description="Train PPO from scratch on the true reward, a constant one, or a run's learned reward "
        "(frozen), and evaluate it on the true reward.",
    )
    p.add_argument(
        "env_id",
        nargs="?",
        default=None,
        help="gymnasium env id, e.g. CartPole-v1, Pendulum-v1, Hopper-v5; keyword arguments for "
        "gymnasium.make in parentheses: 'Hopper-v5(ctrl_cost_weight=0.01)' (default: the task's, "
        "or the --reward run's)",
    )
    p.add_argument(
        "--task",
        default=None,
        metavar="NAME|FILE.py:NAME",
        help="a behaviour task: PPO on its scripted person's reward (the reference of its preference "
        "runs); with --reward RUN_DIR, the run's task named again, which trusts its task file",
    )
    p.add_argument(
        "--trust-task-file",
        action="store_true",
        help="with --reward RUN_DIR: load the task file the run's config.json names (it is Python: "
        "loading it runs it)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps (default: the task's, else per env, see prefrl/agent/hyperparams.py)",
    )
    p.add_argument(
        "--reward",
        default="true",
        metavar="true|constant|RUN_DIR",
        help="true: the env's reward; constant: 1 every step (shows what termination alone teaches); "
        "RUN_DIR: the learned reward of a run (its checkpoints/reward_model.pt, or a reward_model.pt "
        "file), frozen, with PPO's reward scaling on and a discount of at least 0.99; from a run "
        "directory also the run's --fixed-length (the default) and --ppo overrides (--ppo still "
        "overrides). The summary reports the true return",
    )
    add_env_options(p, fixed_length_default="false; with --task, true; with --reward RUN_DIR, the run's")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("train", help="learn from preferences: agent, labeler and reward trainer in parallel")
    p.add_argument(
        "env_id",
        nargs="?",
        default=None,
        help="gymnasium env id (default Pendulum-v1, or the task's); keyword arguments for "
        "gymnasium.make in parentheses: 'ALE/Pong-v5(repeat_action_probability=0.25)'",
    )
    p.add_argument(
        "--task",
        default=None,
        help="a behaviour task to teach: backflip (Hopper), stork (Walker2d), spin (Pendulum), right (CartPole), "
        "or your own: FILE.py:NAME (a file that registers it, see prefrl.tasks)",
    )
    p.add_argument(
        "--oracle",
        choices=ORACLES,
        default="synthetic",
        help="who answers: a synthetic oracle (true reward) or you, in a pygame window",
    )
    p.add_argument(
        "--pace",
        choices=PACES,
        default=None,
        help="wait: the agent waits while the answers lag behind the label schedule (default with "
        "--oracle human); free: it never waits (default with a synthetic oracle)",
    )
    p.add_argument(
        "--teacher",
        default="perfect",
        metavar="NAME[:key=value,...]",
        help="synthetic teacher: perfect, stochastic, myopic, mistake, skip, equal (e.g. mistake:eps=0.2)",
    )
    p.add_argument(
        "--labels",
        type=int,
        default=None,
        help="label budget, at least 2 (default: the task's, e.g. 900 for backflip; else 100); "
        "0 with --labels-from",
    )
    p.add_argument(
        "--labels-from",
        default=None,
        metavar="RUN_DIR|EXPORT",
        help="also train the reward model on the labelled pairs of another run of the same env (its "
        "run directory, a store file or a `prefrl export` directory); they are copied into this run "
        "and not counted in --labels",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="agent env steps, at least one PPO rollout (default: the task's, else per env)",
    )
    p.add_argument(
        "--selection",
        choices=SELECTIONS,
        default="disagreement",
        help="how pairs are chosen: where the reward models disagree most (default), at random, or "
        "diverse: clips far apart in state space (for tasks whose answers are mostly ties)",
    )
    p.add_argument(
        "--explore-labels",
        type=int,
        default=0,
        metavar="N",
        help="explore with a state-entropy reward until N answers have said one clip is better, "
        "fading it out by then (for sparse tasks, e.g. MountainCar; default 0: off)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="multiprocess",
        help="multiprocess: three processes in parallel (default); inprocess: sequential, deterministic; "
        "ray: actors on a Ray cluster (pip install 'prefrl[ray]'; docs/ray.md)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="--backend ray: rollout-worker actors the agent's envs are spread over (default 0: none)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="--backend ray: the cluster to join, HOST:PORT or auto (default: a private one on this machine)",
    )
    p.add_argument(
        "--clip-length", type=int, default=None, help="steps per clip (default: per env, 1-2 s of video)"
    )
    p.add_argument(
        "--initial-fraction",
        type=float,
        help="share of labels asked about the untrained policy before RL starts (default: "
        "the task's, else 0.25)",
    )
    p.add_argument(
        "--decay-fraction",
        type=float,
        help="after that the label rate falls as c / (T + c), c = this times --steps: larger "
        "spreads the labels further into the run (default: the task's, else 0.1)",
    )
    p.add_argument(
        "--reward-model",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a reward-model setting, e.g. --reward-model ensemble_size=5 (repeatable)",
    )
    p.add_argument(
        "--query-videos", action="store_true", help="keep every query's clips as an mp4 in videos/"
    )
    from prefrl.ui.cli import add_min_view_argument  # --min-view: for the window of --oracle human

    add_min_view_argument(p)
    add_env_options(p)
    p.set_defaults(func=cmd_train, fixed_length=None)

    p = sub.add_parser("label", help="open the labelling window on a preference run (running or paused)")
    from prefrl.ui.cli import add_label_arguments, add_task_trust_options

    add_label_arguments(p)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("play", help="record videos of a run's current policy")
    p.add_argument("run_dir", help="a run directory (of prefrl train or prefrl baseline)")
    p.add_argument("--episodes", type=_at_least_one, default=1, help="episodes to record (default 1)")
    p.add_argument("--out", default=None, help="mp4 path (default RUN_DIR/videos/play.mp4)")
    p.add_argument("--gif", action="store_true", help="also write a gif beside the mp4")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the first episode")
    add_task_trust_options(p)
    p.set_defaults(func=cmd_play)

    p = sub.add_parser(
        "bench", help="run a benchmark grid (TOML): preference runs and their baselines, then a report"
    )
    p.add_argument("config", help="a grid file, e.g. benchmarks/classic.toml")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs at a time (default: the grid's, else 1; with --ray every cell, queued by Ray)",
    )
    p.add_argument("--out", default=None, help="output directory (default runs/bench/<config name>)")
    add_ray_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "report", help="rebuild results.csv, report.md and figures of a bench output directory"
    )
    p.add_argument("out", help="the output directory of a prefrl bench run")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "repair", help="set aside the queries of damaged clips in a run's preference store (answers are kept)"
    )
    p.add_argument("run_dir", help="a preference run directory (or its prefs.sqlite)")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser(
        "export",
        help="write a run's preference store (clips, queries, answers), with the labels it reused, "
        "to an export directory",
    )
    p.add_argument("run_dir", help="a preference run directory (or its prefs.sqlite)")
    p.add_argument("out", help="the export directory (created if needed; its export files are replaced)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="merge an export directory or another store into a run's preference store"
    )
    p.add_argument(
        "run_dir", help="a preference run directory (or its prefs.sqlite); a missing store is created"
    )
    p.add_argument(
        "source",
        help="an export directory (of prefrl export), another run directory (with the labels it reused) "
        "or its prefs.sqlite",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "fit-reward", help="fit a reward model offline on stored labels (a run, a store or an export)"
    )
    p.add_argument(
        "source", help="a preference run directory, its prefs.sqlite, or an export directory (prefrl export)"
    )
    p.add_argument(
        "--run-dir", default=None, help="where to write it (default runs/fit-reward-<env>-s<seed>-<time>)"
    )
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="training rounds (default 50; each is 10 passes over the labels)",
    )
    p.add_argument(
        "--reward-model",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a reward-model setting (default: the source run's settings, else the env's)",
    )
    add_task_trust_options(
        p,
        task_help="the source run's task, named again, which trusts its task file like --trust-task-file; "
        "for a store or an export of a task's labels, that task",
    )
    p.set_defaults(func=cmd_fit_reward)

    p = sub.add_parser("resume", help="continue a stopped or crashed preference run")
    p.add_argument("run_dir", help="the run directory to continue")
    p.add_argument("--steps", type=int, help="train further: a larger env-step budget for the whole run")
    p.add_argument("--labels", type=int, help="a larger label budget for the whole run")
    p.add_argument("--no-video", action="store_true", help="skip the final policy video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_task_trust_options(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "upgrade",
        help="rewrite the checkpoints of an older prefrl in the current format (only files you trust)",
    )
    p.add_argument(
        "path",
        help="a run directory (or a directory of runs, e.g. a bench output), or one .pt checkpoint",
    )
    p.set_defaults(func=cmd_upgrade)
    return parser
