import subprocess
import sys

import pytest

from prefrl.metrics import MetricsLogger, column, curve, read_metrics


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


def test_a_metrics_row_cut_short_by_a_kill_is_skipped_by_the_readers(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "global_step,wall_time,labels/answered\n100,1.0,3\n200,2.0,5\n300,3"
    )  # the last cut short: its "3" may have been "3.5"
    rows = read_metrics(path)
    assert column(rows, "labels/answered") == ([100.0, 200.0], [3.0, 5.0])
    assert column(rows, "wall_time") == ([100.0, 200.0], [1.0, 2.0])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_last_row_cut_inside_its_last_field_is_skipped(tmp_path, newline):
    path = tmp_path / "metrics.csv"
    path.write_bytes(
        newline.join(["global_step,wall_time,ret", "100,1.0,-99.5", "200,2.0,-98.75", "300,3.0,-98"]).encode()
    )  # whole fields, but "-98" may have been "-98.5": no newline, not whole
    assert column(read_metrics(path), "ret") == ([100.0, 200.0], [-99.5, -98.75])
    path.write_bytes(path.read_bytes() + b".5" + newline.encode())  # the same row, whole
    assert column(read_metrics(path), "ret") == ([100.0, 200.0, 300.0], [-99.5, -98.75, -98.5])
    path.write_bytes(b"global_step,wall_time,re")  # the header cut short: no rows
    assert read_metrics(path) == []


HEADER = "global_step,wall_time,charts/episodic_return,labels/answered\r\n"
WHOLE = "2048,1.5,-1200.5,3\r\n"


@pytest.mark.parametrize(
    "tail",
    ["409", "4096,2.5,-900", "4096,2.5,-900.25,7", "4096,2.5,-9" + "\0" * 500, "\0" * 4096],
    ids=["after-the-step", "mid-value", "no-newline", "then-nuls", "nuls"],
)
def test_metrics_logger_cuts_a_torn_last_row_before_appending(tmp_path, capsys, tail):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + WHOLE + tail).encode())
    log = MetricsLogger(path, wall_time_offset=10.0)
    assert path.read_bytes() == (HEADER + WHOLE).encode()
    assert capsys.readouterr().err == (
        f"prefrl: {path} ended in a row cut short (a crash or a full disk): "
        f"dropped its last {len(tail.encode())} bytes\n"
    )
    log.log(6144, {"charts/episodic_return": -500.0, "labels/answered": 9})
    rows = read_metrics(path)
    assert [(r["global_step"], r["charts/episodic_return"], r["labels/answered"]) for r in rows] == [
        ("2048", "-1200.5", "3"),
        ("6144", "-500", "9"),
    ]
    log.log(8192, {"eval/mean_return": -300.0})  # a new column: the file is rewritten
    assert column(read_metrics(path), "labels/answered") == ([2048.0, 6144.0], [3.0, 9.0])
    assert column(read_metrics(path), "eval/mean_return") == ([8192.0], [-300.0])


def test_metrics_logger_leaves_a_whole_file_alone(tmp_path, capsys):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + WHOLE).encode())
    MetricsLogger(path)
    assert path.read_bytes() == (HEADER + WHOLE).encode()
    assert capsys.readouterr().err == ""


def test_the_readers_skip_rows_with_fields_missing_or_extra_or_not_numbers(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "global_step,wall_time,charts/episodic_return,labels/answered\n"
        "2048,1.5,-1200.5,3\n"
        "4096,2.5,-9006144,2.6,-500,9\n"  # a torn row with the next glued on: fields extra
        "5000,2.7\n"  # fields missing
        "50x0,2.8,-450,9\n"  # the step not a number
        "6000,\0\0,-450,9\n"  # the clock not a number
        "7000,3.0,-4\0\0,10\n"  # a value not a number: skipped by column
        "8000,3.5,-400,\n"
    )
    rows = read_metrics(path)
    assert [r["global_step"] for r in rows] == ["2048", "7000", "8000"]
    assert column(rows, "charts/episodic_return") == ([2048.0, 8000.0], [-1200.5, -400.0])
    assert column(rows, "labels/answered") == ([2048.0, 7000.0], [3.0, 10.0])
    log = MetricsLogger(path)
    log.log(9000, {"eval/mean_return": -300.0})  # rewritten with a new column: no crash
    assert [r["global_step"] for r in read_metrics(path)] == ["2048", "7000", "8000", "9000"]


SHORT_WRITE = """
import resource, sys
from prefrl.metrics import MetricsLogger
log = MetricsLogger(sys.argv[1])
log.log(2048, {"charts/episodic_return": -1200.5})
before = open(sys.argv[1], "rb").read()
size = len(before)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 6, resource.RLIM_INFINITY))  # 6 more bytes fit
try:
    log.log(4096, {"charts/episodic_return": -900.25})
except OSError as err:
    print(err)
print(open(sys.argv[1], "rb").read() == before)
"""


def test_a_row_the_disk_takes_only_part_of_is_taken_back(tmp_path):
    path = tmp_path / "metrics.csv"
    done = subprocess.run(
        [sys.executable, "-c", SHORT_WRITE, str(path)], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"no space left on device writing {path}; free some space and try again\nTrue\n"


def test_a_curve_has_one_point_per_step_the_last_logged_in_step_order(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(  # the agent was killed after step 3000 and restarted from its checkpoint at 2000
        "global_step,wall_time,charts/episodic_return\n"
        "1000,1,-900\n2000,2,-800\n3000,3,-700\n2000,4,-790\n3000,5,-690\n4000,6,-600\n"
    )
    rows = read_metrics(path)
    assert column(rows, "charts/episodic_return")[0] == [1000, 2000, 3000, 2000, 3000, 4000]  # as logged
    assert curve(rows, "charts/episodic_return") == ([1000, 2000, 3000, 4000], [-900, -790, -690, -600])
