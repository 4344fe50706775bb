"""Preference runs from pixels, end to end: Atari (ALE) and MinAtar, both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefrl.metrics import column, read_metrics
from prefrl.prefs.store import PreferenceStore
from prefrl.reward import load_reward_model
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train

TINY = dict(
    steps=2048,
    labels=6,
    num_evals=1,
    eval_episodes=1,
    ppo={"num_envs": 2, "num_steps": 128, "minibatch_size": 64},
    reward_model={"epochs_per_round": 1, "min_steps_per_round": 3, "batch_size": 4},
)


def _check_run(run: Path, summary: dict, env_id: str) -> None:
    assert summary["complete"] is True and summary["labels_used"] == 6
    assert summary["env_steps"] >= 2048
    model = load_reward_model(run)
    assert model.image and model.version == summary["reward_model_version"] >= 1
    rows = read_metrics(run / "metrics.csv")
    assert min(column(rows, "reward/version_used")[1]) >= 1  # PPO trained on the learned reward
    with PreferenceStore(run / "prefs.sqlite") as store:
        labels = store.labels()
        clips = store.clips_of(labels)
    clip = next(iter(clips.values()))
    assert clip.env_id == env_id and clip.obs.dtype == np.uint8 and clip.obs.shape[1:] == model.obs_shape
    assert clip.length == 25  # the paper's 1.7 s at 15 frames/s


@pytest.mark.parametrize("backend", ["inprocess", "multiprocess"])
def test_atari_run_from_pixels(tmp_path, backend):
    config = TrainConfig(env_id="ALE/Pong-v5", backend=backend, fixed_length=256, **TINY)
    summary = train(config, tmp_path / "run", progress=False, video=False)
    _check_run(tmp_path / "run", summary, "ALE/Pong-v5")


@pytest.mark.parametrize("backend", ["inprocess", "multiprocess"])
def test_minatar_run_from_pixels(tmp_path, backend):
    pytest.importorskip("minatar")
    config = TrainConfig(env_id="MinAtar/Breakout-v1", backend=backend, **TINY)
    summary = train(config, tmp_path / "run", progress=False, video=True)
    _check_run(tmp_path / "run", summary, "MinAtar/Breakout-v1")
    assert (tmp_path / "run" / "videos" / "final_policy.mp4").exists()


def test_an_atari_run_with_sticky_actions_named_in_its_env_id(tmp_path):
    env_id = "ALE/Pong-v5(repeat_action_probability=0.25)"  # ALE v5's own default
    config = TrainConfig(env_id=env_id, backend="multiprocess", fixed_length=256, **TINY)
    summary = train(config, tmp_path / "run", progress=False, video=False)
    _check_run(tmp_path / "run", summary, env_id)
