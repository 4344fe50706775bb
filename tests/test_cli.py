import json
from pathlib import Path

import pytest

from prefrl.cli import main, parse_overrides
from prefrl.metrics import column, read_metrics


def test_baseline_writes_a_complete_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(
        [
            "baseline",
            "CartPole-v1",
            "--steps",
            "2048",
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--ppo",
            "num_envs=4",
            "--eval-episodes",
            "3",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert printed["run_dir"] == str(run_dir)
    assert summary["env_steps"] == 2048
    assert len(summary["eval_returns"]) == 3
    assert summary["final_eval_return"] == sum(summary["eval_returns"]) / 3
    assert summary["env_steps_per_sec"] > 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["ppo"]["num_envs"] == 4 and config["steps"] == 2048
    rows = read_metrics(run_dir / "metrics.csv")
    assert len(rows) == 2048 // (4 * 32)
    assert len(column(rows, "eval/mean_return")[0]) == 10
    assert (run_dir / "learning_curve.png").stat().st_size > 10_000
    assert (run_dir / "videos" / "final_policy.mp4").stat().st_size > 1_000
    assert (run_dir / "checkpoints" / "agent.pt").exists()
    # its policy played: a gif named with --out is the video; no episodes is no video
    assert main(["play", str(run_dir), "--out", str(tmp_path / "p.gif"), "--gif"]) == 0
    played = json.loads(capsys.readouterr().out)
    assert played["video"] == str(tmp_path / "p.gif") and "gif" not in played
    assert (tmp_path / "p.gif").read_bytes()[:3] == b"GIF"
    with pytest.raises(SystemExit):
        main(["play", str(run_dir), "--episodes", "0"])
    assert "argument --episodes: '0': give a whole number, at least 1" in capsys.readouterr().err


def test_unknown_env_id_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    code = main(["baseline", "Pendulm-v1", "--steps", "100", "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown env id 'Pendulm-v1'" in err and "Pendulum-v1" in err
    assert not (tmp_path / "r").exists()


def test_an_env_keyword_argument_the_env_does_not_take_is_a_clear_error(tmp_path, capsys):
    code = main(["baseline", "Hopper-v5(gravity=1.0)", "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "Hopper-v5 takes no keyword argument 'gravity'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bad_ppo_override_is_a_clear_error(tmp_path, capsys):
    code = main(["baseline", "CartPole-v1", "--run-dir", str(tmp_path / "r"), "--ppo", "lr=1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("prefrl baseline: error: --ppo lr=1: no PPO setting lr; known: activation, ")
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


def test_parse_overrides_reads_python_literals():
    assert parse_overrides(["a=1e-3", "b=(64, 64)", "c=relu", "d=True"], "--ppo") == {
        "a": 1e-3,
        "b": (64, 64),
        "c": "relu",
        "d": True,
    }


def test_an_override_without_a_value_names_its_flag(tmp_path, capsys):
    assert main(["train", "Pendulum-v1", "--reward-model", "epochs", "--run-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        "prefrl train: error: --reward-model epochs: expected KEY=VALUE, e.g. --reward-model learning_rate=1e-3\n"
    )
    assert not (tmp_path / "r").exists()


def test_train_takes_the_evaluation_settings(capsys):
    from prefrl.cli import build_parser

    args = build_parser().parse_args(["train", "--eval-episodes", "2", "--num-evals", "3"])
    assert (args.eval_episodes, args.num_evals) == (2, 3)
    assert (
        build_parser().parse_args(["train"]).eval_episodes,
        build_parser().parse_args(["train"]).num_evals,
    ) == (10, 10)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--eval-episodes", "0"])
    assert "argument --eval-episodes: '0': give a whole number, at least 1" in capsys.readouterr().err


def test_prefrl_export_calls_export_run_of_its_own_module(tmp_path, monkeypatch, capsys):
    # not through prefrl.prefs.exchange's re-export (bound when exchange was imported):
    # export.py is where it lives
    import prefrl.prefs.exchange  # noqa: F401

    called = []

    def export_run(run_dir, out):
        called.append((run_dir, out))
        return {"out": out}

    monkeypatch.setattr("prefrl.prefs.export.export_run", export_run)
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 0
    assert called == [(str(tmp_path / "run"), str(tmp_path / "out"))]
    assert json.loads(capsys.readouterr().out) == {"out": str(tmp_path / "out")}


def test_a_quoted_home_in_a_path_is_the_home_directory(tmp_path, monkeypatch, capsys):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    argv = ["baseline", "CartPole-v1", "--steps", "512", "--run-dir", "~/runs/b", "--quiet"]
    assert main([*argv, "--ppo", "num_envs=4", "--eval-episodes", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["run_dir"] == str(home / "runs" / "b")
    assert (home / "runs" / "b" / "summary.json").is_file()
    assert main(["import", "~/runs/new.sqlite", "~/missing"]) == 2
    assert (
        capsys.readouterr().err
        == f"prefrl import: error: cannot import {home / 'missing'}: no such file or directory\n"
    )
    assert list(cwd.iterdir()) == []  # no directory named ~ made here


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "RUN", ""],
        ["import", "", "SOURCE"],
        ["train", "CartPole-v1", "--run-dir", ""],
        ["baseline", "CartPole-v1", "--run-dir", ""],
        ["fit-reward", "SOURCE", "--run-dir", ""],
        ["resume", ""],
        ["label", ""],
        ["report", ""],
        ["repair", ""],
        ["play", ""],
    ],
)
def test_an_empty_argument_is_refused_and_nothing_is_written(argv, tmp_path, monkeypatch, capsys):
    """An empty path is the current directory to the file system: refused before any
    command runs, so nothing is written here."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"prefrl {argv[0]}: error: an empty argument (''): give every path, id and name in full "
        "('.' is the current directory)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_windows_own_entry_reads_its_arguments_as_prefrl_label_does(tmp_path, monkeypatch, capsys):
    """``python -m prefrl.ui RUN`` (how ``prefrl train --oracle human`` opens the window)
    refuses ``''`` and expands a quoted ``~`` as ``prefrl label`` does."""
    from prefrl.ui.cli import main as window_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert window_main([""]) == 2
    assert capsys.readouterr().err == (
        "prefrl label: error: an empty argument (''): give every path, id and name in full "
        "('.' is the current directory)\n"
    )
    assert window_main(["~/runs/a"]) == 2
    assert f"there is no run directory {tmp_path / 'home' / 'runs' / 'a'}." in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_run_opens_its_window_on_its_own_directory_even_one_named_like_home(tmp_path, monkeypatch):
    """A run in ./~/runs/x (a folder named ~ here): the window is given the absolute path,
    which it cannot take for ~/runs/x in the home directory."""
    from prefrl.ui import cli as window_cli

    started: list[list[str]] = []
    monkeypatch.setattr(window_cli.subprocess, "Popen", lambda command, env: started.append(command))
    monkeypatch.chdir(tmp_path)
    window_cli.start_labeling_window(Path("~") / "runs" / "x")
    assert started[0][3:5] == [str(tmp_path / "~" / "runs" / "x"), "--stop-with-run"]
