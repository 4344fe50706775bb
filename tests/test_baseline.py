"""``prefrl baseline --reward RUN_DIR``: PPO from scratch on a run's frozen learned reward."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.agent.hyperparams import resolve_ppo_config
from prefrl.baseline import LEARNED_MIN_GAMMA, BaselineSettings, run_baseline
from prefrl.cli import main
from prefrl.errors import EXIT_USAGE, ConfigError
from prefrl.metrics import column, read_metrics
from prefrl.reward.model import EnsembleLinear, RewardModel
from prefrl.rundir import RunDir

torch.set_num_threads(1)

SMALL_PPO = ["--ppo", "num_envs=2", "--ppo", "num_steps=256"]


def constant_model(env_id: str, raw: float, output_mean: float, output_std: float) -> RewardModel:
    """A reward model whose members all output ``raw`` on every transition; its reward is
    ``(raw - output_mean) / output_std`` (output normalisation to std 1)."""
    env = gym.make(env_id)
    model = RewardModel(env.observation_space.shape, env.action_space, seed=0)
    with torch.no_grad():
        for p in model.net.parameters():
            p.zero_()
        last = [m for m in model.net.net if isinstance(m, EnsembleLinear)][-1]
        last.bias.fill_(raw)
    model.output_mean[:] = output_mean
    model.output_std[:] = output_std
    return model


def reward_run(
    path: Path, env_id: str = "Pendulum-v1", model: RewardModel | None = None, **config: object
) -> RunDir:
    """A run directory as `prefrl train` leaves it, as far as a baseline reads it: the
    reward checkpoint and ``config.json``."""
    if model is None:
        env = gym.make(env_id)
        model = RewardModel(env.observation_space.shape, env.action_space, seed=0)
    model.version = 3
    run = RunDir(path)
    model.save(run.reward_checkpoint)
    run.write_config({"kind": "train", "env_id": env_id, "fixed_length": False, "ppo": {}, **config})
    return run


def test_a_baseline_trains_on_the_learned_reward_and_reports_the_true_return(tmp_path, monkeypatch):
    model = constant_model("Pendulum-v1", raw=0.7, output_mean=0.2, output_std=2.0)
    np.testing.assert_allclose(model.predict(np.zeros((2, 3)), np.zeros((2, 1))), 0.25, rtol=1e-6)
    source = reward_run(tmp_path / "train-run", model=model, fixed_length=50)
    monkeypatch.chdir(tmp_path)
    summary = run_baseline(
        "Pendulum-v1", 2048, reward="train-run", ppo_overrides={"num_envs": 2, "num_steps": 256}, video=False
    )
    run = Path(summary["run_dir"])
    assert run.parent == Path("runs") and run.name.startswith("baseline-learned-Pendulum-v1-s0-")
    on_disk = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    for record in (summary, on_disk, config):
        assert record["reward"] == "learned"
        assert record["reward_path"] == str(source.path.resolve())
        assert record["reward_version"] == 3
    assert config["fixed_length"] == 50  # the run's, as none was given
    assert config["ppo"]["norm_reward"] is True and config["ppo"]["num_envs"] == 2
    assert config["ppo"]["gamma"] == 0.99  # Pendulum's table: 0.95
    rows = read_metrics(run / "metrics.csv")
    # what PPO learned from: the model's normalised prediction, on every update
    steps, rewards = column(rows, "charts/reward_mean")
    assert len(steps) == 2048 // 512 and rewards == pytest.approx([0.25] * len(steps), rel=1e-5)
    assert all(row["reward/rollout_true_corr"] == "" for row in rows)  # a constant correlates with nothing
    # evaluated on the true reward: Pendulum's, negative, over 50-step episodes
    assert len(on_disk["eval_returns"]) == 10 and max(on_disk["eval_returns"]) < 0
    assert on_disk["final_eval_return"] == pytest.approx(np.mean(on_disk["eval_returns"]))


def test_the_learned_reward_is_logged_against_the_true_one(tmp_path):
    source = reward_run(tmp_path / "train-run")  # a random network: a reward that varies
    summary = run_baseline(
        "Pendulum-v1",
        1024,
        reward=source.path,
        run_dir=tmp_path / "b",
        ppo_overrides={"num_envs": 2, "num_steps": 256},
        video=False,
        progress=False,
    )
    rows = read_metrics(tmp_path / "b" / "metrics.csv")
    corr = column(rows, "reward/rollout_true_corr")[1]
    assert len(corr) == 2 and all(-1 <= c <= 1 for c in corr)
    assert summary["reward_version"] == 3


def test_fixed_length_and_ppo_default_to_the_runs(tmp_path):
    run = reward_run(
        tmp_path / "r", "CartPole-v1", fixed_length=200, ppo={"num_envs": 2, "learning_rate": 5e-4}
    )
    settings = BaselineSettings(env_id="CartPole-v1", reward=str(run.path))
    assert settings.kind == "learned" and settings.fixed_length == 200
    ppo = settings.ppo_config()
    # CartPole's table scales no reward and discounts by 0.98; a learned reward is scaled, as
    # in the run's agent, and discounted by at least 0.99
    assert resolve_ppo_config("CartPole-v1").gamma == 0.98 and LEARNED_MIN_GAMMA == 0.99
    assert ppo.norm_reward is True and ppo.gamma == 0.99
    assert ppo.num_envs == 2 and ppo.learning_rate == 5e-4
    assert settings.ppo_config({"num_envs": 4, "norm_reward": False}).num_envs == 4
    assert settings.ppo_config({"norm_reward": False, "gamma": 0.9}).norm_reward is False
    assert settings.ppo_config({"gamma": 0.9}).gamma == 0.9
    # the run's own discount stays, and so does a longer one of the env's table
    run.write_config({"kind": "train", "env_id": "CartPole-v1", "ppo": {"gamma": 0.97}})
    assert BaselineSettings(env_id="CartPole-v1", reward=str(run.path)).ppo_config().gamma == 0.97
    car = reward_run(tmp_path / "car", "MountainCarContinuous-v0")
    assert (
        BaselineSettings(env_id="MountainCarContinuous-v0", reward=str(car.path)).ppo_config().gamma == 0.9999
    )
    assert (
        BaselineSettings(env_id="CartPole-v1", reward=str(run.path), fixed_length=False).fixed_length is False
    )
    assert BaselineSettings(env_id="CartPole-v1", reward=str(run.path), fixed_length=30).fixed_length == 30
    # a reward_model.pt without its run carries nothing over
    bare = BaselineSettings(env_id="CartPole-v1", reward=str(run.reward_checkpoint))
    assert bare.fixed_length is False and bare.ppo_config().num_envs == 8 and bare.ppo_config().norm_reward
    # true and constant keep the table's settings
    true = BaselineSettings(env_id="CartPole-v1")
    assert true.kind == "true" and true.fixed_length is False and true.ppo_config().norm_reward is False


def test_a_directory_without_config_is_a_reward_model_without_defaults(tmp_path):
    run = reward_run(tmp_path / "r", fixed_length=50)
    run.config_path.unlink()
    settings = BaselineSettings(env_id="Pendulum-v1", reward=str(run.path))
    assert settings.kind == "learned" and settings.fixed_length is False


def bad_reward_cases(tmp_path: Path) -> list[tuple[str, str]]:
    """``(--reward value, the error after 'prefrl baseline: error: ')`` for Pendulum-v1."""
    not_one = "not 'true', 'constant' or a run directory with a reward model: "
    (tmp_path / "empty").mkdir()
    reward_run(tmp_path / "cartpole", "CartPole-v1")
    bare = reward_run(tmp_path / "bare", "CartPole-v1")
    bare.config_path.unlink()
    discrete = RewardModel((3,), gym.spaces.Discrete(3))
    discrete.save(tmp_path / "discrete.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    reward_run(tmp_path / "bad-ppo", ppo={"lr": 1})
    box_space = gym.make("Pendulum-v1").action_space
    return [
        ("best", f"--reward best: {not_one}no such file or directory"),
        (
            str(tmp_path / "empty"),
            f"--reward {tmp_path}/empty: {not_one}{tmp_path}/empty has no checkpoints/reward_model.pt "
            "(a `prefrl train` run writes it once its reward trainer has finished a round)",
        ),
        (
            str(tmp_path / "cartpole"),
            f"--reward {tmp_path}/cartpole: its reward was learned on CartPole-v1 (config.json), not on "
            "Pendulum-v1: pass CartPole-v1 as ENV_ID, or a run of Pendulum-v1",
        ),
        (
            str(tmp_path / "bare"),
            f"--reward {tmp_path}/bare: the reward model was trained on observations of shape (4,), "
            "this env has (3,) (Pendulum-v1)",
        ),
        (
            str(tmp_path / "discrete.pt"),
            f"--reward {tmp_path}/discrete.pt: the reward model was trained on Discrete(3), "
            f"this env has {box_space} (Pendulum-v1)",
        ),
        (
            str(tmp_path / "junk.pt"),
            f"--reward {tmp_path}/junk.pt: {not_one}{tmp_path}/junk.pt is not a readable checkpoint "
            "(truncated, or not a torch file)",
        ),
        (
            str(tmp_path / "bad-ppo"),
            f"--reward {tmp_path}/bad-ppo: its config.json's ppo lr=1: no PPO setting lr; known: activation, "
            "anneal_clip, anneal_lr, channels_last, clip_coef, clip_obs, clip_reward, clip_vloss, cnn, "
            "device, ent_coef, gae_lambda, gamma, hidden_sizes, learning_rate, log_std_init, max_grad_norm, minibatch_size, noise_beta, "
            "norm_adv, norm_obs, norm_reward, num_envs, num_steps, ortho_init, target_kl, update_epochs, vf_coef",
        ),
    ]


def test_a_bad_reward_is_one_line_naming_reward_and_writes_nothing(tmp_path, capsys):
    for reward, message in bad_reward_cases(tmp_path):
        run_dir = tmp_path / "out"
        code = main(["baseline", "Pendulum-v1", "--reward", reward, "--run-dir", str(run_dir), "--quiet"])
        assert (code, capsys.readouterr().err) == (EXIT_USAGE, f"prefrl baseline: error: {message}\n")
        assert not run_dir.exists()
        with pytest.raises(ConfigError) as err:
            BaselineSettings(env_id="Pendulum-v1", reward=reward)
        assert str(err.value) == message


def test_a_learned_reward_baseline_through_the_cli(tmp_path, capsys):
    source = reward_run(tmp_path / "train-run")
    run_dir = tmp_path / "b"
    args = [
        "baseline",
        "Pendulum-v1",
        "--reward",
        str(source.path),
        "--steps",
        "512",
        "--run-dir",
        str(run_dir),
        "--eval-episodes",
        "3",
        "--num-evals",
        "1",
    ]
    assert main([*args, "--quiet", "--no-video", *SMALL_PPO]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reward_path"] == str(source.path) and printed["env_steps"] == 512
    assert len(printed["eval_returns"]) == 3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["fixed_length"] is False
    # how it was evaluated: a bench grid's baseline cell is stale when these change
    assert (config["eval_episodes"], config["num_evals"]) == (3, 1)


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_a_seed_torch_cannot_take_is_refused(seed):
    with pytest.raises(ConfigError) as err:
        BaselineSettings(env_id="CartPole-v1", seed=seed)
    assert str(err.value) == f"--seed {seed}: must be in [0, 9223372036854775808)"
