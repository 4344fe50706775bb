"""Learning-curve plots (PNG) from a run's metrics.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prefrl.metrics import curve, read_metrics


def plot_learning_curve(
    metrics_csv: str | Path,
    out: str | Path,
    title: str,
    reference: dict[str, tuple[list[float], list[float]]] | None = None,
) -> Path:
    """True return against env steps: training episodes (smoothed) and evaluations, one
    point per step (:func:`prefrl.metrics.curve`: a role restarted after a crash logs again
    the steps since its last checkpoint).

    ``reference`` adds labelled curves ``{label: (steps, returns)}`` (e.g. a baseline).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    xs, ys = curve(rows, "charts/episodic_return")
    if xs:
        ax.plot(xs, ys, color="tab:blue", alpha=0.35, lw=1)
        ax.plot(xs, _smooth(ys), color="tab:blue", lw=2, label="training episodes (true return)")
    ex, ey = curve(rows, "eval/mean_return")
    if ex:
        ax.plot(ex, ey, "o-", color="tab:orange", lw=2, label="evaluation (10 episodes)")
    for label, (rx, ry) in (reference or {}).items():
        ax.plot(rx, ry, "--", lw=1.5, label=label)
    ax.set_xlabel("env steps")
    ax.set_ylabel("true episodic return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    else:  # e.g. a run that ended before its first episode or evaluation
        ax.text(0.5, 0.5, "no episode or evaluation logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def _smooth(ys: list[float], window: int = 10) -> np.ndarray:
    y = np.asarray(ys, dtype=np.float64)
    if len(y) < window:
        return y
    kernel = np.ones(window) / window
    head = np.array([y[: i + 1].mean() for i in range(window - 1)])
    return np.concatenate([head, np.convolve(y, kernel, mode="valid")])
