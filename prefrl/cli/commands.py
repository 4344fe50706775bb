"""What each ``prefrl`` command runs. Each imports what it runs when it runs, so
``prefrl --help`` loads no torch."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from typing import Any

from prefrl.errors import PrefrlError


class UserError(PrefrlError):
    """A mistake in what the user asked for; printed without a traceback."""


def parse_overrides(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``["learning_rate=1e-3", "hidden_sizes=(128,128)"]`` -> ``{...}`` (Python literals),
    given as ``flag`` (``--ppo``), which an error names."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {item}: expected KEY=VALUE, e.g. {flag} learning_rate=1e-3")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()  # a bare word, e.g. activation=relu
    return out


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.runtime.config import TrainConfig
    from prefrl.runtime.run import train
    from prefrl.tasks import trust_task
    from prefrl.ui import LabelingWindowProcess

    # flags that would do nothing, refused here (a stored config of an older run is not checked)
    if args.min_view is not None and args.oracle != "human":
        raise UserError("--min-view: for the window of --oracle human only; a synthetic oracle sees no video")
    if args.oracle == "human" and args.teacher != "perfect":  # the default, which a person replaces
        raise UserError(f"--teacher {args.teacher}: for a synthetic oracle only; a person answers here")
    if args.task:
        trust_task(args.task)  # the user named the file: loading it is what they asked for
    config = TrainConfig(
        env_id=args.env_id or ("" if args.task else "Pendulum-v1"),
        task=args.task,
        steps=args.steps,
        labels=args.labels,
        labels_from=args.labels_from,
        oracle=args.oracle,
        pace=args.pace,
        teacher=args.teacher,
        selection=args.selection,
        seed=args.seed,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        clip_length=args.clip_length,
        fixed_length=args.fixed_length,
        initial_fraction=args.initial_fraction,
        decay_fraction=args.decay_fraction,
        explore_labels=args.explore_labels,
        query_videos=args.query_videos,
        ppo=parse_overrides(args.ppo, "--ppo"),
        reward_model=parse_overrides(args.reward_model, "--reward-model"),
        eval_episodes=args.eval_episodes,
        num_evals=args.num_evals,
    )
    return train(
        config,
        args.run_dir,
        progress=not args.quiet,
        video=not args.no_video,
        # --oracle human: the window, as a process of its own
        labeling_window=LabelingWindowProcess(min_view_s=args.min_view),
    )


def cmd_label(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.ui.cli import cmd_label as label

    return label(args)


def cmd_play(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.play import play
    from prefrl.rundir import mark_stopped_if_dead

    mark_stopped_if_dead(args.run_dir)  # a killed run's status.json says so from now on
    return play(
        args.run_dir,
        episodes=args.episodes,
        out=args.out,
        gif=args.gif,
        seed=args.seed,
        trust_task_file=args.trust_task_file,
        task=args.task,
    )


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.bench import bench

    return bench(args.config, args.out, jobs=args.jobs, ray=args.ray, cpus_per_cell=args.cpus_per_cell)


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.bench import report

    result = report(args.out)
    result.pop("rows", None)  # the table is in report.md
    return result


def cmd_repair(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.prefs.repair import repair_store

    return repair_store(args.run_dir)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.prefs.export import export_run

    return export_run(args.run_dir, args.out)


def cmd_import(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.prefs.exchange import import_run

    return import_run(args.run_dir, args.source)


def cmd_resume(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.rundir import RunDir
    from prefrl.runtime.run import resume
    from prefrl.tasks import locate_run_task, open_run_task
    from prefrl.ui import LabelingWindowProcess
    from prefrl.upgrade import check_run_checkpoints

    run = RunDir(args.run_dir)
    config = run.read_config()
    # its task, loaded here (a task file only if trusted); the run's processes inherit the trust
    run_task = locate_run_task(config.get("task") or None, args.task)
    open_run_task(run_task, named=args.task, trust=args.trust_task_file, run_dir=args.run_dir)
    check_run_checkpoints(args.run_dir)  # an old or unsafe checkpoint: refused here, not in a child
    if run_task != (config.get("task") or None):  # a run made elsewhere: its task file is the user's copy
        run.write_config({**config, "task": run_task})
    return resume(
        args.run_dir,
        steps=args.steps,
        labels=args.labels,
        progress=not args.quiet,
        video=not args.no_video,
        labeling_window=LabelingWindowProcess(),
    )


def cmd_upgrade(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.upgrade import upgrade

    return upgrade(args.path)


def cmd_baseline(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.baseline import run_baseline

    return run_baseline(
        args.env_id or "",
        args.steps,
        task=args.task,
        trust_task_file=args.trust_task_file,
        seed=args.seed,
        run_dir=args.run_dir,
        reward=args.reward,
        fixed_length=args.fixed_length,
        ppo_overrides=parse_overrides(args.ppo, "--ppo"),
        eval_episodes=args.eval_episodes,
        num_evals=args.num_evals,
        video=not args.no_video,
        progress=not args.quiet,
    )


def cmd_fit_reward(args: argparse.Namespace) -> dict[str, Any]:
    from prefrl.fit_reward import DEFAULT_ROUNDS, fit_reward

    return fit_reward(
        args.source,
        args.run_dir,
        seed=args.seed,
        rounds=DEFAULT_ROUNDS if args.rounds is None else args.rounds,
        reward_model=parse_overrides(args.reward_model, "--reward-model"),
        task=args.task,
        trust_task_file=args.trust_task_file,
    )
