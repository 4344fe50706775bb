"""Settings are checked once, in the parent, before any file is written: each bad value is
one line naming the flag and what it accepts; a bug keeps its traceback."""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

import prefrl.runtime.run
from prefrl import cli
from prefrl.baseline import REWARDS, BaselineSettings, RewardKind
from prefrl.envs.make import make_env
from prefrl.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_SHORT,
    EXIT_USAGE,
    ConfigError,
    MissingFileError,
    PrefrlError,
    RunKindError,
)
from prefrl.runtime.choices import BACKENDS, ORACLES, SELECTIONS
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.errors import RunFailed
from prefrl.tasks import TASKS
from prefrl.utils.settings import check_settings, override, unset

# --- the command line: one line, exit 2, no run directory -------------------------------

BAD_TRAIN_FLAGS = [
    (["--teacher", "mistake:eps=2"], "--teacher mistake:eps=2: eps must be in [0.0, 1.0], got 2.0"),
    (["--ppo", "learning_rate=abc"], "--ppo learning_rate='abc': a number is needed"),
    (["--ppo", "num_envs=0"], "--ppo num_envs=0: must be at least 1"),
    (["--ppo", "hidden_sizes=64"], "--ppo hidden_sizes=64: a tuple is needed, e.g. (64, 64)"),
    (["--ppo", "activation=gelu"], "--ppo activation='gelu': choose one of tanh, relu"),
    (["--reward-model", "dropout=1"], "--reward-model dropout=1: must be in [0, 1)"),
    (
        ["--labels", "-5"],
        "--labels -5: must be at least 2 (a pair needs 2; PPO without any label: "
        "prefrl baseline ENV --reward constant; 0 with --labels-from, to train on another run's "
        "labels alone)",
    ),
    (["--clip-length", "-3"], "--clip-length -3: must be at least 1"),
    (
        ["--clip-length", "500"],
        "--clip-length 500: longer than an episode of Pendulum-v1 (200 steps), so no clip could "
        "ever be cut; give at most 200",
    ),
    (
        ["--steps", "10"],
        "--steps 10: one PPO rollout of Pendulum-v1 is 2048 steps (num_envs 8 x num_steps 256); give "
        "at least 2048, or make a rollout shorter with --ppo num_steps=N (or --ppo num_envs=N)",
    ),
    (["--initial-fraction", "1.5"], "--initial-fraction 1.5: must be in [0, 1]"),
    (["--decay-fraction", "0"], "--decay-fraction 0.0: must be above 0"),
    (
        ["--teacher", "mistake:eps"],
        "--teacher mistake:eps: 'eps' is not KEY=VALUE; expected NAME, NAME:KEY=VALUE,... or "
        "NAME(KEY=VALUE,...), e.g. mistake:eps=0.2",
    ),
    (
        ["--oracle", "human", "--backend", "inprocess"],
        "--backend inprocess: --oracle human needs the multiprocess or ray backend (the agent must keep "
        "running while you label)",
    ),
    (["--task", "spin", "CartPole-v1"], "--task spin: the task runs on Pendulum-v1, not CartPole-v1"),
    (
        ["--oracle", "human", "--teacher", "mistake"],
        "--teacher mistake: for a synthetic oracle only; a person answers here",
    ),
    (
        ["--min-view", "2"],
        "--min-view: for the window of --oracle human only; a synthetic oracle sees no video",
    ),
]


@pytest.mark.parametrize(("flags", "message"), BAD_TRAIN_FLAGS, ids=[" ".join(f) for f, _ in BAD_TRAIN_FLAGS])
def test_a_bad_train_setting_is_one_line_and_writes_nothing(tmp_path, capsys, flags, message):
    run_dir = tmp_path / "r"
    assert cli.main(["train", *flags, "--run-dir", str(run_dir), "--quiet"]) == EXIT_USAGE
    out = capsys.readouterr()
    assert out.err == f"prefrl train: error: {message}\n"
    assert out.out == ""
    assert not run_dir.exists()


def test_an_unknown_override_lists_the_known_settings(tmp_path, capsys):
    assert cli.main(["train", "--ppo", "nonsense=1", "--run-dir", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(
        "prefrl train: error: --ppo nonsense=1: no PPO setting nonsense; known: activation, "
    )
    assert err.endswith(", update_epochs, vf_coef\n") and err.count("\n") == 1
    assert cli.main(["train", "--reward-model", "ensemble=5", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "prefrl train: error: --reward-model ensemble=5: no reward-model setting ensemble "
        "(did you mean ensemble_size?); known: batch_size, cnn, dropout, "
    )
    assert not (tmp_path / "r").exists()


def test_an_unknown_task_names_the_flag_and_the_known_tasks(tmp_path, capsys):
    assert cli.main(["train", "--task", "nope", "--run-dir", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(
        "prefrl train: error: --task nope: unknown task 'nope'; known tasks: backflip, right"
    )
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (
            ["--fixed-length", "maybe"],
            "argument --fixed-length: 'maybe': choose true, false or a number of steps (at least 1)",
        ),
        (
            ["--fixed-length", "-4"],
            "argument --fixed-length: '-4': choose true, false or a number of steps (at least 1)",
        ),
        (
            ["--selection", "foo"],
            "argument --selection: invalid choice: 'foo' (choose from 'random', 'disagreement', 'diverse')",
        ),
        (
            ["--backend", "x"],
            "argument --backend: invalid choice: 'x' (choose from 'multiprocess', 'inprocess', 'ray')",
        ),
        (["--oracle", "x"], "argument --oracle: invalid choice: 'x' (choose from 'synthetic', 'human')"),
        (["--seed", "-1"], "argument --seed: '-1': give a whole number from 0 to 2**63 - 1"),
    ],
)
def test_argparse_refuses_values_outside_the_choices(tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", *flags, "--run-dir", str(tmp_path / "r")])
    assert exit_.value.code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines()[-1] == f"prefrl train: error: {words}"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "command",
    [["train", "Pendulum-v1"], ["baseline", "Pendulum-v1"], ["fit-reward", "RUN"], ["play", "RUN"]],
)
def test_every_seed_flag_refuses_what_numpy_and_torch_cannot_take(capsys, command):
    parser = cli.build_parser()
    assert parser.parse_args([*command, "--seed", str(2**63 - 1)]).seed == 2**63 - 1
    for seed in (str(2**63), str(2**64), "-1", "1.5"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*command, "--seed", seed])
        assert exit_.value.code == EXIT_USAGE
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"prefrl {command[0]}: error: argument --seed: '{seed}': give a whole number from 0 to 2**63 - 1"
        )
    with pytest.raises(
        ConfigError, match=r"^--seed 9223372036854775808: must be in \[0, 9223372036854775808\)$"
    ):
        TrainConfig(env_id="Pendulum-v1", seed=2**63)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--steps", "10"],
            "--steps 10: one PPO rollout of CartPole-v1 is 256 steps (num_envs 8 x num_steps 32); give at "
            "least 256, or make a rollout shorter with --ppo num_steps=N (or --ppo num_envs=N)",
        ),
        (["--steps", "0"], "--steps 0: must be at least 1"),
        (["--ppo", "gamma=2"], "--ppo gamma=2: must be in [0, 1]"),
    ],
)
def test_a_bad_baseline_setting_is_one_line_and_writes_nothing(tmp_path, capsys, flags, message):
    run_dir = tmp_path / "r"
    assert cli.main(["baseline", "CartPole-v1", *flags, "--run-dir", str(run_dir), "--quiet"]) == EXIT_USAGE
    assert capsys.readouterr().err == f"prefrl baseline: error: {message}\n"
    assert not run_dir.exists()


def test_the_choices_are_listed_once():
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    choices = {a.dest: tuple(a.choices) for a in train._actions if a.choices}
    assert (choices["oracle"], choices["selection"], choices["backend"]) == (ORACLES, SELECTIONS, BACKENDS)
    assert cli.BASELINE_REWARDS == tuple(REWARDS) == RewardKind.__args__


# --- budgets: None is the task's or the env's default; stored configs hold numbers ---------


def test_unset_budgets_become_the_defaults_and_stored_configs_read_back():
    config = TrainConfig(env_id="Pendulum-v1")
    assert (config.steps, config.labels, config.clip_length, config.fixed_length) == (200_000, 100, 50, False)
    assert TrainConfig.from_dict(config.to_dict()) == config
    task = TrainConfig(task="spin")
    assert (task.steps, task.labels, task.fixed_length) == (200_000, 200, True)


def test_another_version_of_a_tuned_env_takes_its_settings():
    # Hopper-v4 derived clips of 188 steps (1.5 s at 125 fps) where Hopper-v5's are 64
    hopper = TrainConfig(env_id="Hopper-v4")
    assert (hopper.clip_length, hopper.fixed_length, hopper.steps) == (64, True, 1_000_000)
    cartpole, tuned = TrainConfig(env_id="CartPole-v0"), TrainConfig(env_id="CartPole-v1")
    assert (cartpole.clip_length, cartpole.fixed_length, cartpole.steps) == (50, 200, 100_000)
    assert cartpole.ppo == tuned.ppo and cartpole.reward_model == tuned.reward_model
    assert TrainConfig(env_id="Swimmer-v5").clip_length == 38  # untuned: 1.5 s at its 25 fps


def test_a_task_carries_its_label_schedule_and_the_flags_override_it(monkeypatch):
    plain = TrainConfig(task="spin")
    assert (plain.initial_fraction, plain.decay_fraction) == (0.25, 0.1)
    monkeypatch.setitem(
        TASKS, "spin", dataclasses.replace(TASKS["spin"], initial_fraction=0.1, decay_fraction=1.0)
    )
    spread = TrainConfig(task="spin")
    assert (spread.initial_fraction, spread.decay_fraction) == (0.1, 1.0)
    assert (spread.schedule().initial_labels, spread.schedule().labels_wanted(100_000)) == (20, 125)
    assert TrainConfig.from_dict(spread.to_dict()) == spread
    given = TrainConfig(task="spin", initial_fraction=0.5, decay_fraction=0.2)
    assert (given.initial_fraction, given.decay_fraction) == (0.5, 0.2)
    zero = TrainConfig(task="spin", initial_fraction=0.0)
    assert (zero.initial_fraction, zero.decay_fraction) == (0.0, 1.0)


# --- the CLI's error mapping: user errors one line, bugs keep their traceback --------------


def test_a_bug_during_a_run_is_not_swallowed(tmp_path, monkeypatch):
    # a ValueError, FileNotFoundError or KeyError that is no PrefrlError is a bug: it propagates
    # (Python prints its traceback and exits 1), it is not printed as a user's mistake
    for bug in (ValueError("boom"), FileNotFoundError("boom"), KeyError("boom")):

        def broken(config: Any, bug: Exception = bug) -> None:
            raise bug

        monkeypatch.setattr(prefrl.runtime.run, "_check", broken)
        with pytest.raises(type(bug), match="boom"):
            cli.main(["train", "--run-dir", str(tmp_path / "r"), "--quiet"])
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            ConfigError("--x 1: must be at least 2"),
            EXIT_USAGE,
            "prefrl train: error: --x 1: must be at least 2",
        ),
        (MissingFileError("no such run"), EXIT_USAGE, "prefrl train: error: no such run"),
        (RunKindError("a baseline run"), EXIT_USAGE, "prefrl train: error: a baseline run"),
        (RunFailed("the agent died\ntwice"), EXIT_FAILED, "prefrl train: the agent died twice"),
        (PrefrlError("plain"), EXIT_USAGE, "prefrl train: error: plain"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "prefrl train: interrupted"),
    ],
)
def test_main_maps_user_errors_to_their_exit_codes(monkeypatch, capsys, error, code, line):
    def raising(args: Any) -> None:
        raise error

    monkeypatch.setattr(cli.parser, "cmd_train", raising)
    assert cli.main(["train"]) == code
    assert capsys.readouterr().err == line + "\n"


def test_main_exits_3_when_a_run_ends_short(monkeypatch, capsys):
    monkeypatch.setattr(cli.parser, "cmd_train", lambda args: {"complete": False, "incomplete_reason": "why"})
    assert cli.main(["train"]) == EXIT_SHORT
    assert capsys.readouterr().err == "prefrl train: ended short: why\n"


def test_user_errors_keep_the_classes_callers_catch():
    assert issubclass(ConfigError, ValueError) and issubclass(RunKindError, ValueError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert all(issubclass(e, PrefrlError) for e in (ConfigError, MissingFileError, RunKindError))


# --- the checker ------------------------------------------------------------------------


@dataclass
class Example:
    count: int = field(default=1, metadata={"min": 1})
    rate: float = field(default=0.5, metadata={"min": 0, "max": 1})
    positive: float = field(default=1.0, metadata={"above": 0})
    flag: bool = True
    name: str = "a"
    kind: Literal["x", "y"] = "x"
    limit: float | None = None
    length: bool | int = field(default=False, metadata={"min": 1})
    sizes: tuple[int, ...] = field(default=(64, 64), metadata={"min": 1})
    table: dict[str, Any] = field(default_factory=dict)
    budget: int = unset("the default", min=2, hint="why")


def refused(**changes: Any) -> str:
    with pytest.raises(ConfigError) as err:
        override(Example(), changes, prefix="--ex")
    return str(err.value)


def test_the_checker_accepts_and_converts():
    ok = override(Example(), {"rate": 1, "limit": 3, "sizes": [8, 16], "length": 5, "budget": 2})
    assert (ok.rate, ok.limit, ok.sizes, ok.length, ok.budget) == (1.0, 3.0, (8, 16), 5, 2)
    assert isinstance(ok.rate, float) and isinstance(ok.limit, float)
    assert override(Example(), {"length": True}).length is True
    assert Example().budget is None  # unset: resolved by its class later
    check_settings(Example())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": True}, "--ex count=True: a whole number is needed"),
        ({"count": 1.0}, "--ex count=1.0: a whole number is needed"),
        ({"count": 0}, "--ex count=0: must be at least 1"),
        ({"rate": "abc"}, "--ex rate='abc': a number is needed"),
        ({"rate": False}, "--ex rate=False: a number is needed"),
        ({"rate": math.nan}, "--ex rate=nan: a finite number is needed"),
        ({"rate": 1.5}, "--ex rate=1.5: must be in [0, 1]"),
        ({"positive": 0}, "--ex positive=0: must be above 0"),
        ({"flag": 1}, "--ex flag=1: true or false is needed"),
        ({"name": 3}, "--ex name=3: a string is needed"),
        ({"kind": "z"}, "--ex kind='z': choose one of x, y"),
        ({"limit": "a"}, "--ex limit='a': a number or None is needed"),
        ({"length": 0}, "--ex length=0: must be at least 1"),
        ({"length": "x"}, "--ex length='x': true or false or a whole number is needed"),
        ({"sizes": 64}, "--ex sizes=64: a tuple is needed, e.g. (64, 64)"),
        ({"sizes": (64, "a")}, "--ex sizes=(64, 'a'): a whole number is needed"),
        ({"sizes": (64, 0)}, "--ex sizes=(64, 0): each value must be at least 1"),
        ({"table": [1]}, "--ex table=[1]: a table of KEY=VALUE settings is needed"),
        ({"budget": 1}, "--ex budget=1: must be at least 2 (why)"),
        (
            {"cuont": 1},
            "--ex cuont=1: no setting cuont (did you mean count?); known: budget, count, flag, "
            "kind, length, limit, name, positive, rate, sizes, table",
        ),
        (
            {"zzz": 1},
            "--ex zzz=1: no setting zzz; known: budget, count, flag, kind, length, limit, name, "
            "positive, rate, sizes, table",
        ),
    ],
)
def test_the_checker_refuses_in_one_line(changes, message):
    assert refused(**changes) == message


def test_the_checker_names_flags_as_typed():
    with pytest.raises(ConfigError, match=r"^--count 0: must be at least 1$"):
        check_settings(Example(count=0), flags={"count": "--count"})
    with pytest.raises(ConfigError, match=r"^--flag 1: true or false is needed$"):
        check_settings(Example(flag=1), flags={"flag": "--flag"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^count=0: must be at least 1$"):
        check_settings(Example(count=0))


def test_baseline_settings_are_checked():
    with pytest.raises(
        ConfigError,
        match=r"^--reward best: not 'true', 'constant' or a run directory with a reward model: "
        r"no such file or directory$",
    ):
        BaselineSettings(env_id="CartPole-v1", reward="best")
    with pytest.raises(ConfigError, match=r"^--fixed-length 0: must be at least 1$"):
        BaselineSettings(env_id="CartPole-v1", fixed_length=0)


def test_image_envs_take_the_papers_atari_settings():
    config = TrainConfig(env_id="ALE/Breakout-v5")
    assert (config.clip_length, config.fixed_length) == (25, True)
    reward = config.reward_model_config()
    assert (reward.use_actions, reward.output_std, reward.dropout, reward.hidden_sizes) == (
        False,
        0.05,
        0.5,
        (64,),
    )
    assert (
        TrainConfig(env_id="ALE/Breakout-v5", reward_model={"dropout": 0.0}).reward_model_config().dropout
        == 0.0
    )
    assert TrainConfig(env_id="Acrobot-v1").reward_model_config().use_actions is True


@pytest.mark.parametrize(
    "env_id, clip_length, fixed_length",
    [
        ("HalfCheetah-v5", 30, True),  # 20 frames/s: 1.5 s; a time limit of 1,000 steps
        ("Reacher-v5", 50, True),  # 50 frames/s would give 75 steps: no more than its 50-step episodes
        ("FrozenLake-v1", 6, True),  # 4 frames/s
        ("FrozenLake-v1(max_episode_steps=4)", 4, True),
        ("CliffWalking-v1", 6, False),  # no time limit of its own to make a horizon of
        # no time limit either, and a hand of 1-3 steps: clips no longer than a random policy's
        # median episode, or none could be cut
        ("Blackjack-v1", 1, False),
    ],
)
def test_other_envs_get_clips_of_a_second_and_a_half(env_id, clip_length, fixed_length):
    config = TrainConfig(env_id=env_id)
    assert (config.clip_length, config.fixed_length) == (clip_length, fixed_length)


def test_a_time_limit_in_the_env_id_wins_over_the_envs_usual_horizon():
    # CartPole's runs have episodes of 200 steps; the id asks for 50, a flag for 100
    assert TrainConfig(env_id="CartPole-v1").fixed_length == 200
    assert TrainConfig(env_id="CartPole-v1(max_episode_steps=50)").fixed_length is True
    assert TrainConfig(env_id="CartPole-v1(max_episode_steps=50)", fixed_length=100).fixed_length == 100
    assert make_env("CartPole-v1(max_episode_steps=50)", fixed_length=True).spec.max_episode_steps == 50


def test_an_unknown_env_id_is_a_config_error():
    with pytest.raises(ConfigError, match="Unknown env id 'Pongg-v0'"):
        TrainConfig(env_id="Pongg-v0")
