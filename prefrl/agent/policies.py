"""Actor-critic networks for discrete (categorical) and continuous (Gaussian) actions.

Log-probabilities and entropies are written out instead of built from
``torch.distributions`` objects: on a CPU with small networks, creating a distribution
object costs more than the network itself. For the same reason acting in the env
(a forward pass on a handful of observations per step) runs in numpy on views of the
torch parameters (:class:`NumpyActor`): torch's per-call overhead (~10 us per op on a
small CPU) is several times the arithmetic; learning stays in torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.agent.noise import NoiseStream

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def mlp(sizes: list[int], activation: str, out_gain: float, ortho_init: bool) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        if ortho_init:
            nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs over a flat observation.

    Discrete actions: the actor outputs logits ``(B, n)``; actions are ``(B,)`` int64.
    Continuous actions: the actor outputs the mean ``(B, d)``; a state-independent
    ``log_std`` parameter gives the standard deviation; actions are ``(B, d)`` float32,
    unbounded (the caller clips them to the action space before stepping the env).
    """

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        log_std_init: float = 0.0,
        ortho_init: bool = True,
    ):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            out_dim = int(action_space.n)  # type: ignore[attr-defined]
        else:
            out_dim = int(np.prod(action_space.shape))  # type: ignore[arg-type]
        hidden = list(hidden_sizes)
        self.actor = mlp([obs_dim, *hidden, out_dim], activation, 0.01, ortho_init)
        self.critic = mlp([obs_dim, *hidden, 1], activation, 1.0, ortho_init)
        self.log_std = nn.Parameter(
            torch.full((out_dim,), float(log_std_init)), requires_grad=not self.discrete
        )

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values ``(B,)``."""
        return self.critic(obs).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_probs (B,), entropies (B,), values (B,))`` of ``actions`` under the policy."""
        out = self.actor(obs)
        if self.discrete:
            log_probs_all = torch.log_softmax(out, dim=-1)
            log_prob = log_probs_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
        else:
            z = (actions - out) * torch.exp(-self.log_std)
            log_prob = (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(-1)
            entropy = (0.5 + _LOG_SQRT_2PI + self.log_std).sum().expand(out.shape[0])
        return log_prob, entropy, self.value(obs)


class NumpyActor:
    """Acts with an :class:`ActorCritic` in numpy, sharing its parameter memory.

    The arrays are views of the torch parameters, so optimiser steps and
    ``load_state_dict`` (both in place) are seen immediately; no copy is ever made.
    Log-probabilities and values match :meth:`ActorCritic.evaluate` to float32 rounding.
    """

    def __init__(self, policy: ActorCritic, seed: int, noise_beta: float = 0.0):
        self.discrete = policy.discrete
        self.actor = _numpy_layers(policy.actor)
        self.critic = _numpy_layers(policy.critic)
        self.act_fn = _NUMPY_ACTIVATIONS[type(policy.actor[1]).__name__] if len(policy.actor) > 1 else None
        self.log_std = policy.log_std.detach().numpy()
        self.rng = np.random.default_rng(seed)
        self.noise = NoiseStream(noise_beta, self.rng)

    def _forward(self, layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
        for i, (w_t, b) in enumerate(layers):
            x = x @ w_t + b
            if i < len(layers) - 1:
                assert self.act_fn is not None
                x = self.act_fn(x)
        return x

    def value(self, obs: np.ndarray) -> np.ndarray:
        """State values ``(B,)`` for normalised observations ``(B, obs_dim)`` float32."""
        return self._forward(self.critic, obs)[:, 0]

    def sample(
        self, obs: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample actions; returns ``(actions, log_probs (B,), values (B,))``.

        ``rng``: the noise's generator; default: the actor's own noise stream, which
        training draws on, coloured in time as asked (:mod:`prefrl.agent.noise`), one step
        per call. A given ``rng`` draws white noise.
        """
        out = self._forward(self.actor, obs)
        if self.discrete:
            shifted = out - out.max(axis=1, keepdims=True)
            log_probs_all = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            # Gumbel-max: argmax(log p + Gumbel noise) is a sample from p.
            gumbel = -np.log(-np.log((rng or self.rng).random(out.shape, dtype=np.float32)))
            actions = (log_probs_all + gumbel).argmax(axis=1)
            log_prob = np.take_along_axis(log_probs_all, actions[:, None], axis=1)[:, 0]
        else:
            if rng is None:
                noise = self.noise.draw(out.shape)
            else:
                noise = rng.standard_normal(out.shape, dtype=np.float32)
            actions = out + np.exp(self.log_std) * noise
            log_prob = (-0.5 * noise**2 - self.log_std - _LOG_SQRT_2PI).sum(axis=1)
        return actions, log_prob.astype(np.float32), self.value(obs)

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """The most likely action (deterministic evaluation)."""
        out = self._forward(self.actor, obs)
        return out.argmax(axis=1) if self.discrete else out


def _numpy_layers(seq: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    # weight.T is a transposed view; the matmul reads it in place.
    return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in seq if isinstance(m, nn.Linear)]


_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0.0),
}
