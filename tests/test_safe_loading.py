"""Opening files from someone else never runs code: checkpoints, old checkpoints, task files."""

from __future__ import annotations

import json
import os
import shlex
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefrl
from prefrl import tasks
from prefrl.agent.checkpoint import TrainedPolicy, load_policy
from prefrl.agent.hyperparams import default_config
from prefrl.agent.ppo import PPOAgent
from prefrl.cli import main
from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv
from prefrl.reward.model import RewardModel
from prefrl.reward.sources import TrueReward
from prefrl.reward.trainer import PreferenceTrainer
from prefrl.rundir import RunDir
from prefrl.utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, to_plain

torch.set_num_threads(1)

PENDULUM_OBS = gym.spaces.Box(-8, 8, (3,))
PENDULUM_ACT = gym.spaces.Box(-2, 2, (1,))


@pytest.fixture(autouse=True)
def no_trusted_task_files(monkeypatch):
    monkeypatch.setattr(tasks, "_TRUSTED", set())
    monkeypatch.delenv(tasks.TRUSTED_TASK_FILES_ENV, raising=False)


class RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def reward_model() -> RewardModel:
    model = RewardModel((3,), PENDULUM_ACT, seed=0)
    rng = np.random.default_rng(0)
    feats = model.features(rng.normal(size=(64, 3)), rng.uniform(-2, 2, size=(64, 1)))
    model.fit_input_normalization(feats)
    model.fit_output_normalization(feats)
    model.version = 3
    return model


def agent() -> PPOAgent:
    cfg = default_config("Pendulum-v1").replace(num_envs=2, num_steps=16)
    envs = VecEnv([lambda: make_env("Pendulum-v1")] * 2)
    agent = PPOAgent(envs, cfg, total_steps=64, seed=0)
    agent.train(
        agent.collect(), TrueReward()
    )  # non-trivial statistics, optimiser state, RewardScaler returns
    return agent


def trainer() -> PreferenceTrainer:
    trainer = PreferenceTrainer(reward_model(), seed=0)
    trainer.l2 = np.array([0.25, 0.5, 1.0, 2.0, 4.0][: len(trainer.l2)])
    trainer.rounds = 7
    return trainer


def assert_same(a, b) -> None:
    a, b = to_plain(a), to_plain(b)
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, (torch.Tensor, float, int)) and not isinstance(a, bool):
        # a number may come back as a 0-d array (RunningMeanStd's mean after a merge is a
        # numpy scalar, after a load a 0-d array): same value, same precision
        x, y = np.asarray(a), np.asarray(b)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
    else:
        assert a == b and type(a) is type(b)


def load_reward_model(path):
    return prefrl.load_reward_model(path)


def load_agent(path):
    fresh = agent()
    fresh.load(path)
    return fresh


def load_trained_policy(path):
    return load_policy(path, make_env("Pendulum-v1"))


def load_trainer(path):
    fresh = PreferenceTrainer(RewardModel((3,), PENDULUM_ACT, seed=1), seed=1)
    fresh.load(path)
    return fresh


LOADERS = {
    "reward_model": [load_reward_model],
    "agent": [load_agent, load_trained_policy],
    "reward_trainer": [load_trainer],
}
FILE_NAMES = {"reward_model": "reward_model.pt", "agent": "agent.pt", "reward_trainer": "reward_trainer.pt"}


def refused(load, path) -> str:
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path, kind):
    marker = tmp_path / "MARKER"
    for header in ({"format": "prefrl", "kind": kind, "format_version": 1}, {}):  # new and old format
        path = tmp_path / FILE_NAMES[kind]
        torch.save({**header, "config": {}, "payload": RunsCode(marker)}, path)
        for load in LOADERS[kind]:
            message = refused(load, path)
            assert message == (
                f"{path} was refused: it holds more than tensors and plain data, and loading it could "
                "run code. Load only checkpoints written by prefrl."
            )
        # nor does the conversion of old checkpoints let it through
        assert main(["upgrade", str(path)]) == 2
    assert not marker.exists()


@pytest.mark.parametrize("kind", list(LOADERS))
def test_round_trip_gives_identical_values(tmp_path, kind):
    path = tmp_path / FILE_NAMES[kind]
    if kind == "reward_model":
        model = reward_model()
        model.save(path)
        assert_same(load_reward_model(path).state_dict(), model.state_dict())
    elif kind == "agent":
        original = agent()
        original.save(path)
        assert_same(load_agent(path).state_dict(), original.state_dict())
        policy = TrainedPolicy.load(path, PENDULUM_OBS, PENDULUM_ACT)
        assert_same(policy.obs_norm.state_dict(), original.obs_norm.state_dict())
        assert_same(policy.network.state_dict(), original.policy.state_dict())
    else:
        original = trainer()
        original.save(path)
        assert_same(load_trainer(path).state_dict(), original.state_dict())
    raw = torch.load(path, weights_only=True)  # plain data only: no numpy inside
    assert (raw["format"], raw["kind"], raw["format_version"]) == ("prefrl", kind, 1)


def test_numpy_comes_back_as_numpy_where_the_code_wants_numpy(tmp_path):
    original = agent()
    original.save(tmp_path / "agent.pt")
    loaded = load_agent(tmp_path / "agent.pt")
    assert isinstance(loaded.obs_norm.rms.mean, np.ndarray) and loaded.obs_norm.rms.mean.dtype == np.float64
    assert isinstance(loaded.reward_scaler.returns, np.ndarray)
    model = reward_model()
    model.save(tmp_path / "reward_model.pt")
    assert isinstance(load_reward_model(tmp_path / "reward_model.pt").input_mean, np.ndarray)
    state = load_checkpoint(tmp_path / "reward_model.pt", "reward_model")
    assert "format" not in state and isinstance(state["input_mean"], torch.Tensor)


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    reward_model().save(tmp_path / "reward_model.pt")
    trainer().save(tmp_path / "reward_trainer.pt")
    message = refused(load_agent, tmp_path / "reward_model.pt")
    assert (
        message
        == f"{tmp_path / 'reward_model.pt'} is a reward model (reward_model.pt), not an agent checkpoint (agent.pt)"
    )
    message = refused(load_reward_model, tmp_path / "reward_trainer.pt")
    assert message.endswith(
        "is a reward trainer checkpoint (reward_trainer.pt), not a reward model (reward_model.pt)"
    )


def test_a_byte_changed_inside_a_checkpoints_tensors_is_refused_not_loaded(tmp_path):
    # torch.load alone loads such a file, with a wrong weight; faults at random bytes of
    # every tensor of a reward model, each refused naming the file and the damage
    import zipfile

    path = tmp_path / "checkpoints" / "reward_model.pt"
    path.parent.mkdir()
    reward_model().save(path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        tensors = [info for info in archive.infolist() if "/data/" in info.filename]
    rng = np.random.default_rng(0)
    assert len(tensors) >= 4
    for info in tensors:
        local = info.header_offset  # the local header's name and extra lengths, then the data
        start = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little")
        start += int.from_bytes(data[local + 28 : local + 30], "little")
        at = start + int(rng.integers(info.file_size))
        damaged = bytearray(data)
        damaged[at] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        torch.load(path, weights_only=True)  # what it would have loaded in silence
        assert refused(load_reward_model, path) == (
            f"{path} is not a readable checkpoint (changed on disk since it was written): its part "
            f"{info.filename} does not match its CRC-32"
        )
    path.write_bytes(data)
    assert load_reward_model(path).version == 3


def test_checkpoints_carry_their_crcs_where_torch_was_told_not_to_write_them(tmp_path):
    torch.serialization.set_crc32_options(False)
    try:
        save_checkpoint({"x": torch.ones(3)}, tmp_path / "agent.pt", "agent")
        assert not torch.serialization.get_crc32_options()
    finally:
        torch.serialization.set_crc32_options(True)
    assert torch.equal(load_checkpoint(tmp_path / "agent.pt", "agent")["x"], torch.ones(3))


def test_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "reward_model.pt"
    torch.save({"format": "prefrl", "kind": "reward_model", "format_version": 2}, path)
    assert refused(load_reward_model, path) == (
        f"{path} was written by a newer prefrl (checkpoint format 2; this prefrl reads up to 1): "
        "upgrade prefrl to load it"
    )


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    reward_model().save(tmp_path / "reward_model.pt")
    data = (tmp_path / "reward_model.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    for name in ("truncated.pt", "text.pt"):
        message = refused(load_reward_model, tmp_path / name)
        assert message == f"{tmp_path / name} is not a readable checkpoint (truncated, or not a torch file)"
    save_checkpoint({"x": 1}, tmp_path / "other.pt", "agent")
    torch.save([1, 2], tmp_path / "list.pt")
    assert (
        refused(load_reward_model, tmp_path / "list.pt")
        == f"{tmp_path / 'list.pt'} is not a prefrl checkpoint"
    )


def write_old_run(run: Path) -> dict[str, dict]:
    """A run directory as an older prefrl wrote it: numpy inside the checkpoints, no
    format keys anywhere. Returns each checkpoint's state."""
    (run / "checkpoints").mkdir(parents=True)
    config = {"kind": "train", "env_id": "Pendulum-v1", "steps": 64, "labels": 0, "backend": "inprocess"}
    (run / "config.json").write_text(json.dumps(config))
    states = {
        "reward_model": reward_model().state_dict(),
        "agent": agent().state_dict(),
        "reward_trainer": trainer().state_dict(),
    }
    for kind, state in states.items():
        torch.save(state, run / "checkpoints" / FILE_NAMES[kind])  # what the old code did
    assert isinstance(states["reward_model"]["input_mean"], np.ndarray)
    return states


def test_old_checkpoints_are_refused_until_upgraded_then_load_identically(tmp_path, capsys):
    run = tmp_path / "run"
    states = write_old_run(run)
    for kind, loads in LOADERS.items():
        path = run / "checkpoints" / FILE_NAMES[kind]
        for load in loads:
            assert refused(load, path) == (
                f"{path} was written by an older prefrl, in a format whose loading could run code. "
                f"If you trust where it came from, convert it with: prefrl upgrade {run}"
            )
    assert main(["play", str(run)]) == 2
    assert f"convert it with: prefrl upgrade {run}" in capsys.readouterr().err
    assert main(["resume", str(run)]) == 2  # every checkpoint old: one upgrade converts them all
    assert capsys.readouterr().err == (
        f"prefrl resume: error: 3 of {run}'s checkpoints were written by an older prefrl, in a format "
        f"whose loading could run code. If you trust where they came from, convert them with: prefrl upgrade {run}\n"
    )

    assert main(["upgrade", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sorted(result["upgraded"]) == sorted(str(run / "checkpoints" / f) for f in FILE_NAMES.values())
    assert result["run_dirs"] == [str(run)]
    assert json.loads((run / "config.json").read_text())["format_version"] == 1
    assert_same(load_reward_model(run).state_dict(), states["reward_model"])
    assert_same(load_agent(run / "checkpoints" / "agent.pt").state_dict(), states["agent"])
    assert_same(
        load_trainer(run / "checkpoints" / "reward_trainer.pt").state_dict(), states["reward_trainer"]
    )
    # a second upgrade changes nothing
    assert main(["upgrade", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["upgraded"] == []


def test_upgrade_of_a_single_old_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "reward_model.pt"
    model = reward_model()
    torch.save(model.state_dict(), path)
    assert refused(load_reward_model, path).endswith(f"convert it with: prefrl upgrade {path}")
    assert main(["upgrade", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["upgraded"] == [str(path)]
    assert_same(load_reward_model(path).state_dict(), model.state_dict())


def test_a_run_of_a_newer_prefrl_is_refused(tmp_path, capsys):
    RunDir(tmp_path).write_config({"kind": "train", "env_id": "Pendulum-v1"})
    assert json.loads((tmp_path / "config.json").read_text())["format_version"] == 1
    (tmp_path / "config.json").write_text(json.dumps({"kind": "train", "format_version": 2}))
    assert main(["play", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"prefrl play: error: {tmp_path} was written by a newer prefrl (run format 2; this prefrl reads "
        "up to 1): upgrade prefrl to open it\n"
    )


TASK_FILE = """
from pathlib import Path

from prefrl.tasks import Task, register_task

Path(__file__).with_suffix(".ran").touch()  # the marker: this file was executed

register_task(Task(
    name="safeplay", env_id="Pendulum-v1", instruction="Which one spins?",
    behaviour_reward=lambda env, obs, action, next_obs: float(next_obs[2]),
    measure=lambda env, rewards: float(sum(rewards)), measure_name="spin", horizon=10, clip_length=5,
))
"""


def test_a_run_dirs_task_file_runs_only_when_trusted(tmp_path, capsys):
    task_file = tmp_path / "their_tasks.py"
    task_file.write_text(textwrap.dedent(TASK_FILE))
    marker = task_file.with_suffix(".ran")
    run = tmp_path / "run"
    RunDir.create(run, "train", "x", 0)
    RunDir(run).write_config(
        {
            "kind": "train",
            "env_id": "prefrl/PendulumSafeplay-v0",
            "task": f"{task_file}:safeplay",
            "fixed_length": True,
        }
    )
    agent().save(RunDir(run).agent_checkpoint)
    expected = (
        f"prefrl play: error: config.json of {run} names the task file {task_file}, which runs code when "
        f"loaded; run it only if you trust it: add --trust-task-file (or pass --task {task_file}:safeplay again)\n"
    )
    assert main(["play", str(run)]) == 2
    assert capsys.readouterr().err == expected
    assert main(["resume", str(run)]) == 2
    assert capsys.readouterr().err == expected.replace("prefrl play", "prefrl resume")
    (tmp_path / "other.py").write_text("")  # another file, naming the same task
    assert main(["play", str(run), "--task", f"{tmp_path / 'other.py'}:safeplay"]) == 2
    assert "is not the task of" in capsys.readouterr().err
    assert main(["play", str(run), "--task", f"{tmp_path / 'none.py'}:safeplay"]) == 2
    assert capsys.readouterr().err.endswith(f"task file {tmp_path / 'none.py'} not found\n")
    assert not marker.exists()
    assert tasks.TRUSTED_TASK_FILES_ENV not in os.environ

    assert main(["play", str(run), "--trust-task-file", "--out", str(tmp_path / "play.mp4")]) == 0
    assert marker.exists()
    assert json.loads(capsys.readouterr().out)["video"] == str(tmp_path / "play.mp4")
    # the trust reaches the processes the run starts (spawned children read the environment)
    assert os.environ[tasks.TRUSTED_TASK_FILES_ENV] == str(task_file.resolve())


def test_a_run_of_a_task_file_is_told_to_resume_with_the_trust_it_needs(tmp_path, capsys):
    from prefrl.rundir import resume_command

    task_file = tmp_path / "their_tasks.py"
    task_file.write_text(textwrap.dedent(TASK_FILE))
    run = tmp_path / "run"
    RunDir.create(run, "train", "x", 0)
    assert resume_command(run) == f"prefrl resume {run}"  # no task
    RunDir(run).write_config({"kind": "train", "env_id": "Pendulum-v1", "task": "spin"})
    assert resume_command(run) == f"prefrl resume {run}"  # a built-in task runs no file
    RunDir(run).write_config(
        {"kind": "train", "env_id": "prefrl/PendulumSafeplay-v0", "task": f"{task_file}:safeplay"}
    )
    command = resume_command(run)
    assert command == f"prefrl resume {run} --trust-task-file"
    RunDir(run).agent_checkpoint.parent.mkdir(exist_ok=True)
    RunDir(run).agent_checkpoint.write_text("damaged")  # the resume's next check, past the trust: refused
    assert main(shlex.split(command)[1:]) == 2
    assert "is not a readable checkpoint" in capsys.readouterr().err
    assert task_file.with_suffix(".ran").exists()


@pytest.mark.parametrize("run_kind", ["train", "fit-reward", "baseline", "peer"])
def test_a_damaged_checkpoint_of_a_run_says_what_its_kind_of_run_allows(tmp_path, run_kind):
    # only a preference run can be resumed: the others are made again, into a new directory
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = {"kind": run_kind, "env_id": "Pendulum-v1", "seed": 3}
    if run_kind == "fit-reward":
        config.update(source="/labels/run", rounds=20)
    (run / "config.json").write_text(json.dumps(config))
    path = run / "checkpoints" / "reward_model.pt"
    path.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, "reward_model")
    damaged = f"{path} is not a readable checkpoint (truncated, or not a torch file)"
    assert (
        str(caught.value)
        == damaged
        + {
            "train": f"; delete it and resume (prefrl resume {run}): the reward model is retrained from the "
            "stored labels",
            "fit-reward": "; a fit-reward run cannot be resumed: fit it again into a new directory (prefrl "
            f"fit-reward /labels/run --seed 3 --rounds 20 --run-dir NEW_DIR; its labels are also in "
            f"{run / 'prefs.sqlite'})",
            "baseline": "; a baseline run cannot be resumed: run prefrl baseline Pendulum-v1 again, with the "
            f"settings in {run / 'config.json'}, into a new --run-dir",
            "peer": "",
        }[run_kind]
    )


def test_a_checkpoint_error_found_first_is_not_hidden_by_a_later_crash(tmp_path, monkeypatch):
    import prefrl.upgrade as upgrade

    run = tmp_path / "run"
    write_old_run(run)
    first = CheckpointError("agent.pt is damaged")

    def load(path, kind):
        raise first if kind == "agent" else KeyError("a torch internal")

    monkeypatch.setattr(upgrade, "load_checkpoint", load)
    with pytest.raises(CheckpointError) as raised:
        upgrade.check_run_checkpoints(run)
    assert raised.value is first  # what was found before the crash, not a traceback


def test_a_checkpoint_this_user_may_not_read_is_not_called_damaged(tmp_path, monkeypatch):
    path = tmp_path / "agent.pt"
    save_checkpoint({"x": torch.zeros(2)}, path, "agent")
    opened = Path.open

    def unreadable(self, *args, **kwargs):  # as for a file without read permission (root reads all)
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", unreadable)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path, "agent")
    assert str(raised.value) == (
        f"{path} cannot be opened (Permission denied): give this user read access to it (the file itself may be sound)"
    )
