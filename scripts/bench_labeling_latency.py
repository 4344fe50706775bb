"""Benchmark: how long a person waits in the labelling window.

For each env: a run directory as ``prefrl train ENV --oracle human`` makes it, whose real
labeler (:class:`~prefrl.runtime.labeler.LabelerRole`, in a thread) keeps up to 3 queries
pending, chosen from clips of real rollouts (random policy, with snapshots), while a
monitor keeps ``status.json`` current. The real window (:func:`prefrl.ui.run_labeling`)
attaches to it and a scripted person (:class:`prefrl.ui.scripted.ScriptedPerson`)
presses the key the perfect oracle chooses ``--interval`` seconds after each pair
appears, through pygame's event queue. Measured, per env:

- key press -> next pair on screen (after the display flip), in ms, over the presses
  at which a rendered pair was ready (target: < 100 ms);
- rendered pairs ready at each key press besides the one on screen (target: >= 2);
- render time per clip (the frames the window shows: every ``frame_stride``-th frame).

With ``--train-load`` the run is a real one instead (``prefrl train ENV --oracle human``
without its own window, in a process group of its own): its labeler queues the queries,
and its agent and reward trainer train all along, at the lower priority prefrl gives them
when a person labels; the table adds the agent's env steps/s meanwhile.

Prints a table and writes it to ``--out`` (markdown), and its numbers beside it (the
same name, ``.csv``). Uses the display in ``DISPLAY``
(e.g. ``Xvfb :99 & DISPLAY=:99 python scripts/bench_labeling_latency.py``) or, without
one, SDL's dummy driver.

    python scripts/bench_labeling_latency.py                       # 3 envs, 10 answers each, 3 s apart
    python scripts/bench_labeling_latency.py --fast                # 5 answers, 0.3 s apart: a smoke check
    python scripts/bench_labeling_latency.py --envs Hopper-v5 --answers 20 --backend thread
    python scripts/bench_labeling_latency.py --train-load --answers 40   # while the agent trains
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prefrl.ui.render_ahead import MAX_DISPLAY_FPS

LATENCY_TARGET_MS = 100.0  # p95 of key press -> next pair on screen
READY_TARGET = 2  # pairs rendered ahead at a key press ...
READY_SHARE_TARGET = 0.95  # ... at this share of the presses


def bench_env(env_id: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One env: a live human run, the window on it, a scripted person; returns the row."""
    from prefrl.oracles import PerfectOracle
    from prefrl.rundir import RunDir
    from prefrl.runtime.channels import ClipBatch, LocalClipQueue, LocalStatus, LocalWeights
    from prefrl.runtime.config import TrainConfig
    from prefrl.runtime.labeler import LabelerRole
    from prefrl.runtime.monitor import Monitor
    from prefrl.ui.run_info import check_something_to_label, open_run
    from prefrl.ui.scripted import ScriptedPerson, collect_clips, make_human_run
    from prefrl.ui.window import LabelingWindow

    run_path = out / "runs" / env_id.replace("/", "_")
    shutil.rmtree(run_path, ignore_errors=True)
    if args.train_load:
        return bench_env_while_training(env_id, args, run_path)
    run = make_human_run(run_path, env_id, labels=args.answers, steps=100_000)
    config = TrainConfig.from_dict(RunDir(run_path).read_config())
    started = time.perf_counter()
    # Fixed-length episodes: a random Hopper falls within ~30 steps, and an episode shorter
    # than a clip gives no clip; with them the fallen hopper is filmed too.
    pool = collect_clips(env_id, args.pool, config.clip_length, fixed_length=True, seed=args.seed)
    print(
        f"{env_id}: {len(pool)} clips of {config.clip_length} steps in {time.perf_counter() - started:.1f} s"
    )

    stop, ready_to_label, errors = threading.Event(), threading.Event(), []

    def run_side() -> None:
        """The run's labeler and its status.json, as a live run keeps them."""
        try:
            clips = LocalClipQueue()
            # agent_step = the budget: the schedule then wants every label at once
            clips.put(ClipBatch(pool, agent_step=config.steps))
            status = LocalStatus()
            labeler = LabelerRole(config, run.path, clips, LocalWeights(), status)
            monitor = Monitor(run, config.steps, config.labels, progress=False)
            try:
                next_beat = 0.0
                while not stop.is_set():
                    if not labeler.done:
                        labeler.step()
                    monitor.consume(status.drain())
                    if time.monotonic() >= next_beat:
                        monitor.write_status(running=True)
                        next_beat = time.monotonic() + 0.5
                    ready_to_label.set()
                    time.sleep(0.02)
            finally:
                labeler.close()
                monitor.close()
        except Exception as err:
            errors.append(err)
            ready_to_label.set()

    thread = threading.Thread(target=run_side, name="run-side")
    thread.start()
    ready_to_label.wait(60)
    person = ScriptedPerson(run.store_path, PerfectOracle(), think_s=args.interval)
    opened = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        info = open_run(run.path)
        check_something_to_label(info)
        # run_labeling's steps, with the window kept for its playback record
        window = LabelingWindow(
            info, backend=args.backend, on_event=person, max_display_fps=args.max_display_fps
        )
        try:
            given = window.run(finish_linger_s=0)
            lateness = list(window.lateness)
        finally:
            window.close()
    finally:
        person.close()
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]
    row = summarize(env_id, person, given, args.answers, opened, load_before, args.backend)
    row["late_ms"] = _stats([1000 * x for x in lateness])
    return row


# A real preference run with a person as its oracle and no window of its own: the agent
# trains all along (pace free, far more steps than the bench lasts) while the schedule
# soon wants many labels, so the labeler always keeps queries waiting for the person.
TRAINING_RUN = """
import sys
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train
env_id, run_dir, labels = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = TrainConfig(env_id=env_id, oracle="human", pace="free", labels=labels, steps=5_000_000,
                     initial_fraction=0.02, decay_fraction=0.0005)
train(config, run_dir, progress=False, video=False)
"""


def bench_env_while_training(env_id: str, args: argparse.Namespace, run_path: Path) -> dict[str, Any]:
    """One env with the run's agent and reward trainer training meanwhile (real processes,
    at the priority prefrl gives them when a person labels)."""
    from prefrl.metrics import column, read_metrics
    from prefrl.oracles import PerfectOracle
    from prefrl.rundir import RunDir
    from prefrl.ui.run_info import open_run
    from prefrl.ui.scripted import ScriptedPerson
    from prefrl.ui.window import LabelingWindow

    command = [sys.executable, "-c", TRAINING_RUN, env_id, str(run_path), str(4 * args.answers)]
    run_process = subprocess.Popen(command, start_new_session=True)
    run = RunDir(run_path)
    deadline = time.monotonic() + 120
    while not (run.status_path.exists() and run.store_path.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    person = ScriptedPerson(run.store_path, PerfectOracle(), think_s=args.interval)
    opened = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        window = LabelingWindow(
            open_run(run.path),
            backend=args.backend,
            on_event=person,
            max_display_fps=args.max_display_fps,
        )
        try:
            given = window.run(max_answers=args.answers, finish_linger_s=0)
            lateness = list(window.lateness)
        finally:
            window.close()
    finally:
        person.close()
        os.killpg(run_process.pid, signal.SIGTERM)  # as Ctrl-C; a background job ignores SIGINT
        run_process.wait(120)
    row = summarize(env_id, person, given, args.answers, opened, load_before, args.backend)
    row["late_ms"] = _stats([1000 * x for x in lateness])
    sps = column(read_metrics(run.metrics_path), "charts/SPS")[1] if run.metrics_path.exists() else []
    row["agent_sps"] = float(np.median(sps)) if sps else None
    return row


def summarize(
    env_id: str, person: Any, given: int, budget: int, opened: float, load_before: float, backend: str
) -> dict[str, Any]:
    """The row of one env from what the scripted person saw and did."""
    shown = sorted(person.shown, key=lambda e: e.time)
    answered = {e.query_id: e for e in person.answered}
    latencies: list[float] = []
    waits: list[float] = []
    ready: list[int] = []
    for k, press in enumerate(sorted(person.presses, key=lambda p: p.time)):
        event = answered.get(press.query_id)
        if event is None:
            continue
        if budget - (k + 1) >= READY_TARGET:
            # Near the end of the budget the labeler asks no more, so fewer pairs can be ready.
            ready.append(event.ready)
        following = next((s for s in shown if s.time > press.time), None)
        if following is None:
            continue  # the last answer: nothing more to show
        delay_ms = (following.time - press.time) * 1000
        (latencies if event.ready > 0 else waits).append(delay_ms)
    render = [s for e in shown if e.render_s for s in e.render_s]
    first = shown[0] if shown else None
    return {
        "env": env_id,
        "backend": backend,
        "answers": given,
        "latency_ms": _stats(latencies),
        "presses_ready": len(latencies),
        "presses": len(latencies) + len(waits),  # those followed by another pair
        "waits_ms": _stats(waits),
        "ready": ready,  # pairs ready at each key press that counts (see the table's footnote)
        "render_s": float(np.median(render)) if render else None,
        "render_max_s": max(render) if render else None,
        "first_pair_s": (first.time - opened) if first else None,
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


def _stats(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    a = np.asarray(values)
    return float(np.median(a)), float(np.percentile(a, 95)), float(a.max())


CSV_COLUMNS = (
    "env",
    "load_mode",
    "answers",
    "latency_ms_median",
    "latency_ms_p95",
    "latency_ms_max",
    "presses_ready",
    "presses_counted",
    "presses_with_2_ready",
    "render_s_median",
    "render_s_max",
    "first_pair_s",
    "load_avg",
    "agent_steps_per_s",
)


def write_csv(rows: list[dict[str, Any]], path: Path, train_load: bool) -> None:
    """One line per env: the numbers of the table, for the record."""
    import csv

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            lat = r["latency_ms"] or (None, None, None)
            writer.writerow(
                [
                    r["env"],
                    "training" if train_load else "idle",
                    r["answers"],
                    *(None if v is None else round(v, 1) for v in lat),
                    r["presses_ready"],
                    len(r["ready"]),
                    sum(n >= READY_TARGET for n in r["ready"]),
                    r["render_s"] and round(r["render_s"], 3),
                    r["render_max_s"] and round(r["render_max_s"], 3),
                    r["first_pair_s"] and round(r["first_pair_s"], 2),
                    round(r["load"], 2),
                    r.get("agent_sps") and round(r["agent_sps"]),
                ]
            )


def table(rows: list[dict[str, Any]], args: argparse.Namespace, driver: str) -> str:
    def ms(stats: tuple[float, float, float] | None) -> str:
        return "–" if stats is None else " / ".join(f"{v:.0f}" for v in stats)

    def num(value: float | None, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    load = "while a real run's agent and reward trainer train" if args.train_load else "with the agent idle"
    lines = [
        f"Labelling latency {load}: a scripted person answers {args.answers} queries per env, {args.interval:g} s "
        f"after each pair appears; the run's labeler keeps 3 queries pending; display: {driver}; "
        f"renderer: {args.backend}; max display fps: {args.max_display_fps or 'default'}; {os.cpu_count()} CPUs.",
        "",
        "| env | key → next pair on screen, ms (median / p95 / max) | presses with a pair ready | "
        "ready pairs at a key press (min / mean; presses with ≥ 2)¹ | render s per clip (median / max) | first pair after s | "
        "playback frames late, ms (median / p95 / max) | load avg | agent env steps/s meanwhile | "
        "targets (p95 ≤ 100 ms, ≥ 2 ready at ≥ 95%) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lat = r["latency_ms"]
        ready = r["ready"]
        ready_min = min(ready) if ready else None
        ready_mean = float(np.mean(ready)) if ready else None
        ready_share = sum(n >= READY_TARGET for n in ready) / max(1, len(ready))
        ok = lat is not None and lat[1] <= LATENCY_TARGET_MS and ready_share >= READY_SHARE_TARGET
        presses = f"{r['presses_ready']} of {r['presses']}"
        if r["waits_ms"] is not None:
            presses += f"; otherwise waited {ms(r['waits_ms'])} ms"
        lines.append(
            f"| {r['env']} | {ms(lat)} | {presses} | {ready_min} / {num(ready_mean, '.2f')}; "
            f"{sum(n >= READY_TARGET for n in ready)} of {len(ready)} | "
            f"{num(r['render_s'], '.2f')} / {num(r['render_max_s'], '.2f')} | {num(r['first_pair_s'], '.1f')} | "
            f"{ms(r['late_ms'])} | {r['load']:.1f} | {num(r.get('agent_sps'), '.0f')} | "
            f"{'met' if ok else 'missed'} |"
        )
    lines += [
        "",
        f"¹ over the key presses after which at least {READY_TARGET} more queries were due (the labeler "
        "stops asking when the budget is reached, so the last presses can find fewer pairs).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1", "Hopper-v5"])
    parser.add_argument("--answers", type=int, default=10, help="answers per env (default 10)")
    parser.add_argument(
        "--interval",
        type=float,
        default=3.0,
        help="seconds from a pair appearing to the key press (default 3)",
    )
    parser.add_argument("--fast", action="store_true", help="a smoke check: 5 answers, 0.3 s apart")
    parser.add_argument(
        "--backend", default="process", choices=["process", "thread"], help="where pairs render"
    )
    parser.add_argument(
        "--max-display-fps",
        type=float,
        help="show clips at most this many frames/s (default: prefrl.ui.render_ahead.MAX_DISPLAY_FPS, "
        f"{MAX_DISPLAY_FPS['mujoco']:g} for MuJoCo, {MAX_DISPLAY_FPS['other']:g} otherwise)",
    )
    parser.add_argument(
        "--train-load",
        action="store_true",
        help="a real run trains meanwhile (agent and reward trainer as processes); the labeler is its own",
    )
    parser.add_argument("--pool", type=int, default=40, help="clips the labeler chooses pairs from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_labeling_latency/results.md")
    args = parser.parse_args()
    if args.fast:
        args.answers, args.interval = 5, 0.3
    torch.set_num_threads(1)
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    driver = f"X11 {os.environ['DISPLAY']}" if os.environ.get("DISPLAY") else "SDL dummy driver"
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for env_id in args.envs:
        rows.append(bench_env(env_id, args, out.parent))
        print(rows[-1], flush=True)
    text = table(rows, args, driver)
    out.write_text(text)
    write_csv(rows, out.with_suffix(".csv"), args.train_load)
    print()
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
