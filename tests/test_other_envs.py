"""Envs prefrl has no settings of its own for: grid worlds with discrete observations, an
env without a time limit, an env whose steps cannot be snapshotted. Each runs end to end
on its derived defaults, or says up front what it cannot do."""

import json

import gymnasium as gym
import numpy as np
import pytest

from prefrl.envs.make import make_env
from prefrl.errors import ConfigError
from prefrl.prefs.store import PreferenceStore
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import label_warnings, train

TINY = dict(
    steps=1024,
    labels=6,
    num_evals=1,
    eval_episodes=2,
    backend="inprocess",
    ppo={"num_envs": 2, "num_steps": 256},
    reward_model={"epochs_per_round": 1, "min_steps_per_round": 2},
)


def test_a_grid_world_of_discrete_states_runs_on_its_derived_defaults(tmp_path):
    config = TrainConfig(env_id="FrozenLake-v1", **TINY)
    summary = train(config, tmp_path / "r", progress=False, video=False)
    assert summary["complete"] and summary["labels_used"] == 6
    with PreferenceStore(tmp_path / "r" / "prefs.sqlite") as store:
        clips = store.get_clips({c for lbl in store.labels() for c in (lbl.left_clip_id, lbl.right_clip_id)})
    clip = next(iter(clips.values()))
    assert clip.obs.shape == (6, 16) and clip.snapshots.shape == (6, 3)  # one-hot states; s, last action


def test_evaluation_ends_on_an_env_without_a_time_limit(tmp_path):
    # CliffWalking never ends for a policy that does not reach the goal; evaluation used to wait forever
    summary = train(
        TrainConfig(env_id="CliffWalking-v1", **TINY), tmp_path / "r", progress=False, video=False
    )
    assert summary["complete"] and len(summary["eval_returns"]) == 2


def test_an_env_that_cannot_be_snapshotted_learns_from_a_synthetic_oracle(tmp_path):
    # Blackjack's hands are 1-3 steps long, with no time limit: its derived clips are of one step
    config = TrainConfig(env_id="Blackjack-v1", **TINY)
    assert config.clip_length == 1
    summary = train(config, tmp_path / "r", progress=False, video=True)
    assert summary["complete"] and summary["labels_used"] == 6
    assert (tmp_path / "r" / "videos" / "final_policy.mp4").stat().st_size > 0  # rendered live, no snapshot
    with PreferenceStore(tmp_path / "r" / "prefs.sqlite") as store:
        label = store.labels()[0]
        assert store.get_clips({label.left_clip_id})[label.left_clip_id].snapshots is None


@pytest.mark.parametrize("changes", [dict(oracle="human"), dict(query_videos=True)])
def test_clips_of_an_env_that_cannot_be_snapshotted_cannot_be_shown(tmp_path, changes):
    config = TrainConfig(env_id="Blackjack-v1", **{**TINY, "backend": "multiprocess", **changes})
    flag = "--oracle human" if changes.get("oracle") else "--query-videos"
    with pytest.raises(
        ConfigError, match=rf"^{flag}: clips must be shown, and prefrl cannot snapshot BlackjackEnv"
    ) as err:
        train(config, tmp_path / "r", progress=False, video=False)
    way_out = (
        "Use a synthetic oracle (which needs no video)"
        if changes.get("oracle")
        else "Leave out --query-videos"
    )
    assert way_out in str(err.value) and "synthetic" not in str(err.value).replace(way_out, "")
    assert not (tmp_path / "r").exists()


class CountedFromMinusOne(gym.Env):
    """Actions Discrete(3, start=-1): the env asserts it gets -1, 0 or 1."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(3, start=-1)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        assert action in (-1, 0, 1), f"bad action {action}"
        return np.full(2, action, np.float32), float(action), False, False, {}


def test_discrete_actions_that_start_elsewhere_than_0_are_taken_as_counted_from_0(tmp_path):
    gym.register("prefrl-test/CountedFromMinusOne-v0", entry_point=CountedFromMinusOne, max_episode_steps=30)
    env = make_env("prefrl-test/CountedFromMinusOne-v0")
    env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(3)
    assert [env.step(a)[1] for a in range(3)] == [-1.0, 0.0, 1.0]  # the true reward is the env's action
    config = TrainConfig(env_id="prefrl-test/CountedFromMinusOne-v0", clip_length=10, **TINY)
    summary = train(config, tmp_path / "r", progress=False, video=False)
    assert summary["complete"] and summary["labels_used"] == 6


def test_a_run_whose_answers_were_almost_all_ties_warns(tmp_path, capsys):
    # a new policy almost never reaches the far corner of the large lake: pairs of clips that scored 0
    config = TrainConfig(env_id="FrozenLake-v1(map_name='8x8')", **{**TINY, "labels": 10})
    summary = train(config, tmp_path / "r", progress=False, video=False)
    assert summary["answers"]["equal"] >= 9
    assert summary["warnings"] == label_warnings(summary["answers"]) != []
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["warnings"] == summary["warnings"]
    assert "prefrl: warning: only " in capsys.readouterr().out


def test_label_warnings_count_the_answers_that_say_one_clip_is_better():
    assert label_warnings({"left": 1, "right": 0, "equal": 9, "cant_tell": 0, "skipped": 0}) == []
    assert label_warnings({"left": 0, "right": 0, "equal": 9, "cant_tell": 0, "skipped": 0}) == []  # under 10
    (warning,) = label_warnings({"left": 1, "right": 1, "equal": 20, "cant_tell": 2, "skipped": 1})
    assert warning.startswith(
        "only 2 of 25 answers said one clip was better than the other (the rest: 20 equally good, "
        "2 can't tell, 1 skipped), so the reward model had almost nothing to learn from."
    )
    assert "--explore-labels N" in warning


def test_clips_longer_than_every_episode_end_the_run_short_saying_so(tmp_path):
    # Blackjack's hands are 1-3 steps: no clip of 25 steps is ever complete, however many steps
    config = TrainConfig(env_id="Blackjack-v1", clip_length=25, **TINY)
    summary = train(config, tmp_path / "r", progress=False, video=False)
    assert summary["complete"] is False and summary["labels_used"] == 0
    assert summary["incomplete_reason"] == (
        "the agent finished with 0 clip(s) to compare, too few for a pair; 0 of 6 labels were given. Its "
        "episodes end before a clip of 25 steps is complete: a shorter --clip-length, or --fixed-length STEPS "
        "(episodes of that many steps), in a new run (prefrl resume keeps the clip length)"
    )


def test_a_learned_reward_on_the_env_itself_takes_its_actions_as_they_start():
    # the model counts actions from 0 (it was trained through make_env); the raw env from -1
    from prefrl.reward.model import RewardModel
    from prefrl.reward.wrapper import LearnedRewardWrapper

    model = RewardModel((2,), gym.spaces.Discrete(3), seed=0)
    env = LearnedRewardWrapper(CountedFromMinusOne(), model)
    env.reset(seed=0)
    rewards = [env.step(action)[1] for action in (-1, 0, 1)]
    observed = [np.zeros(2, np.float32), np.full(2, -1, np.float32), np.full(2, 0, np.float32)]
    expected = [
        float(model.predict(o[None], np.array([a]))[0]) for o, a in zip(observed, range(3), strict=True)
    ]
    assert rewards == pytest.approx(expected) and len(set(rewards)) == 3
