"""``report.md`` and figures of a grid's output directory; :func:`rebuild` (``prefrl report OUT``).

Figures follow the paper's Figure 2: one panel per env, the true return of the policy
(``eval/mean_return`` of each run's ``metrics.csv``) against env steps, one curve per
label budget (mean over seeds, band: min to max), PPO on the true reward as the
reference (and PPO on a constant reward where the grid runs it), the random policy as a
flat line. One figure per query selection, for the perfect teacher (an env without it:
its first teacher).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.bench.grid import Cell, Grid, parse_grid, slug
from prefrl.bench.outdir import GRID_COPY, BenchFileError, cell_state, read_invocations
from prefrl.bench.results import baseline_means, write_results
from prefrl.errors import MissingFileError
from prefrl.metrics import curve, read_metrics

REPORT_FILE = "report.md"
FIGURES_DIR = "figures"
FIGURE_TEACHER = "perfect"
EVAL_KEY = "eval/mean_return"


def write_outputs(
    grid: Grid, out: str | Path, invocations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Write ``results.csv``, ``report.md`` and ``figures/*.png`` from the run directories
    under ``out`` (``invocations``: as :func:`invocations_of` reads them, by default).
    Returns ``{"results": path, "report": path, "figures": [paths], "rows": n}``."""
    out = Path(out)
    results_path, rows = write_results(grid, out)
    states = [(cell, *cell_state(cell, out)) for cell in grid.cells()]
    figures = plot_figures(grid, out, [cell for cell, state, _ in states if state == "done"])
    missing = [m for m in states if m[1] != "done"]
    invocations = invocations_of(out) if invocations is None else invocations
    text = render_report(grid, rows, invocations, [f.relative_to(out) for f in figures], missing)
    report_path = out / REPORT_FILE
    report_path.write_text(text)
    return {"results": results_path, "report": report_path, "figures": figures, "rows": len(rows)}


def rebuild(out: str | Path) -> dict[str, Any]:
    """Rewrite results, report and figures of an existing output directory; runs nothing.

    Uses the copy of the grid file the bench left there (``OUT/grid.toml``).

    Raises:
        MissingFileError (a FileNotFoundError): ``out`` holds no ``grid.toml`` (not a bench output directory).
        GridError: that copy no longer parses (e.g. a teacher this prefrl does not know).
    """
    out = Path(out)
    path = out / GRID_COPY
    if not path.exists():
        raise MissingFileError(
            f"{out} is not a bench output directory (no {GRID_COPY}); pass the --out of a prefrl bench run"
        )
    grid = parse_grid(path.read_text(), path, check_envs=False)
    invocations = invocations_of(out)
    original = [inv["grid"] for inv in invocations if inv.get("grid")]
    if original:  # name the report after the grid file, not after its copy
        grid = dataclasses.replace(grid, name=Path(original[-1]).stem)
    return write_outputs(grid, out, invocations)


def invocations_of(out: Path) -> list[dict[str, Any]]:
    """The invocations ``OUT/bench.json`` records; none when it is damaged (said in one
    line: the report is still written, without them)."""
    try:
        return read_invocations(out)
    except BenchFileError as err:
        print(f"prefrl: {err}; the report leaves out how the grid was run", file=sys.stderr, flush=True)
        return []


# ------------------------------------------------------------------------ report.md
def render_report(
    grid: Grid,
    rows: list[dict[str, Any]],
    invocations: list[dict[str, Any]],
    figures: list[Path],
    missing: list[tuple[Cell, str, str]],
) -> str:
    """The Markdown report (see :func:`write_outputs`)."""
    lines = [f"# Benchmark: {grid.name}", ""]
    if grid.description:
        lines += [grid.description, ""]
    lines += [
        "Normalised return = (R - R_random) / (R_ppo_true - R_random): R is a run's final mean "
        "true return over its evaluation episodes, R_random and R_ppo_true the means over seeds of "
        "the random policy and of PPO on the true reward, same env, settings and env steps. "
        'Cells: median [min, max] over seeds; "(k short)": k of those runs ended without their '
        "whole label budget (see their summary.json).",
        "",
        "## Preference runs",
        "",
        "| env | steps | labels | teacher | selection | seeds | normalised return | true return "
        "| labels used | reward-model accuracy | wall time (s) | env steps/s |",
        "|---|---:|---:|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["arm"] == "prefrl":
            groups.setdefault((row["env"], row["budget"], row["teacher"], row["selection"]), []).append(row)
    for (env, budget, teacher, selection), group in groups.items():
        lines.append(
            f"| {env} | {group[0]['steps']} | {budget} | {teacher} | {selection} | {_seeds(group)} | "
            f"{_spread(group, 'normalized_return', 2)} | {_spread(group, 'final_return')} | "
            f"{_mean(group, 'labels_used', 0)} | {_mean(group, 'reward_accuracy', 2)} | "
            f"{_mean(group, 'wall_time_s', 0)} | {_mean(group, 'steps_per_sec', 0)} |"
        )
    if not groups:
        lines.append("| (no finished preference run) |||||||||||| ")
    lines += _pivot(groups)
    lines += [
        "",
        "## Baselines",
        "",
        "| env | steps | arm | seeds | normalised return | true return | wall time (s) | env steps/s |",
        "|---|---:|---|---:|---|---|---:|---:|",
    ]
    means = baseline_means(rows)
    for env in dict.fromkeys(r["env"] for r in rows):
        for arm in ("random", "ppo_true", "ppo_constant"):
            group = [r for r in rows if r["env"] == env and r["arm"] == arm]
            if group:
                lines.append(
                    f"| {env} | {group[0]['steps']} | {arm} | {_seeds(group)} | {_spread(group, 'normalized_return', 2)} | "
                    f"{_spread(group, 'final_return')} | {_mean(group, 'wall_time_s', 0)} | "
                    f"{_mean(group, 'steps_per_sec', 0)} |"
                )
    lines.append("")
    lines.append(
        "Reference means (R_random, R_ppo_true): "
        + "; ".join(f"{env}: {_num(r)}, {_num(p)}" for env, (r, p) in means.items())
        if means
        else "No finished baseline: normalised returns are empty."
    )
    peers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["arm"] not in ("prefrl", "random", "ppo_true", "ppo_constant"):
            peers.setdefault((row["env"], row["arm"], row["budget"], row["steps"]), []).append(row)
    if peers:
        lines += [
            "",
            "## Other implementations (same env, perfect synthetic oracle)",
            "",
            "| env | implementation | steps | labels | seeds | normalised return | true return | labels used "
            "| wall time (s) |",
            "|---|---|---:|---:|---:|---|---|---:|---:|",
        ]
        for (env, arm, budget, steps), group in peers.items():
            lines.append(
                f"| {env} | {arm} | {steps} | {budget} | {_seeds(group)} | {_spread(group, 'normalized_return', 2)} | "
                f"{_spread(group, 'final_return')} | {_mean(group, 'labels_used', 0)} | {_mean(group, 'wall_time_s', 0)} |"
            )
    lines += [
        "",
        "Arms: `random` a uniformly random policy, `ppo_true` PPO on the true reward, "
        "`ppo_constant` PPO on a reward of 1 per step (what the timing of episode ends alone teaches).",
    ]
    if figures:
        lines += ["", "## Learning curves", ""]
        lines += [f"![{f.stem}]({f.as_posix()})" for f in figures]
    if missing:
        lines += ["", f"## Not finished ({len(missing)} of {len(grid.cells())} cells)", ""]
        for cell, state, why in missing:
            lines.append(f"- `{cell.key}`: {_STATE_TEXT.get(state, state)}" + (f": {why}" if why else ""))
    lines += [
        "",
        "## Environment settings",
        "",
        "| env | env id | task | steps | clip length | fixed length | PPO overrides | reward-model overrides |",
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for env in grid.envs:
        lines.append(
            f"| {env.label} | {env.env_id} | {env.task or ''} | {env.steps} | {env.clip_length} | "
            f"{env.fixed_length} | {_overrides(env.ppo)} | {_overrides(env.reward_model)} |"
        )
    lines += ["", "## How it was run", ""]
    for inv in invocations:
        machine = inv.get("machine", {})
        lines.append(
            f"- {inv.get('started_at', '?')}: `{inv.get('command', '?')}` in `{inv.get('cwd', '?')}` "
            f"(grid file {inv.get('grid', '?')}, jobs={inv.get('jobs', '?')}) on "
            f"{machine.get('platform', '?')}, {machine.get('cpu_count', '?')} CPUs ({machine.get('processor', '?')}), "
            f"Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}, prefrl {machine.get('prefrl', '?')}"
        )
    if not invocations:
        lines.append("- (no record of the runs: OUT/bench.json is missing or damaged)")
    lines += [f"- report written {time.strftime('%Y-%m-%d %H:%M:%S %z')}", ""]
    return "\n".join(lines)


def _pivot(groups: dict[tuple[Any, ...], list[dict[str, Any]]]) -> list[str]:
    """Per env, the median normalised return as labels x (teacher, selection): the long
    table above at a glance."""
    lines: list[str] = []
    for env in dict.fromkeys(key[0] for key in groups):
        keys = [key for key in groups if key[0] == env]
        columns = list(dict.fromkeys((teacher, selection) for _, _, teacher, selection in keys))
        budgets = list(dict.fromkeys(budget for _, budget, _, _ in keys))
        if len(columns) * len(budgets) < 2:
            continue
        lines += [
            "",
            f"{env}, median normalised return:",
            "",
            "| labels | " + " | ".join(f"{t} / {s}" for t, s in columns) + " |",
            "|---:|" + "---:|" * len(columns),
        ]
        for budget in budgets:
            cells = [_median(groups.get((env, budget, t, s), []), "normalized_return", 2) for t, s in columns]
            lines.append(f"| {budget} | " + " | ".join(cells) + " |")
    return lines


_STATE_TEXT = {
    "new": "not started",
    "interrupted": "started, no summary.json yet (interrupted, running or failed: see its bench.log)",
    "stale": "stale",
}


def _seeds(group: list[dict[str, Any]]) -> str:
    """The number of runs in a cell, and how many of them ended short of their label budget."""
    short = sum(str(row.get("complete")) == "False" for row in group)
    return f"{len(group)} ({short} short)" if short else str(len(group))


def _values(group: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in group if isinstance(r.get(key), int | float) and math.isfinite(r[key])]


def _spread(group: list[dict[str, Any]], key: str, digits: int | None = None) -> str:
    values = _values(group, key)
    if not values:
        return ""
    med, lo, hi = float(np.median(values)), min(values), max(values)
    if len(values) == 1:
        return _num(med, digits)
    return f"{_num(med, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _median(group: list[dict[str, Any]], key: str, digits: int) -> str:
    values = _values(group, key)
    return _num(float(np.median(values)), digits) if values else ""


def _mean(group: list[dict[str, Any]], key: str, digits: int) -> str:
    values = _values(group, key)
    return _num(float(np.mean(values)), digits) if values else ""


def _num(value: float | None, digits: int | None = None) -> str:
    """Returns to a readable precision: ``-1080``, ``21.4``, ``0.93``."""
    if value is None:
        return ""
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 1 else 2
    return f"{value:.{digits}f}"


def _overrides(table: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in table.items())


# ---------------------------------------------------------------------- figures
def plot_figures(grid: Grid, out: str | Path, finished: list[Cell]) -> list[Path]:
    """``OUT/figures/return_vs_steps-<selection>.png`` for every selection of the grid, from
    the ``finished`` cells' runs; returns the paths written (none without an evaluation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    cells = [c for c in finished if (c.run_dir(out) / "metrics.csv").exists()]
    selections = list(dict.fromkeys(s for env in grid.envs for s in env.selections))
    written = []
    for selection in selections:
        envs = [env for env in grid.envs if selection in env.selections]
        if not envs:
            continue
        cols = min(3, len(envs))
        rows_n = math.ceil(len(envs) / cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 3.8 * rows_n), dpi=110, squeeze=False)
        drew = False
        for ax, env in zip(axes.flat, envs, strict=False):
            teacher = FIGURE_TEACHER if FIGURE_TEACHER in env.teachers else env.teachers[0]
            mine = [c for c in cells if c.env == env.label]
            colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, len(env.budgets)))
            for budget, colour in zip(env.budgets, colours, strict=True):
                group = [
                    c
                    for c in mine
                    if c.arm == "prefrl"
                    and c.budget == budget
                    and c.teacher == teacher
                    and c.selection == selection
                ]
                drew |= _curve(ax, [_eval_curve(c, out) for c in group], f"{budget} labels", colour, "-")
            for arm, label, colour, style in (
                ("ppo_true", "PPO, true reward", "black", "--"),
                ("ppo_constant", "PPO, constant reward", "tab:gray", ":"),
            ):
                drew |= _curve(ax, [_eval_curve(c, out) for c in mine if c.arm == arm], label, colour, style)
            randoms = [_eval_curve(c, out) for c in mine if c.arm == "random"]
            random_values = [y for _, ys in randoms for y in ys]
            if random_values:
                ax.axhline(
                    float(np.mean(random_values)), color="tab:red", lw=1, ls="-.", label="random policy"
                )
            ax.set_title(f"{env.label} ({teacher} teacher, {selection} selection)", fontsize=9)
            ax.set_xlabel("env steps")
            ax.set_ylabel("true return (evaluation)")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="best")
        for ax in list(axes.flat)[len(envs) :]:
            ax.set_visible(False)
        if drew:
            fig.tight_layout()
            path = out / FIGURES_DIR / f"return_vs_steps-{slug(selection)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written


def _eval_curve(cell: Cell, out: Path) -> tuple[list[float], list[float]]:
    """A run's evaluations: ``(env steps, mean true return)``, one point per step (the last
    logged, since a resumed run may repeat a step)."""
    path = cell.run_dir(out) / "metrics.csv"
    if not path.exists():
        return [], []
    return curve(read_metrics(path), EVAL_KEY)


def mean_curve(
    curves: list[tuple[list[float], list[float]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, min, max)`` over runs, on the steps where every run has been
    evaluated (linear interpolation between a run's own evaluation steps)."""
    curves = [c for c in curves if c[0]]
    if not curves:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    lo = max(c[0][0] for c in curves)
    hi = min(c[0][-1] for c in curves)
    grid = np.array(sorted({x for c in curves for x in c[0] if lo <= x <= hi}))
    if grid.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    ys = np.stack([np.interp(grid, c[0], c[1]) for c in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def _curve(
    ax: Any, curves: list[tuple[list[float], list[float]]], label: str, colour: Any, style: str
) -> bool:
    steps, mean, low, high = mean_curve(curves)
    if steps.size == 0:
        return False
    n = sum(1 for c in curves if c[0])
    ax.plot(steps, mean, style, color=colour, lw=1.8, marker="o", markersize=3, label=f"{label} (n={n})")
    if n > 1:
        ax.fill_between(steps, low, high, color=colour, alpha=0.15, lw=0)
    return True
