"""The benchmark harness: grid files, running (with resume and failures), results and report."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import InterruptAfter

from prefrl.bench import BenchBusy, BenchIncomplete, GridError, bench, load_grid, parse_grid, run_grid
from prefrl.bench.outdir import cell_state, read_invocations
from prefrl.bench.results import COLUMNS, read_results
from prefrl.bench.runner import GridOutcome, command_line, record_invocation
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunInterrupted
from prefrl.runtime.run import train

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SMOKE = BENCHMARKS / "smoke.toml"


def cli(argv: list[str]) -> int:
    """``prefrl ...``: the command line's own entry point."""
    from prefrl.cli import main

    return main(argv)


def snapshot(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()


SMOKE_KEYS = [
    "Pendulum-v1/random-s0",
    "Pendulum-v1/ppo_true-s0",
    "Pendulum-v1/prefrl-b8-perfect-random-s0",
    "Pendulum-v1/prefrl-b8-mistake_eps_0.2-random-s0",
]
PERFECT = "Pendulum-v1/prefrl-b8-perfect-random-s0"


@dataclass
class SmokeGrid:
    """The smoke grid's output after each of the three steps of :func:`smoke`."""

    out: Path
    runs: dict[str, Path]
    interrupted_state: tuple[str, str]  # the preference cell's state after Ctrl-C
    config_before: bytes  # its config.json then
    stopped: GridOutcome  # the grid stopped after its first cell
    stopped_lines: list[str]
    stopped_ppo_finished: bool
    random_summary: tuple[int, bytes]  # the finished cell's summary.json then
    exit_code: int  # `prefrl bench` run again
    printed: str


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> SmokeGrid:
    """The smoke grid, run as a person would: one preference cell stopped by Ctrl-C halfway
    through its labels, then part of the grid (stopped after its first cell), then
    ``prefrl bench`` again to finish it. Tests that change the output work on a copy."""
    grid = load_grid(SMOKE)
    out = tmp_path_factory.mktemp("smoke") / "out"
    cells = {c.key: c for c in grid.cells()}
    runs = {key: cell.run_dir(out) for key, cell in cells.items()}
    perfect = cells[PERFECT]
    with pytest.raises(RunInterrupted):
        train(
            TrainConfig.from_dict(perfect.spec["config"]),
            runs[PERFECT],
            progress=False,
            video=False,
            oracle=InterruptAfter(4),
        )
    interrupted_state = cell_state(perfect, out)
    config_before = (runs[PERFECT] / "config.json").read_bytes()

    lines: list[str] = []
    stopped = run_grid(grid, out, jobs=1, should_stop=lambda result: True, echo=lines.append)
    stopped_ppo_finished = (runs["Pendulum-v1/ppo_true-s0"] / "summary.json").exists()
    random_summary = snapshot(runs["Pendulum-v1/random-s0"] / "summary.json")

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exit_code = cli(["bench", str(SMOKE), "--out", str(out), "--jobs", "2"])
    return SmokeGrid(
        out=out,
        runs=runs,
        interrupted_state=interrupted_state,
        config_before=config_before,
        stopped=stopped,
        stopped_lines=lines,
        stopped_ppo_finished=stopped_ppo_finished,
        random_summary=random_summary,
        exit_code=exit_code,
        printed=buffer.getvalue(),
    )


def copy_of(smoke: SmokeGrid, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A copy of the smoke grid's output, and its run directories, for a test to change."""
    out = tmp_path / "out"
    shutil.copytree(smoke.out, out)
    return out, {key: out / run.relative_to(smoke.out) for key, run in smoke.runs.items()}


def test_smoke_grid_expands_to_its_cells():
    assert [c.key for c in load_grid(SMOKE).cells()] == SMOKE_KEYS


def test_a_preference_cell_stopped_by_ctrl_c_is_interrupted(smoke):
    assert smoke.interrupted_state == ("interrupted", "")


def test_a_grid_stopped_after_a_cell_leaves_the_others_not_run(smoke):
    assert not smoke.stopped.ok
    assert [r.status for r in smoke.stopped.results] == ["finished", "not_run", "not_run", "not_run"]
    assert any("Pendulum-v1/random-s0" in line and "return" in line for line in smoke.stopped_lines)
    assert not smoke.stopped_ppo_finished


def test_bench_again_finishes_the_rest_without_rerunning_or_restarting(smoke):
    assert smoke.exit_code == 0
    assert "4 of 4 cells finished (1 before, 3 now)" in smoke.printed
    # the finished cell is not run again
    assert snapshot(smoke.runs["Pendulum-v1/random-s0"] / "summary.json") == smoke.random_summary
    # the interrupted preference run is continued with its labels, not restarted
    assert (smoke.runs[PERFECT] / "config.json").read_bytes() == smoke.config_before
    assert " resume: " in (smoke.runs[PERFECT] / "bench.log").read_text()
    for key, run in smoke.runs.items():
        assert (run / "summary.json").exists(), key
        assert (run / "bench.log").exists(), key


def test_results_csv_has_a_row_per_run_normalised_against_the_baselines(smoke):
    rows = read_results(smoke.out / "results.csv")
    with (smoke.out / "results.csv").open(newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
    assert [(r["arm"], r["teacher"]) for r in rows] == [
        ("random", ""),
        ("ppo_true", ""),
        ("prefrl", "perfect"),
        ("prefrl", "mistake:eps=0.2"),
    ]
    by_arm = {r["arm"] + r["teacher"]: r for r in rows}
    r_random = float(by_arm["random"]["final_return"])
    r_ppo = float(by_arm["ppo_true"]["final_return"])
    pref = by_arm["prefrlperfect"]
    expected = (float(pref["final_return"]) - r_random) / (r_ppo - r_random)
    assert float(pref["normalized_return"]) == pytest.approx(expected, rel=1e-12)
    assert float(by_arm["random"]["normalized_return"]) == 0.0
    assert float(by_arm["ppo_true"]["normalized_return"]) == 1.0
    assert pref["budget"] == "8" and pref["labels_used"] == "8" and pref["selection"] == "random"
    assert pref["env"] == "Pendulum-v1" and pref["steps"] == "2048" and pref["seed"] == "0"
    assert 0.0 <= float(pref["reward_accuracy"]) <= 1.0
    assert float(pref["wall_time_s"]) > 0 and float(pref["steps_per_sec"]) > 0
    assert by_arm["random"]["labels_used"] == ""
    summary = json.loads((smoke.out / pref["run_dir"] / "summary.json").read_text())
    assert float(pref["tie_share"]) == pytest.approx(summary["answers"]["equal"] / 8)
    assert by_arm["random"]["tie_share"] == "" and by_arm["ppo_true"]["tie_share"] == ""
    assert float(pref["final_return_stochastic"]) == pytest.approx(summary["final_eval_return_stochastic"])
    assert float(by_arm["ppo_true"]["final_return_stochastic"]) <= 0.0  # Pendulum's returns are negative


def test_report_md_has_the_table_the_baselines_how_it_was_run_and_the_figure(smoke):
    pref = next(r for r in read_results(smoke.out / "results.csv") if r["teacher"] == "perfect")
    text = (smoke.out / "report.md").read_text()
    assert "| env | steps | labels | teacher | selection | seeds | normalised return |" in text
    assert (
        f"| Pendulum-v1 | 2048 | 8 | perfect | random | 1 | {float(pref['normalized_return']):.2f} |" in text
    )
    assert "| Pendulum-v1 | 2048 | ppo_true | 1 | 1.00 |" in text
    assert "smoke.toml" in text and "torch" in text and "CPUs" in text
    assert (smoke.out / "figures" / "return_vs_steps-random.png").stat().st_size > 10_000
    assert "figures/return_vs_steps-random.png" in text


def test_prefrl_report_rebuilds_results_and_figures_from_the_runs(smoke, tmp_path):
    out, _ = copy_of(smoke, tmp_path)
    rows = read_results(out / "results.csv")
    figure = out / "figures" / "return_vs_steps-random.png"
    (out / "results.csv").unlink()
    figure.unlink()
    assert cli(["report", str(out)]) == 0
    assert read_results(out / "results.csv") == rows
    assert figure.exists()


def test_an_edited_grid_does_not_mix_its_runs_with_the_old_ones(smoke):
    edited = parse_grid(SMOKE.read_text().replace("steps = 2048", "steps = 4096"), SMOKE)
    state, why = cell_state(edited.cells()[1], smoke.out)
    assert state == "stale" and "steps: 2048 in the run, 4096 in the grid" in why


@pytest.mark.parametrize(
    ("setting", "difference"),
    [
        ("num_evals = 2\neval_episodes = 3", "eval_episodes: 10 in the run, 3 in the grid"),
        ("num_evals = 3", "num_evals: 2 in the run, 3 in the grid"),
    ],
)
def test_a_ppo_baseline_evaluated_otherwise_than_the_grid_says_is_stale(smoke, setting, difference):
    ppo_true = smoke.runs["Pendulum-v1/ppo_true-s0"]
    config = json.loads((ppo_true / "config.json").read_text())
    assert (config["eval_episodes"], config["num_evals"]) == (10, 2)  # the grid's, recorded
    edited = parse_grid(SMOKE.read_text().replace("num_evals = 2", setting), SMOKE)
    cell = edited.cells()[1]
    assert cell.key == "Pendulum-v1/ppo_true-s0"
    state, why = cell_state(cell, smoke.out)
    assert state == "stale" and difference in why


def test_a_ppo_baseline_of_an_older_prefrl_is_judged_by_its_summary(smoke, tmp_path):
    """A baseline's config.json without eval_episodes and num_evals (written before they
    were recorded): its eval_episodes is the number of returns of its final evaluation in
    summary.json; its num_evals is unknown and taken as the grid's, since it only spaces the
    points of the learning curve (not the final return the report normalises with)."""
    out, runs = copy_of(smoke, tmp_path)
    ppo_true = runs["Pendulum-v1/ppo_true-s0"]
    config = json.loads((ppo_true / "config.json").read_text())
    for key in ("eval_episodes", "num_evals"):
        config.pop(key, None)
    (ppo_true / "config.json").write_text(json.dumps(config))

    def state(settings: str = "num_evals = 2") -> tuple[str, str]:
        grid = parse_grid(SMOKE.read_text().replace("num_evals = 2", settings), SMOKE)
        return cell_state(grid.cells()[1], out)

    assert state() == ("done", "")
    assert state("num_evals = 2\neval_episodes = 10") == ("done", "")
    assert state("num_evals = 3") == ("done", "")
    stale, why = state("num_evals = 2\neval_episodes = 3")
    assert stale == "stale" and "eval_episodes: 10 in the run, 3 in the grid" in why
    (ppo_true / "summary.json").unlink()  # interrupted: restarted from scratch, with the grid's settings
    assert state("num_evals = 2\neval_episodes = 3") == ("interrupted", "")


def test_a_failing_cell_is_reported_with_its_log_and_does_not_stop_the_others(smoke, tmp_path):
    out, runs = copy_of(smoke, tmp_path)
    mistake = runs["Pendulum-v1/prefrl-b8-mistake_eps_0.2-random-s0"]
    (mistake / "summary.json").unlink()
    (mistake / "prefs.sqlite").write_bytes(b"not a database" * 100)
    (runs["Pendulum-v1/random-s0"] / "summary.json").unlink()
    ppo_summary = snapshot(runs["Pendulum-v1/ppo_true-s0"] / "summary.json")
    lines: list[str] = []
    with pytest.raises(BenchIncomplete, match=r"3 of 4 cells finished .*; 1 failed"):
        bench(SMOKE, out, jobs=2, echo=lines.append)
    failure = next(line for line in lines if "FAILED" in line)
    assert "mistake_eps_0.2" in failure and "bench.log" in failure
    assert "    | " in failure and "prefs.sqlite" in failure  # the tail of the log: the error
    assert (runs["Pendulum-v1/random-s0"] / "summary.json").exists()  # restarted from scratch
    assert snapshot(runs["Pendulum-v1/ppo_true-s0"] / "summary.json") == ppo_summary


BASE = """
[grid]
teachers = ["perfect"]
[envs.Pendulum-v1]
budgets = [10]
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "stpes = 100\n", "unknown key 'stpes' in [envs.Pendulum-v1] (did you mean 'steps'?)"),
        (BASE.replace('["perfect"]', '["perfct"]'), "teachers[0]: unknown oracle 'perfct'"),
        (BASE.replace('["perfect"]', '["mistake:epsilon=0.2"]'), "has no parameter 'epsilon'"),
        (BASE.replace("[10]", "[1]"), "bad label budget 1 in budgets"),
        (BASE.replace("[10]", '["10"]'), 'bad label budget "10" in budgets'),
        (BASE.replace('["perfect"]', '["mistake:eps=2"]'), "mistake:eps=2"),
        (BASE + "steps = true\n", "[envs.Pendulum-v1]: steps must be an integer, not true"),
        (BASE.replace("budgets = [10]", "steps = 100"), "no label budgets"),
        (BASE + 'selections = ["active"]\n', "unknown selection 'active'"),
        (BASE + "ppo = { lr = 1 }\n", "--ppo lr=1: no PPO setting lr; known: activation"),
        (
            BASE + "reward_model = { size = 1 }\n",
            "--reward-model size=1: no reward-model setting size; known: batch_size",
        ),
        (
            BASE + "clip_length = 500\n",
            "clip_length 500 is longer than an episode of Pendulum-v1 (200 steps)",
        ),
        (BASE + "fixed_length = -3\n", "fixed_length must be true, false or a number of steps > 0"),
        (BASE + "train = { seed = 3 }\n", "cannot set ['seed']"),
        (
            BASE + "train = { initial_fracton = 0.5 }\n",
            "unknown key 'initial_fracton' in train = {...} (did you mean 'initial_fraction'?)",
        ),
        (
            BASE + 'train = { labels_from = "/nowhere/run" }\n',
            "train = {labels_from = '/nowhere/run'}: no run directory, store or export at /nowhere/run",
        ),
        (BASE + 'env = "Pendulm-v1"\n', "Unknown env id 'Pendulm-v1'"),
        (
            BASE.replace('["perfect"]', '["mistake:eps=0.2", "mistake(eps=0.2)"]'),
            "would share the run directory",
        ),
        (BASE.replace("[grid]", "[grids]"), "unknown key 'grids' in the top level (did you mean 'grid'?)"),
        ("[grid]\nseeds = [0]\n", "no envs"),
        (
            BASE.replace("[grid]", "[grid]\nseeds = []"),
            "[envs.Pendulum-v1]: seeds = [] (here or in [grid]) runs",
        ),
        (BASE + "seeds = []\n", "seeds = [] (here or in [grid]) runs nothing; list at least one seed"),
        (
            BASE.replace('["perfect"]', "[]"),
            "[envs.Pendulum-v1]: teachers = [] (here or in [grid]) runs nothing; list at least one "
            'teacher, e.g. teachers = ["perfect"], or leave teachers out for the perfect teacher',
        ),
        (
            BASE + "selections = []\n",
            "[envs.Pendulum-v1]: selections = [] (here or in [grid]) runs nothing; list at least one "
            'selection, e.g. selections = ["random"], or leave selections out for random selection',
        ),
        (
            BASE.replace("[grid]", "[grid]\nselections = []"),
            "[envs.Pendulum-v1]: selections = [] (here or in [grid]) runs nothing",
        ),
        (
            BASE.replace("budgets = [10]", "budgets = []"),
            "[envs.Pendulum-v1]: budgets = [] (here or in [grid]) runs nothing; list at least one "
            "label budget, e.g. budgets = [50, 100]",
        ),
        (
            BASE + "seeds = [0, 9223372036854775808]\n",
            "bad seed 9223372036854775808 in seeds: each must be below 9223372036854775808",
        ),
        ("[grid\n", "not valid TOML"),
    ],
)
def test_grid_errors_name_the_problem(text, message):
    with pytest.raises(GridError) as err:
        parse_grid(text, Path("g.toml"))
    assert message in str(err.value)
    assert str(err.value).startswith("g.toml: ")


def test_invalid_grid_runs_nothing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace("[10]", "[0]"))
    with pytest.raises(GridError, match="bad label budget 0"):
        bench(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_second_bench_in_the_same_output_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with (out / "bench.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BenchBusy, match="another prefrl bench"):
            run_grid(load_grid(SMOKE), out, echo=lambda line: None)
    assert not (out / "runs").exists()


def test_ready_grids_expand_to_the_documented_cells():
    classic = load_grid(BENCHMARKS / "classic.toml").cells()
    assert len(classic) == 114
    assert sum(c.arm == "prefrl" for c in classic) == 84
    keys = [c.key for c in classic]
    assert len(set(keys)) == len(keys)
    assert "Pendulum-v1/prefrl-b100-perfect-disagreement-s2" in keys
    assert "CartPole-v1/ppo_constant-s2" in keys and "Pendulum-v1/ppo_constant-s0" not in keys
    cartpole = next(c for c in classic if c.key == "CartPole-v1/ppo_true-s0")
    assert cartpole.spec["fixed_length"] == 200 and cartpole.steps == 100_000
    assert "Pendulum-teachers/prefrl-b100-equal-random-s1" in keys
    arms = [f"prefrl-b{b}-perfect-{s}-s0" for b in (350, 700, 1400) for s in ("disagreement", "random")]
    hopper = load_grid(BENCHMARKS / "hopper.toml").cells()
    assert sorted(c.name for c in hopper) == sorted(["ppo_true-s0", "random-s0", *arms])
    assert all(c.steps == 1_000_000 for c in hopper)
    assert all(
        c.spec.get("fixed_length", c.spec.get("config", {}).get("fixed_length")) is True for c in hopper
    )
    episodic = load_grid(BENCHMARKS / "hopper_episodic.toml").cells()
    assert sorted(c.name for c in episodic) == sorted(["ppo_constant-s0", "ppo_true-s0", "random-s0", *arms])
    assert all(
        c.spec.get("fixed_length", c.spec.get("config", {}).get("fixed_length")) is False for c in episodic
    )


def test_env_tables_override_and_merge_grid_defaults():
    grid = parse_grid(
        """
        [grid]
        seeds = [0, 1]
        budgets = [20]
        ppo = { num_envs = 4, learning_rate = 1e-3 }
        [envs.Pendulum-v1]
        [envs.CartPole-short]
        env = "CartPole-v1"
        seeds = [5]
        steps = 5000
        teachers = ["equal:eps_equal=0.2"]
        selections = ["disagreement"]
        ppo = { num_envs = 2 }
        """
    )
    pendulum, cartpole = grid.envs
    assert pendulum.seeds == (0, 1) and pendulum.ppo == {"num_envs": 4, "learning_rate": 1e-3}
    assert cartpole.env_id == "CartPole-v1" and cartpole.seeds == (5,) and cartpole.steps == 5000
    assert cartpole.ppo == {"num_envs": 2, "learning_rate": 1e-3}
    assert cartpole.fixed_length == 200  # the preference defaults of the env id
    keys = [c.key for c in grid.cells() if c.env == "CartPole-short"]
    assert keys == [
        "CartPole-short/random-s5",
        "CartPole-short/ppo_true-s5",
        "CartPole-short/prefrl-b20-equal_eps_equal_0.2-disagreement-s5",
    ]


def test_a_grid_of_a_task_file_runs_its_baselines_on_the_tasks_env_and_finds_them_again(tmp_path):
    """Each cell is a fresh process: the random policy and PPO on the scripted person's
    reward load the task file the grid names (its env exists only then), PPO with the
    task's own settings, and the next bench finds those runs to be the grid's."""
    from test_tasks import write_task_file

    path = write_task_file(tmp_path, "leanbench")
    grid = tmp_path / "task.toml"
    grid.write_text(
        f"""
        [grid]
        seeds = [0]
        teachers = ["perfect"]
        selections = ["random"]
        backend = "inprocess"
        num_evals = 1
        [envs.CartPole-v1]
        task = "{path}:leanbench"
        steps = 512
        budgets = [4]
        ppo = {{ num_envs = 2, num_steps = 256 }}
        reward_model = {{ epochs_per_round = 2, min_steps_per_round = 5 }}
        """
    )
    out, lines = tmp_path / "out", []
    bench(grid, out, jobs=1, echo=lines.append)
    runs = out / "runs" / "CartPole-v1"
    assert sorted(p.name for p in runs.iterdir()) == [
        "ppo_true-s0",
        "prefrl-b4-perfect-random-s0",
        "random-s0",
    ]
    reference = json.loads((runs / "ppo_true-s0" / "config.json").read_text())
    assert (reference["env_id"], reference["task"]) == (
        "prefrl/CartPoleLeanbench-v0",
        f"{path.resolve()}:leanbench",
    )
    assert reference["ppo"]["gamma"] == 0.97  # the task's, as in its preference runs
    assert (
        json.loads((runs / "random-s0" / "config.json").read_text())["env_id"]
        == "prefrl/CartPoleLeanbench-v0"
    )
    lines.clear()
    bench(grid, out, jobs=1, echo=lines.append)
    assert any("3 of 3 cells finished (3 before, 0 now)" in line for line in lines), lines


def test_peer_runs_join_the_table_normalised_against_the_same_baselines(tmp_path):
    from prefrl.bench.results import collect_peer_rows, normalize
    from prefrl.rundir import RunDir

    grid = parse_grid("[grid]\nbudgets = [100]\n[envs.Pendulum-v1]\nsteps = 200_000\n", Path("g.toml"))
    peer = RunDir(tmp_path / "runs" / "Pendulum-v1" / "imitation-b100-s0")
    peer.path.mkdir(parents=True)
    peer.write_config(
        {
            "kind": "peer",
            "arm": "imitation",
            "env_id": "Pendulum-v1",
            "labels": 100,
            "steps": 200_000,
            "seed": 0,
        }
    )
    peer.write_summary({"final_eval_return": -700.0, "labels_used": 100, "wall_time_s": 50.0})
    unfinished = RunDir(tmp_path / "runs" / "Pendulum-v1" / "imitation-b100-s1")
    unfinished.path.mkdir(parents=True)
    unfinished.write_config({"kind": "peer", "arm": "imitation", "labels": 100, "steps": 200_000, "seed": 1})
    rows = collect_peer_rows(grid, tmp_path)
    assert [(r["arm"], r["budget"], r["seed"], r["final_return"]) for r in rows] == [
        ("imitation", 100, 0, -700.0)
    ]
    rows += [
        {"env": "Pendulum-v1", "arm": "random", "final_return": -1200.0},
        {"env": "Pendulum-v1", "arm": "ppo_true", "final_return": -200.0},
    ]
    normalize(rows)
    assert rows[0]["normalized_return"] == pytest.approx(0.5)  # (-700 + 1200) / (-200 + 1200)


@pytest.mark.parametrize("label", ["Pendulum v1", "classic/Pendulum-v1"])
def test_peer_runs_beside_the_grids_runs_of_a_label_that_is_no_file_name_join_the_table(tmp_path, label):
    from prefrl.bench.results import collect_peer_rows
    from prefrl.rundir import RunDir

    text = f'[grid]\nbudgets = [100]\n[envs."{label}"]\nenv = "Pendulum-v1"\nsteps = 200_000\n'
    grid = parse_grid(text, Path("g.toml"))
    beside = grid.cells()[0].run_dir(tmp_path).parent  # where the grid's own runs of the env go
    assert beside.name != label  # "Pendulum_v1", "classic_Pendulum-v1"
    as_labelled = tmp_path / "runs" / label  # the label itself, as this function's docs once said
    for folder, seed in ((beside, 0), (as_labelled, 1)):
        peer = RunDir(folder / f"imitation-b100-s{seed}")
        peer.path.mkdir(parents=True)
        config = {"kind": "peer", "arm": "imitation", "labels": 100, "steps": 200_000, "seed": seed}
        peer.write_config(config)
        peer.write_summary({"final_eval_return": -700.0 - seed})
    rows = collect_peer_rows(grid, tmp_path)
    assert [(r["env"], r["arm"], r["seed"], r["final_return"], r["run_dir"]) for r in rows] == [
        (label, "imitation", 0, -700.0, str((beside / "imitation-b100-s0").relative_to(tmp_path))),
        (label, "imitation", 1, -701.0, str(Path("runs", label, "imitation-b100-s1"))),
    ]


def test_the_command_line_is_written_as_the_user_typed_it():
    assert command_line(["/venv/bin/prefrl", "bench", "my grid.toml"]) == "prefrl bench 'my grid.toml'"
    assert (
        command_line(["/src/prefrl/cli/__main__.py", "bench", "g.toml"])
        == "python -m prefrl.cli bench g.toml"
    )
    assert (
        command_line(["/src/prefrl/bench/__main__.py", "run", "g.toml"])
        == "python -m prefrl.bench run g.toml"
    )
    assert command_line(["tool.py", "x"]) == "tool.py x"


# ------------------------------------------------------------------ a damaged output directory
DAMAGED = b'{"invocations": [{"command": "prefrl bench smoke.toml", "cwd": "/wo'  # cut short


def json_error(data: bytes) -> str:
    try:
        json.loads(data)
    except ValueError as err:
        return str(err)
    raise AssertionError("valid JSON")


def test_prefrl_report_of_a_damaged_bench_json_says_so_and_still_writes_the_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(SMOKE, out / "grid.toml")
    (out / "bench.json").write_bytes(DAMAGED)
    assert cli(["report", str(out)]) == 0
    assert capsys.readouterr().err == (
        f"prefrl: {out / 'bench.json'} is damaged (not JSON: {json_error(DAMAGED)}); "
        "the report leaves out how the grid was run\n"
    )
    assert (
        "- (no record of the runs: OUT/bench.json is missing or damaged)\n" in (out / "report.md").read_text()
    )
    assert (out / "bench.json").read_bytes() == DAMAGED  # a report changes nothing of it


def test_bench_keeps_a_damaged_bench_json_aside_and_starts_a_new_record(tmp_path):
    (tmp_path / "bench.json").write_bytes(DAMAGED)
    lines: list[str] = []
    record_invocation(tmp_path, "prefrl bench smoke.toml", 1, load_grid(SMOKE), echo=lines.append)
    assert (tmp_path / "bench.json.damaged").read_bytes() == DAMAGED
    assert lines == [
        f"{tmp_path / 'bench.json'} is damaged (not JSON: {json_error(DAMAGED)}); "
        f"kept as {tmp_path / 'bench.json.damaged'}, a new record starts"
    ]
    assert [inv["command"] for inv in read_invocations(tmp_path)] == ["prefrl bench smoke.toml"]
    (tmp_path / "bench.json").write_bytes(b"{")  # damaged again: the first one aside is kept
    record_invocation(tmp_path, "prefrl bench smoke.toml", 1, load_grid(SMOKE), echo=lines.append)
    assert (tmp_path / "bench.json.damaged").read_bytes() == DAMAGED
    assert (tmp_path / "bench.json.damaged.2").read_bytes() == b"{"
    assert lines[-1].endswith(f"kept as {tmp_path / 'bench.json.damaged.2'}, a new record starts")


def test_a_failed_write_of_the_grid_copy_leaves_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(SMOKE, out / "grid.toml")
    before = (out / "grid.toml").read_bytes()

    def disk_full(self: Path, data: str, *args: object, **kwargs: object) -> None:
        with open(self, "w") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        run_grid(load_grid(SMOKE), out, echo=lambda line: None)
    assert (out / "grid.toml").read_bytes() == before
    assert list(out.glob("*.tmp")) == []  # no half-written temporary file
