"""The reward model on images: the paper's Atari CNN ensemble and its small variant."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefrl.prefs.clips import Clip
from prefrl.reward.model import EnsembleCNN, RewardModel, RewardModelConfig
from prefrl.reward.trainer import PreferenceTrainer

torch.set_num_threads(1)

ACTIONS = gym.spaces.Discrete(4)
IMAGE = RewardModelConfig(use_actions=False, dropout=0.5, output_std=0.05, hidden_sizes=(64,))


def test_paper_net_shapes():
    model = RewardModel((4, 84, 84), ACTIONS, IMAGE)
    net = model.net
    assert isinstance(net, EnsembleCNN)
    convs = [m for m in net.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((7, 7), (3, 3), 48),
        ((5, 5), (2, 2), 48),
        ((3, 3), (1, 1), 48),
        ((3, 3), (1, 1), 48),
    ]
    assert [c.groups for c in convs] == [1, 3, 3, 3]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.convs) == 4
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.convs) == 4
    assert net.head.net[0].weight.shape == (3, 16 * 7 * 7, 64)  # 84 -> 26 -> 11 -> 9 -> 7
    obs = np.random.default_rng(0).integers(0, 256, (5, 4, 84, 84), dtype=np.uint8)
    assert model.member_rewards(obs, np.zeros(5)).shape == (3, 5)
    assert model.predict(obs, np.zeros(5)).shape == (5,)


def test_small_net_for_small_images():
    model = RewardModel((6, 10, 10), ACTIONS, IMAGE)
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride) for c in convs] == [((3, 3), (1, 1))] * 2
    assert model.member_rewards(np.zeros((2, 6, 10, 10), np.uint8), np.zeros(2)).shape == (3, 2)
    with pytest.raises(ValueError, match="too small"):
        RewardModel((4, 10, 10), ACTIONS, IMAGE.replace(cnn="paper"))


def test_images_take_no_actions():
    with pytest.raises(ValueError, match="use_actions=False"):
        RewardModel((4, 84, 84), ACTIONS, RewardModelConfig())


def test_members_are_independent():
    """Member 1's weights do not reach member 0's output (the grouped convs keep them apart)."""
    model = RewardModel((4, 20, 20), ACTIONS, IMAGE.replace(cnn="small"))
    obs = np.random.default_rng(0).integers(0, 2, (7, 4, 20, 20), dtype=np.uint8)
    before = model.member_rewards(obs, np.zeros(7))
    with torch.no_grad():
        for module in model.net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight[16:32] += 1.0  # member 1's filters
    after = model.member_rewards(obs, np.zeros(7))
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[2], before[2])
    assert not np.allclose(after[1], before[1])
    norms = model.net.weight_norms()
    assert norms.shape == (3,) and norms[1] > norms[0]


def test_batch_norm_uses_batch_statistics_in_training_only():
    model = RewardModel((4, 10, 10), ACTIONS, IMAGE.replace(dropout=0.0))
    x = torch.rand(8, 4, 10, 10)
    model.net.eval()
    eval_out = model.net(x)
    torch.testing.assert_close(model.net(x[:1])[:, 0], eval_out[:, 0])  # eval: each image on its own
    model.net.train()
    train_alone, train_batch = model.net(x[:1]), model.net(x)
    assert not torch.allclose(train_alone[:, 0], train_batch[:, 0])  # train: the batch's statistics
    bn = next(m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.num_batches_tracked == 2


def test_uint8_images_are_normalised_by_pixel_statistics():
    model = RewardModel((4, 10, 10), ACTIONS, IMAGE)
    frames = np.full((3, 4, 10, 10), 255, np.uint8)
    frames[0] = 0
    model.fit_input_normalization([frames[:1], frames[1:]])
    assert model.input_mean.shape == (1,)
    assert model.input_mean[0] == pytest.approx(170.0)
    assert model.input_std[0] == pytest.approx(np.std([0, 255, 255]), rel=1e-6)
    features = model.features(frames, np.zeros(3))
    assert features.dtype == np.uint8  # stays uint8 until the network


def _lit_clip(rng: np.random.Generator, length: int) -> Clip:
    """A clip of 10x10 binary frames, lit at random densities; its true reward per step is
    the number of lit pixels in the left half of channel 0 (the rest is distraction)."""
    density = rng.uniform(0.0, 0.2, size=(length, 1, 1, 1))
    obs = (rng.random((length, 2, 10, 10)) < density).astype(np.uint8)
    return Clip(
        obs=obs,
        actions=np.zeros(length, np.int64),
        true_rewards=obs[:, 0, :, :5].sum(axis=(1, 2)).astype(np.float32),
        snapshots=None,
        env_id="lit-pixels",
    )


@pytest.mark.learning
def test_learns_which_pixels_are_rewarded():
    """From 300 labels of clip pairs the small CNN ensemble ranks held-out pairs as the true
    reward does."""
    rng = np.random.default_rng(0)
    model = RewardModel((2, 10, 10), ACTIONS, IMAGE.replace(batch_size=32, dropout=0.0), seed=0)
    trainer = PreferenceTrainer(model, seed=0)
    for key in range(300):
        left, right = _lit_clip(rng, 10), _lit_clip(rng, 10)
        diff = left.true_return - right.true_return
        trainer.add(key, left, right, 0.5 if diff == 0 else float(diff > 0))
    for _ in range(4):
        trainer.train_round()
    correct = total = 0
    for _ in range(200):
        left, right = _lit_clip(rng, 10), _lit_clip(rng, 10)
        if left.true_return == right.true_return:
            continue
        p_left = model.preference_probs(
            (left.obs[None], left.actions[None]), (right.obs[None], right.actions[None])
        )
        correct += int((p_left.mean() > 0.5) == (left.true_return > right.true_return))
        total += 1
    assert correct / total >= 0.8
