"""Learning curves (prefrl.plotting) from a run's metrics.csv."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes

from prefrl.plotting import plot_learning_curve


def test_a_run_restarted_after_a_crash_is_drawn_once_per_step(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(  # the agent was killed after step 3000 and restarted from its checkpoint at 2000
        "global_step,wall_time,charts/episodic_return,eval/mean_return\n"
        "1000,1,-900,\n2000,2,-800,-850\n3000,3,-700,\n2000,4,-790,-840\n3000,5,-690,\n4000,6,-600,-500\n"
    )
    drawn: list[list[float]] = []
    plot = Axes.plot

    def recorded(self: Axes, xs: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append(list(xs))
        return plot(self, xs, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recorded)
    plot_learning_curve(metrics, tmp_path / "curve.png", "restarted")
    assert drawn == [[1000, 2000, 3000, 4000], [1000, 2000, 3000, 4000], [2000, 4000]]
    assert (tmp_path / "curve.png").stat().st_size > 0
