import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.envs import VecEnv, make_env
from prefrl.prefs.clips import Clip, ClipCutter
from prefrl.prefs.selection import SELECTIONS, disagreement_scores, select_pairs, unasked_pairs
from prefrl.reward import LearnedRewardWrapper, RewardModel, RewardModelConfig, load_reward_model
from prefrl.reward.trainer import PreferenceTrainer, adapt_l2, bootstrap_counts, preference_loss


def test_preference_loss_matches_hand_computation():
    r_left, r_right = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 3.0])
    mu = torch.tensor([1.0, 0.5, 0.0])
    loss = preference_loss(r_left, r_right, mu, 0.1)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    p1 = 0.9 * sig(1.0) + 0.05
    p3 = 0.9 * sig(-2.0) + 0.05
    expected = [-math.log(p1), -(0.5 * math.log(0.5) + 0.5 * math.log(0.5)), -math.log(1 - p3)]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


def test_adaptive_l2_rule():
    assert adapt_l2(0.01, train_loss=0.4, val_loss=0.7) == pytest.approx(0.015)  # 1.75x: more
    assert adapt_l2(0.01, train_loss=0.4, val_loss=0.42) == pytest.approx(0.01 / 1.5)  # 1.05x: less
    assert adapt_l2(0.01, train_loss=0.4, val_loss=0.5) == 0.01  # 1.25x: keep
    assert adapt_l2(0.01, train_loss=0.4, val_loss=float("nan")) == 0.01


def test_bootstrap_counts_are_poisson_hold_out_about_one_over_e_and_leave_no_label_untrained():
    counts = np.stack([bootstrap_counts(seed=3, label_key=k, members=3) for k in range(20_000)])
    np.testing.assert_array_equal(counts[5], bootstrap_counts(3, 5, 3))  # deterministic per label
    assert abs(counts.mean() - (1.0 + math.exp(-3) / 3)) < 0.02  # |D| draws per member on average
    held_out = (counts == 0).mean(axis=0)
    # 1/e of a member's labels are its validation set, less its share of those no member drew
    np.testing.assert_allclose(held_out, math.exp(-1) - math.exp(-3) / 3, atol=0.01)
    assert (counts.sum(axis=1) > 0).all()  # every label trains some member
    assert not np.array_equal(counts[:, 0], counts[:, 1])  # members differ
    single = np.stack([bootstrap_counts(seed=3, label_key=k, members=1) for k in range(20_000)])
    np.testing.assert_allclose((single == 0).mean(), math.exp(-1), atol=0.01)  # its validation set


def test_image_labels_are_padded_per_batch_as_vectors_are_padded_for_all():
    from prefrl.reward.trainer import _Side

    rng = np.random.default_rng(0)
    feats = [rng.integers(0, 255, size=(n, 2, 3, 3), dtype=np.uint8) for n in (3, 5, 4, 5)]
    eager, lazy = _Side(feats, lazy=False), _Side(feats, lazy=True)
    assert lazy.padded is None and len(lazy) == 4 and lazy.length == 5
    for rows in (torch.tensor([2, 0, 2]), slice(1, 3), slice(0, 4)):
        for a, b in zip(eager[rows], lazy[rows], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    x, mask = lazy[torch.tensor([0])]
    assert x.dtype == torch.uint8 and mask.tolist() == [[1, 1, 1, 0, 0]]
    assert not x[0, 3:].any()


def make_clip(values, actions=None):
    obs = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    acts = np.zeros(len(obs), dtype=np.int64) if actions is None else actions
    return Clip(obs, acts, np.zeros(len(obs), dtype=np.float32), None, "test")


def linear_model(weights):
    """Members with reward = w_m * obs[0] (no hidden layers)."""
    model = RewardModel(
        (1,), gym.spaces.Discrete(2), RewardModelConfig(hidden_sizes=(), ensemble_size=len(weights))
    )
    layer = model.net.net[0]
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[:, 0, 0] = torch.tensor(weights)
    model.version = 1
    return model


def test_disagreement_picks_the_most_disputed_pair():
    model = linear_model([1.0, -1.0, 0.0])  # members disagree in proportion to the obs gap
    clips = [make_clip([0.0, 0.0]), make_clip([0.1, 0.1]), make_clip([2.0, 2.0]), make_clip([0.2, 0.2])]
    pairs = np.array([[0, 1], [0, 2], [1, 3], [2, 3]])
    scores = disagreement_scores(model, clips, pairs)
    assert scores.argmax() == 1  # clips 0 and 2: the largest gap
    chosen, chosen_scores = select_pairs(
        clips, 1, np.random.default_rng(0), "disagreement", model, oversample=50
    )
    assert sorted(chosen[0].tolist()) == [0, 2]
    assert chosen_scores is not None and chosen_scores[0] == pytest.approx(scores.max())
    agree = linear_model([1.0, 1.0, 1.0])
    assert np.allclose(disagreement_scores(agree, clips, pairs), 0.0)


def test_no_pair_is_asked_twice_by_any_selection():
    clips = [make_clip([float(i), float(i)]) for i in range(4)]  # 6 pairs
    ids = [c.clip_id for c in clips]
    model = linear_model([1.0, -1.0, 0.0])

    def unordered(pairs):
        return sorted(tuple(sorted(p)) for p in pairs.tolist())

    every = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    asked = {(ids[0], ids[1]), (ids[3], ids[2])}  # the second one asked the other way round
    for selection in SELECTIONS:
        pairs, _ = select_pairs(clips, 100, np.random.default_rng(0), selection, model)
        assert unordered(pairs) == every, selection  # each pair once, however many are wanted
        pairs, _ = select_pairs(clips, 100, np.random.default_rng(0), selection, model, asked=asked)
        assert unordered(pairs) == [(0, 2), (0, 3), (1, 2), (1, 3)], selection
        all_asked = {(ids[i], ids[j]) for i, j in every}
        pairs, scores = select_pairs(clips, 3, np.random.default_rng(0), selection, model, asked=all_asked)
        assert pairs.shape == (0, 2) and scores is None, selection
    assert unasked_pairs(clips[:1]).shape == (0, 2)
    # either clip is shown on the left
    shown = np.concatenate([select_pairs(clips, 6, np.random.default_rng(s))[0] for s in range(5)])
    assert (shown[:, 0] < shown[:, 1]).any() and (shown[:, 0] > shown[:, 1]).any()


def test_output_normalization_and_round_trip(tmp_path):
    model = RewardModel((3,), gym.spaces.Box(-2, 2, (1,)), seed=0)
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(500, 3)), rng.uniform(-2, 2, size=(500, 1))
    feats = model.features(obs, act)
    model.fit_input_normalization(feats)
    model.fit_output_normalization(feats)
    members = (model.member_rewards(obs, act) - model.output_mean[:, None]) / model.output_std[:, None]
    np.testing.assert_allclose(members.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(members.std(axis=1), 1, atol=1e-4)
    model.version = 4
    model.save(tmp_path / "checkpoints" / "reward_model.pt")
    loaded = load_reward_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict(obs, act), model.predict(obs, act))
    assert loaded.version == 4
    with pytest.raises(FileNotFoundError, match="no reward model"):
        load_reward_model(tmp_path / "elsewhere")


def test_learned_reward_wrapper_keeps_true_reward_in_info():
    model = RewardModel((3,), gym.spaces.Box(-2, 2, (1,)), seed=0)
    env = LearnedRewardWrapper(gym.make("Pendulum-v1"), model)
    obs, _ = env.reset(seed=0)
    action = np.array([0.3], dtype=np.float32)
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(float(model.predict(obs[None], action[None])[0]))
    assert info["true_reward"] < 0 and reward != info["true_reward"]
    with pytest.raises(ValueError, match="trained on observations"):
        LearnedRewardWrapper(gym.make("CartPole-v1"), model)


def pendulum_clips(n, seed=0):
    envs = VecEnv([lambda: make_env("Pendulum-v1")] * 4)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    cutter = ClipCutter("Pendulum-v1", 50, 4)
    clips = []
    starts = np.ones(4, dtype=bool)
    while len(clips) < n:
        T = 200
        obs = np.empty((T, 4, 3), np.float32)
        act = rng.uniform(-2, 2, size=(T, 4, 1)).astype(np.float32)
        rew = np.empty((T, 4), np.float32)
        ep = np.zeros((T, 4), bool)
        o = envs.reset(seed=int(rng.integers(1 << 30)))
        for t in range(T):
            obs[t], ep[t] = o, starts if t == 0 else False
            step = envs.step(act[t])
            rew[t], o = step.true_rewards, step.obs
        clips += cutter.cut(obs, act, rew, ep, None, 0)
    return clips[:n]


@pytest.mark.learning
def test_reward_model_recovers_the_true_ranking():
    torch.manual_seed(0)
    clips = pendulum_clips(400)
    train, test = clips[:200], clips[200:]
    model = RewardModel((3,), gym.spaces.Box(-2, 2, (1,)), seed=0)
    trainer = PreferenceTrainer(model, seed=0)
    for k in range(100):
        a, b = train[2 * k], train[2 * k + 1]
        trainer.add(k, a, b, 1.0 if a.true_return > b.true_return else 0.0)
    for _ in range(3):
        metrics = trainer.train_round()
    assert metrics["reward/train_accuracy"] > 0.9
    predicted = [model.predict(c.obs, c.actions).sum() for c in test]
    true = [c.true_return for c in test]
    assert np.corrcoef(predicted, true)[0, 1] > 0.9


def test_a_removed_label_leaves_the_data_and_every_members_resample():
    trainer = PreferenceTrainer(linear_model([1.0, 1.0, 1.0]), seed=5)
    for key in (10, 11, 12):
        trainer.add(key, make_clip([float(key), 0.0]), make_clip([0.0, 1.0]), 1.0 if key != 11 else 0.0)
    assert trainer.remove(11) and not trainer.remove(11) and not trainer.remove(99)
    assert trainer.num_labels == 2 and trainer.pairs.keys == [10, 12]
    assert trainer.pairs.mu == [1.0, 1.0]
    assert [float(f[0, 0]) for f in trainer.pairs.left] == [10.0, 12.0]
    assert len(trainer.pairs.right) == len(trainer.pairs.true_returns) == 2
    # the bootstrap weights left are those of labels 10 and 12, in their order
    for counts, key in zip(trainer.pairs.counts, (10, 12), strict=True):
        np.testing.assert_array_equal(counts, bootstrap_counts(5, key, 3))
    assert trainer._tensors().counts.shape == (2, 3)
    assert trainer.train_round()["reward/labels"] == 2.0


def test_l2_is_adapted_only_on_a_validation_set_large_enough_to_tell():
    """Random answers: the validation loss is off the 1.1x-1.5x band of the training loss
    (a member cannot generalise them), so the rule moves L2, but only once the member
    holds out ``l2_min_validation`` labels."""
    rng = np.random.default_rng(0)
    clips = [make_clip(rng.normal(size=2).tolist()) for _ in range(400)]
    for min_validation, labels, adapted in ((20, 30, False), (20, 200, True), (5, 30, True)):
        config = RewardModelConfig(ensemble_size=1, l2_min_validation=min_validation)
        trainer = PreferenceTrainer(RewardModel((1,), gym.spaces.Box(-1, 1, (1,)), config), seed=0)
        for k in range(labels):
            trainer.add(k, clips[2 * k], clips[2 * k + 1], float(rng.integers(2)))
        held_out = int((np.stack(trainer.pairs.counts)[:, 0] == 0).sum())
        assert (held_out >= min_validation) == adapted
        trainer.train_round()
        assert (trainer.l2[0] != config.l2_init) == adapted, (min_validation, labels, held_out)
