"""Actor-critic CNNs for image observations, and the actor that runs them in a rollout.

An image observation space is a ``gymnasium.spaces.Box`` of dtype uint8 and shape
``(C, H, W)``, channels first (:func:`prefrl.envs.make.is_image_space`): ALE after its preprocessing gives
``(4, 84, 84)`` with high 255, MinAtar ``(C, 10, 10)`` with high 1. Rollouts keep the raw
uint8 observations (a quarter of the memory of float32); the network scales them by
``1 / high`` itself, and images get no running mean/std normalisation.

Two trunks, one shared by the actor and the critic heads (CleanRL's ``ppo_atari``):

- ``"nature"``: the DQN Nature CNN (Mnih et al. 2015): 32 8x8 stride 4, 64 4x4 stride 2,
  64 3x3 stride 1, fully connected 512; for inputs of at least 36x36 pixels.
- ``"small"``: the MinAtar baselines' network (Young & Tian 2019): 16 3x3 stride 1,
  fully connected 128; for small inputs such as MinAtar's 10x10.

Weights are orthogonal with gain sqrt(2), the actor head's 0.01 and the critic's 1, biases 0.
"""

from __future__ import annotations

import math
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.envs.make import is_image_space
from prefrl.errors import ConfigError

CnnKind = Literal["auto", "nature", "small"]

NATURE_MIN_SIZE = 36
"""the smallest height and width the Nature CNN's three convolutions leave a pixel of"""


def choose_cnn(obs_shape: tuple[int, ...], kind: CnnKind = "auto") -> Literal["nature", "small"]:
    """The trunk for images of ``obs_shape`` ``(C, H, W)``: ``kind`` unless it is ``"auto"``,
    then ``"nature"`` for images of at least 36x36 pixels and ``"small"`` below.

    Raises:
        ConfigError: ``"nature"`` asked for images smaller than 36x36.
    """
    height, width = obs_shape[1], obs_shape[2]
    fits_nature = min(height, width) >= NATURE_MIN_SIZE
    if kind == "auto":
        return "nature" if fits_nature else "small"
    if kind == "nature" and not fits_nature:
        raise ConfigError(
            f"cnn='nature' needs images of at least {NATURE_MIN_SIZE}x{NATURE_MIN_SIZE} pixels; "
            f"these are {height}x{width}: use cnn='small' (or 'auto')"
        )
    return kind


def _init(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Module:
    nn.init.orthogonal_(layer.weight, gain)
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)
    return layer


def nature_trunk(channels: int, height: int, width: int) -> tuple[nn.Sequential, int]:
    """The Nature CNN up to its 512-unit hidden layer; returns ``(trunk, 512)``."""
    g = math.sqrt(2)
    convs = nn.Sequential(
        _init(nn.Conv2d(channels, 32, 8, stride=4), g),
        nn.ReLU(),
        _init(nn.Conv2d(32, 64, 4, stride=2), g),
        nn.ReLU(),
        _init(nn.Conv2d(64, 64, 3, stride=1), g),
        nn.ReLU(),
        nn.Flatten(),
    )
    flat = _flat_size(convs, channels, height, width)
    return nn.Sequential(*convs, _init(nn.Linear(flat, 512), g), nn.ReLU()), 512


def small_trunk(channels: int, height: int, width: int) -> tuple[nn.Sequential, int]:
    """The MinAtar baselines' CNN up to its 128-unit hidden layer; returns ``(trunk, 128)``."""
    g = math.sqrt(2)
    convs = nn.Sequential(_init(nn.Conv2d(channels, 16, 3, stride=1), g), nn.ReLU(), nn.Flatten())
    flat = _flat_size(convs, channels, height, width)
    return nn.Sequential(*convs, _init(nn.Linear(flat, 128), g), nn.ReLU()), 128


def _flat_size(convs: nn.Sequential, channels: int, height: int, width: int) -> int:
    with torch.no_grad():
        return int(convs(torch.zeros(1, channels, height, width)).shape[1])


class CnnActorCritic(nn.Module):
    """A CNN trunk shared by a categorical actor head and a value head.

    Takes raw image observations ``(B, C, H, W)`` of any dtype (uint8 from rollouts) and
    scales them by ``1 / high`` of the observation space. Actions are ``(B,)`` int64; the
    actor outputs logits ``(B, n)``. The interface matches
    :class:`~prefrl.agent.policies.ActorCritic` (``value``, ``evaluate``), so PPO's update
    is the same code for both.

    Args:
        observation_space: an image space (:func:`~prefrl.envs.make.is_image_space`).
        action_space: ``Discrete``.
        cnn: ``"nature"``, ``"small"`` or ``"auto"`` (see :func:`choose_cnn`).
        channels_last: keep the convolution weights, and feed the inputs, in channels-last
            memory order (the layout oneDNN's CPU convolutions work in; results are equal
            up to float rounding).
    """

    discrete = True
    scale: torch.Tensor

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        cnn: CnnKind = "auto",
        channels_last: bool = False,
    ):
        super().__init__()
        if not is_image_space(observation_space):
            raise ValueError(
                f"CnnActorCritic needs a uint8 (C, H, W) Box observation space; got {observation_space}"
            )
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"CnnActorCritic supports Discrete actions; got {action_space}")
        assert isinstance(observation_space, gym.spaces.Box)
        channels, height, width = observation_space.shape
        self.kind = choose_cnn(observation_space.shape, cnn)
        build = nature_trunk if self.kind == "nature" else small_trunk
        self.trunk, hidden = build(channels, height, width)
        self.actor = _init(nn.Linear(hidden, int(action_space.n)), 0.01)
        self.critic = _init(nn.Linear(hidden, 1), 1.0)
        # One scale for all pixels: the space's largest high (255 for ALE frames, 1 for MinAtar).
        self.register_buffer("scale", torch.tensor(1.0 / float(np.max(observation_space.high))))
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # a documented keyword

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The trunk's hidden features ``(B, hidden)`` of raw observations ``(B, C, H, W)``."""
        x = obs.float() * self.scale
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.trunk(x)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values ``(B,)``."""
        return self.critic(self.features(obs)).squeeze(-1)

    def logits_and_value(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits ``(B, n)`` and state values ``(B,)``, from one pass of the trunk."""
        hidden = self.features(obs)
        return self.actor(hidden), self.critic(hidden).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_probs (B,), entropies (B,), values (B,))`` of ``actions`` under the policy."""
        logits, values = self.logits_and_value(obs)
        log_probs_all = torch.log_softmax(logits, dim=-1)
        log_prob = log_probs_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
        return log_prob, entropy, values


class TorchActor:
    """Acts with a :class:`CnnActorCritic` on a batch of raw observations, under
    ``torch.inference_mode`` on the network's device; the same interface as
    :class:`~prefrl.agent.policies.NumpyActor` (numpy in, numpy out).

    Actions are drawn with numpy Gumbel noise from ``rng`` (as ``NumpyActor`` does), so a
    seed gives the same draws whatever the device.
    """

    discrete = True

    def __init__(self, policy: CnnActorCritic, seed: int):
        self.policy = policy
        self.rng = np.random.default_rng(seed)

    @property
    def device(self) -> torch.device:
        return self.policy.scale.device

    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(obs)).to(self.device, non_blocking=True)

    def value(self, obs: np.ndarray) -> np.ndarray:
        """State values ``(B,)`` float32 for raw observations ``(B, C, H, W)``."""
        with torch.inference_mode():
            return self.policy.value(self._tensor(obs)).cpu().numpy()

    def sample(
        self, obs: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample actions; returns ``(actions (B,) int64, log_probs (B,), values (B,))``.

        ``rng``: the noise's generator (default: the actor's own, which training draws on).
        """
        rng = self.rng if rng is None else rng
        with torch.inference_mode():
            logits, values = self.policy.logits_and_value(self._tensor(obs))
            log_probs_all = torch.log_softmax(logits, dim=-1).cpu().numpy()
            values_np = values.cpu().numpy()
        # Gumbel-max: argmax(log p + Gumbel noise) is a sample from p.
        gumbel = -np.log(-np.log(rng.random(log_probs_all.shape, dtype=np.float32)))
        actions = (log_probs_all + gumbel).argmax(axis=1)
        log_prob = np.take_along_axis(log_probs_all, actions[:, None], axis=1)[:, 0]
        return actions, log_prob, values_np

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """The most likely action ``(B,)`` (deterministic evaluation)."""
        with torch.inference_mode():
            logits, _ = self.policy.logits_and_value(self._tensor(obs))
            return logits.argmax(dim=1).cpu().numpy()
