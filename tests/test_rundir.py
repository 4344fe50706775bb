import json

import pytest

from prefrl.rundir import MetricsLogger, RunDir, column, read_metrics


def test_metrics_logger_adds_columns_and_keeps_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MetricsLogger(path)
    log.log(10, {"a": 1.0})
    log.log(20, {"a": 2.0, "b": 5})
    log.log(30, {"b": float("nan")})
    rows = read_metrics(path)
    assert [r["global_step"] for r in rows] == ["10", "20", "30"]
    assert column(rows, "a") == ([10.0, 20.0], [1.0, 2.0])
    assert column(rows, "b") == ([20.0], [5.0])
    # a resumed run appends to the same file with the same columns
    again = MetricsLogger(path, wall_time_offset=100.0)
    again.log(40, {"a": 4.0})
    assert column(read_metrics(path), "a")[0] == [10.0, 20.0, 40.0]
    assert float(read_metrics(path)[-1]["wall_time"]) >= 100.0


def test_run_dir_config_round_trip_and_clear_error(tmp_path):
    run = RunDir.create(tmp_path / "r", "baseline", "CartPole-v1", 0)
    run.write_config({"env_id": "CartPole-v1", "steps": 5})
    assert run.read_config() == {"env_id": "CartPole-v1", "steps": 5, "format_version": 1}
    assert json.loads(run.config_path.read_text())["steps"] == 5
    with pytest.raises(FileNotFoundError, match="not a prefrl run directory"):
        RunDir(tmp_path / "nothing").read_config()


def test_a_metrics_row_cut_short_by_a_kill_is_skipped_by_column(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "global_step,wall_time,labels/answered\n100,1.0,3\n200,2.0,5\n300,3"
    )  # the last cut short
    rows = read_metrics(path)
    assert column(rows, "labels/answered") == ([100.0, 200.0], [3.0, 5.0])
    assert column(rows, "wall_time") == ([100.0, 200.0, 300.0], [1.0, 2.0, 3.0])
