"""Exploration while answers are ties: the state-entropy reward, its fade, diverse pairs,
and both evaluations (deterministic and stochastic) in a run's summary."""

import math

import numpy as np
import pytest
import torch

from prefrl.metrics import read_metrics
from prefrl.prefs.clips import Clip
from prefrl.prefs.selection import clip_features, diverse_pairs, select_pairs
from prefrl.reward.intrinsic import ExplorationReward, KnnStateEntropy, exploration_weight, knn_entropy_reward
from prefrl.runtime.config import TrainConfig
from prefrl.runtime.run import train

torch.set_num_threads(1)

POINTS = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [10.0, 10.0]])


def test_knn_reward_is_log_one_plus_the_kth_neighbour_distance():
    # k=2 with the points themselves as reference: the nearest is the point itself (0),
    # the second its nearest other point
    r = knn_entropy_reward(POINTS, POINTS, 2, np.ones(2))
    expected = [math.log(1 + 3), math.log(1 + 3), math.log(1 + 4), math.log(1 + math.hypot(10, 6))]
    np.testing.assert_allclose(r, expected, rtol=1e-6)
    # each dimension is divided by its scale before measuring
    r = knn_entropy_reward(POINTS[:1], POINTS[1:3], 1, np.array([3.0, 1.0]))
    np.testing.assert_allclose(r, [math.log(1 + 1)], rtol=1e-6)
    with pytest.raises(ValueError, match="at least k=3"):
        knn_entropy_reward(POINTS, POINTS[:2], 3, np.ones(2))


def test_state_entropy_scales_by_spread_skips_itself_and_remembers_batches():
    entropy = KnnStateEntropy(k=1, capacity=5, keep_per_batch=4)
    r = entropy.reward(POINTS)
    scale = POINTS.std(axis=0)
    np.testing.assert_allclose(r, knn_entropy_reward(POINTS, POINTS, 2, scale), rtol=1e-6)
    np.testing.assert_array_equal(entropy.memory, POINTS)
    # a second batch is measured against itself and the remembered states
    again = np.array([[0.0, 0.1]])
    r = entropy.reward(again)
    reference = np.concatenate([POINTS, again])
    np.testing.assert_allclose(r, knn_entropy_reward(again, reference, 2, reference.std(axis=0)), rtol=1e-6)
    assert len(entropy.memory) == 5  # capacity: the oldest state left
    np.testing.assert_array_equal(entropy.memory[-1], again[0])
    # a state far from everything seen earns more than one in a crowd
    far = entropy.reward(np.array([[50.0, 50.0], [0.0, 0.05]]))
    assert far[0] > far[1]


def test_exploration_fades_linearly_with_informative_answers():
    assert [exploration_weight(n, 4) for n in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert exploration_weight(0, 0) == 0.0  # off


def test_exploration_reward_mixes_the_standardised_intrinsic_reward_with_the_learned_one():
    def learned(obs, actions, true_rewards):
        return np.full(len(obs), 2.0, dtype=np.float32)

    intrinsic = KnnStateEntropy(k=1).reward(POINTS)
    z = (intrinsic - intrinsic.mean()) / (intrinsic.std() + 1e-8)
    zeros = np.zeros(len(POINTS))
    mixed = ExplorationReward(learned, KnnStateEntropy(k=1), 0.25)(POINTS, zeros, zeros)
    np.testing.assert_allclose(mixed, 0.75 * 2.0 + 0.25 * z, rtol=1e-5)
    alone = ExplorationReward(None, KnnStateEntropy(k=1), 0.0)(POINTS, zeros, zeros)  # no model yet
    np.testing.assert_allclose(alone, z, rtol=1e-5)
    with pytest.raises(ValueError, match="weight"):
        ExplorationReward(learned, KnnStateEntropy(), 1.5)


def clip(values):
    obs = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    return Clip(obs, np.zeros(len(obs), dtype=np.int64), np.zeros(len(obs), dtype=np.float32), None, "test")


def test_clip_features_are_mean_min_max_scaled_by_their_spread():
    f = clip_features([clip([0.0, 2.0]), clip([2.0, 4.0])])
    # columns mean (1, 3), min (0, 2), max (2, 4): each has std 1 over the two clips
    np.testing.assert_allclose(f, [[1.0, 0.0, 2.0], [3.0, 2.0, 4.0]])


def test_diverse_pairs_keep_far_apart_pairs_and_spread_them_out():
    features = np.array([[0.0], [1.0], [10.0], [11.0]])
    candidates = np.array([[0, 1], [0, 2], [1, 3], [2, 3], [0, 3], [1, 2]])
    # within-pair distances 1, 10, 10, 1, 11, 9: for 2 pairs the 4 farthest-apart are kept,
    # the near pairs (0,1) and (2,3) dropped. (0,3) comes first, at point (11, 11); the next is
    # the kept pair farthest from it: (1,2) at (11, 9), not (0,2) at (10, 10) or (1,3) at (12, 10)
    pairs, within = diverse_pairs(features, candidates, 2)
    assert pairs.tolist() == [[0, 3], [1, 2]]
    assert within.tolist() == [11.0, 9.0]
    pairs, _ = diverse_pairs(features, candidates, 1)
    assert pairs.tolist() == [[0, 3]]
    pairs, _ = diverse_pairs(features, candidates, 6)  # as many as there are: each candidate once
    assert sorted(map(tuple, pairs.tolist())) == sorted(map(tuple, candidates.tolist()))


def test_diverse_selection_avoids_pairs_of_look_alike_clips():
    # eight clips that stay near 0 (ties on a sparse task) and one that reaches 5
    clips = [clip([0.01 * i] * 4) for i in range(8)] + [clip([0.0, 2.0, 5.0, 5.0])]
    pairs, scores = select_pairs(clips, 3, np.random.default_rng(0), "diverse", None, oversample=10)
    assert (pairs == 8).any(axis=1).all()  # every pair shows the clip that went somewhere
    assert scores is not None and len(scores) == 3
    chance = select_pairs(clips, 3, np.random.default_rng(0), "random", None)[0]
    assert not (chance == 8).any(axis=1).all()


SMOKE = dict(
    env_id="MountainCar-v0",
    steps=4096,
    labels=12,
    clip_length=25,
    num_evals=2,
    eval_episodes=2,
    explore_labels=4,
    selection="diverse",
    backend="inprocess",
    ppo={"num_envs": 4, "num_steps": 128},
    reward_model={"epochs_per_round": 2, "min_steps_per_round": 5},
)


def test_an_exploring_run_reports_its_weight_ties_and_both_evaluations(tmp_path):
    summary = train(TrainConfig(**SMOKE), tmp_path / "run", progress=False, video=False)
    assert summary["complete"] and summary["labels_used"] == 12
    assert summary["tie_share"] == pytest.approx(summary["answers"]["equal"] / 12)
    assert len(summary["eval_returns"]) == len(summary["eval_returns_stochastic"]) == 2
    assert summary["final_eval_return_stochastic"] == pytest.approx(
        np.mean(summary["eval_returns_stochastic"])
    )
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    weights = [float(r["charts/explore_weight"]) for r in rows if r.get("charts/explore_weight")]
    assert weights and 0.0 <= min(weights) and max(weights) <= 1.0
    assert weights == sorted(weights, reverse=True)  # answers only accumulate: the weight never rises
