import numpy as np
import pytest

from prefrl.prefs.clips import Answer, ClipCutter


def rollout(T, N, starts):
    obs = np.arange(T * N, dtype=np.float32).reshape(T, N, 1)
    actions = np.zeros((T, N), dtype=np.int64)
    rewards = np.ones((T, N), dtype=np.float32)
    episode_starts = np.zeros((T, N), dtype=bool)
    for t, i in starts:
        episode_starts[t, i] = True
    snaps = obs.astype(np.float64)
    return obs, actions, rewards, episode_starts, snaps


def test_clips_never_cross_episodes_and_carry_over_rollouts():
    cutter = ClipCutter("test", clip_length=3, num_envs=2)
    # env 0: episode starts at t=0 and t=4; env 1: one long episode from t=0
    obs, act, rew, starts, snaps = rollout(5, 2, [(0, 0), (4, 0), (0, 1)])
    clips = cutter.cut(obs, act, rew, starts, snaps, agent_step=10)
    # env 0: steps 0-2 form a clip, step 3 is dropped at the episode end, step 4 is carried
    # env 1: steps 0-2 form a clip, steps 3-4 are carried
    assert [c.obs[:, 0].tolist() for c in clips] == [[0, 2, 4], [1, 3, 5]]
    assert [c.episode_step for c in clips] == [0, 0]
    obs2, act2, rew2, starts2, snaps2 = rollout(3, 2, [])
    obs2 += 100
    clips2 = cutter.cut(obs2, act2, rew2, starts2, snaps2 * 0 + 7, agent_step=20)
    # env 0: carried step 4 (obs 8) + 100, 102 ; env 1: carried 7, 9 + 101
    assert [c.obs[:, 0].tolist() for c in clips2] == [[8, 100, 102], [7, 9, 101]]
    assert [c.episode_step for c in clips2] == [0, 3]
    assert clips2[1].snapshots[:, 0].tolist() == [7.0, 9.0, 7.0]
    assert all(c.agent_step == 20 and c.length == 3 and c.true_return == 3.0 for c in clips2)
    assert len({c.clip_id for c in clips + clips2}) == 4


def test_clips_without_snapshots():
    cutter = ClipCutter("test", clip_length=2, num_envs=1)
    obs, act, rew, starts, _ = rollout(4, 1, [(0, 0)])
    clips = cutter.cut(obs, act, rew, starts, None, agent_step=4)
    assert len(clips) == 2 and clips[0].snapshots is None


def test_answer_targets():
    assert [a.mu for a in Answer] == [1.0, 0.0, 0.5, None, None]
    with pytest.raises(ValueError):
        ClipCutter("test", 0, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_reward_that_is_not_a_number_is_refused_with_the_env_and_step(bad):
    cutter = ClipCutter("MyEnv-v0", clip_length=2, num_envs=2)
    obs, act, rew, starts, snaps = rollout(4, 2, [(0, 0), (0, 1)])
    rew[2, 1] = bad
    with pytest.raises(
        ValueError,
        match=rf"^MyEnv-v0 gave a reward of {bad} in the rollout that ended at agent step 8: clips are "
        "compared by their true rewards, which must be numbers",
    ):
        cutter.cut(obs, act, rew, starts, snaps, agent_step=8)
