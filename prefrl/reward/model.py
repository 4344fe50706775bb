"""The reward model: an ensemble of (observation, action) MLPs, as in Christiano et al. 2017.

Each member maps one transition to a scalar. The members are stored as one batched
network (weights shaped ``(members, in, out)``), so the whole ensemble costs one matrix
multiply per layer. The reward the agent sees is the mean over members of each
member's output normalised on its own to zero mean and a fixed standard deviation
(``output_std``; the paper uses 1 for MuJoCo, 0.05 for Atari) over recently visited
transitions.

Inputs: the observation flattened, followed by the action (one-hot for discrete action
spaces; left out with ``use_actions=False``), normalised with statistics of the labelled
clips' transitions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.utils.checkpoint import load_checkpoint, save_checkpoint
from prefrl.utils.settings import override


@dataclass
class RewardModelConfig:
    """Reward-model settings (the paper's, scaled to a laptop)."""

    ensemble_size: int = field(default=3, metadata={"min": 1})
    """number of members, each trained on its own bootstrap resample of the labels"""
    hidden_sizes: tuple[int, ...] = field(default=(64, 64), metadata={"min": 1})
    """hidden layer widths of each member"""
    leaky_slope: float = 0.01
    """negative slope of the leaky ReLU between layers"""
    dropout: float = field(default=0.0, metadata={"min": 0, "below": 1})
    """dropout probability after each hidden layer while training"""
    output_std: float = field(default=1.0, metadata={"above": 0})
    """standard deviation each member's output is normalised to (mean 0)"""
    learning_rate: float = field(default=1e-3, metadata={"above": 0})
    """Adam learning rate"""
    batch_size: int = field(default=64, metadata={"min": 1})
    """labelled pairs per gradient step"""
    epochs_per_round: int = field(default=10, metadata={"min": 1})
    """passes over the labels in each training round (warm-started from the last round)"""
    first_round_multiplier: int = field(default=3, metadata={"min": 1})
    """the first round (from scratch, on the initial labels) makes this many times more passes"""
    min_steps_per_round: int = field(default=50, metadata={"min": 0})
    """at least this many gradient steps per round (few labels: many passes)"""
    l2_init: float = field(default=1e-3, metadata={"min": 0})
    """initial L2 weight; adapted per member to keep validation loss 1.1x-1.5x training loss"""
    l2_min_validation: int = field(default=20, metadata={"min": 1})
    """a member's L2 weight is adapted only once it holds out at least this many labels: the
    loss on a handful is too noisy to steer by, and a weight raised on noise can push every
    layer to zero, a point a network does not train out of"""
    random_answer_prob: float = field(default=0.1, metadata={"min": 0, "max": 1})
    """the paper's model of answers given at random: P = (1 - p) * softmax + p / 2"""
    use_actions: bool = True
    """feed the action to the members (the paper's MuJoCo setting); False: observations only
    (the paper's Atari setting), for envs whose goal is a state, where a few labels make
    the members prefer one action everywhere and the agent exploits that"""

    def replace(self, **changes: Any) -> RewardModelConfig:
        """A copy with ``changes`` applied and checked (ConfigError names the first bad one)."""
        return override(self, changes, what="reward-model setting")

    def override(self, changes: dict[str, Any], *, flag: str | None = "--reward-model") -> RewardModelConfig:
        """:meth:`replace` for a user's overrides: a bad one is named as ``{flag} KEY=VALUE``."""
        return override(self, changes, prefix=flag, what="reward-model setting")


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers applied at once: ``(M, B, in) -> (M, B, out)``."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """``members`` MLPs with leaky-ReLU hidden layers and a scalar output: ``(M, B, in) -> (M, B)``."""

    def __init__(self, members: int, in_dim: int, hidden: tuple[int, ...], slope: float, dropout: float):
        super().__init__()
        sizes = [in_dim, *hidden, 1]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(EnsembleLinear(members, sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.LeakyReLU(slope))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """Sum of squared weights of each member, ``(M,)`` (for the L2 penalty)."""
        return sum(m.weight.pow(2).sum(dim=(1, 2)) for m in self.net if isinstance(m, EnsembleLinear))  # type: ignore[return-value]


def action_features(action_space: gym.Space) -> int:
    """Width of the action part of the input (one-hot size for Discrete)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    return int(np.prod(action_space.shape))  # type: ignore[arg-type]


class RewardModel:
    """The ensemble with its input and output normalisation; numpy in, numpy out.

    Args:
        obs_shape: shape of one observation.
        action_space: the env's action space (Discrete or 1-D Box).
        config: settings.
        seed: seeds the initial weights.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        action_space: gym.Space,
        config: RewardModelConfig | None = None,
        seed: int = 0,
    ):
        self.config = config or RewardModelConfig()
        self.obs_shape = tuple(obs_shape)
        self.action_space = action_space
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.obs_dim = int(np.prod(obs_shape))
        self.in_dim = self.obs_dim + (action_features(action_space) if self.config.use_actions else 0)
        generator_state = torch.get_rng_state()
        torch.manual_seed(seed)
        cfg = self.config
        self.net = EnsembleMLP(cfg.ensemble_size, self.in_dim, cfg.hidden_sizes, cfg.leaky_slope, cfg.dropout)
        torch.set_rng_state(generator_state)  # building a model must not disturb the caller's RNG
        self.net.eval()
        self.input_mean = np.zeros(self.in_dim, dtype=np.float32)
        self.input_std = np.ones(self.in_dim, dtype=np.float32)
        self.output_mean = np.zeros(cfg.ensemble_size, dtype=np.float32)
        self.output_std = np.ones(cfg.ensemble_size, dtype=np.float32)
        self.version = 0

    @property
    def ensemble_size(self) -> int:
        return self.config.ensemble_size

    def check_spaces(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Refuse an env whose spaces differ from the ones this model was trained on.

        Raises:
            ValueError: another observation shape, another kind of action space, or
                another number of actions (Discrete) or action shape (Box).
        """
        if observation_space.shape != self.obs_shape:
            raise ValueError(
                f"the reward model was trained on observations of shape {self.obs_shape}, "
                f"this env has {observation_space.shape}"
            )
        same_kind = type(action_space) is type(self.action_space)
        if isinstance(action_space, gym.spaces.Discrete) and same_kind:
            same = int(action_space.n) == int(self.action_space.n)  # type: ignore[attr-defined]
        else:
            same = same_kind and action_space.shape == self.action_space.shape
        if not same:
            raise ValueError(
                f"the reward model was trained on {self.action_space}, this env has {action_space}"
            )

    # ------------------------------------------------------------------ inputs
    def features(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Unnormalised inputs ``(B, in_dim)`` float32 from ``obs (B, *obs_shape)`` and ``actions``."""
        obs = np.asarray(obs, dtype=np.float32).reshape(len(obs), self.obs_dim)
        if not self.config.use_actions:
            return obs
        if self.discrete:
            n = self.in_dim - self.obs_dim
            act = np.zeros((len(obs), n), dtype=np.float32)
            act[np.arange(len(obs)), np.asarray(actions, dtype=np.int64).reshape(-1)] = 1.0
        else:
            act = np.asarray(actions, dtype=np.float32).reshape(len(obs), -1)
        return np.concatenate([obs, act], axis=1)

    def normalize_inputs(self, features: np.ndarray) -> np.ndarray:
        return (features - self.input_mean) / self.input_std

    def fit_input_normalization(self, features: np.ndarray) -> None:
        """Set the input statistics from a sample of unnormalised features ``(B, in_dim)``."""
        self.input_mean = features.mean(axis=0).astype(np.float32)
        std = features.std(axis=0)
        # one-hot columns and constant observations keep a unit scale
        self.input_std = np.where(std > 1e-6, std, 1.0).astype(np.float32)

    # ----------------------------------------------------------------- outputs
    def member_rewards(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) reward of every member, ``(M, B)`` float32."""
        return self._members_from_features(self.features(obs, actions))

    def _members_from_features(self, features: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(self.normalize_inputs(features))
        with torch.inference_mode():
            out = self.net(x.unsqueeze(0).expand(self.ensemble_size, -1, -1))
        return out.numpy()

    def predict(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The learned reward ``(B,)``: the mean of the normalised members."""
        return self.predict_features(self.features(obs, actions))

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """:meth:`predict` from unnormalised features ``(B, in_dim)``."""
        raw = self._members_from_features(features)
        scale = self.config.output_std / self.output_std
        return ((raw - self.output_mean[:, None]) * scale[:, None]).mean(axis=0)

    def fit_output_normalization(self, features: np.ndarray) -> None:
        """Set each member's output mean and std over unnormalised features ``(B, in_dim)``
        of a sample of recently visited transitions."""
        raw = self._members_from_features(features)
        self.output_mean = raw.mean(axis=1).astype(np.float32)
        self.output_std = np.maximum(raw.std(axis=1), 1e-6).astype(np.float32)

    def preference_probs(
        self, left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Each member's P(left preferred) for pairs of clips, ``(M, P)``.

        ``left`` and ``right`` are ``(obs (P, L, *obs_shape), actions (P, L, ...))`` of
        equal-length clips. Uses the raw outputs, as in training (without the
        random-answer term).
        """
        n_pairs, length = left[0].shape[:2]
        lo, la = left[0].reshape(n_pairs * length, *self.obs_shape), left[1].reshape(n_pairs * length, -1)
        ro, ra = right[0].reshape(n_pairs * length, *self.obs_shape), right[1].reshape(n_pairs * length, -1)
        r_left = self.member_rewards(lo, la).reshape(-1, n_pairs, length).sum(-1)
        r_right = self.member_rewards(ro, ra).reshape(-1, n_pairs, length).sum(-1)
        return 0.5 * (1.0 + np.tanh(0.5 * (r_left - r_right)))  # the sigmoid, without overflow

    # --------------------------------------------------------- (de)serialising
    def state_dict(self) -> dict[str, Any]:
        """Plain data (CPU tensors, numpy arrays, numbers): safe to send to another process."""
        space = self.action_space
        return {
            "version": self.version,
            "config": dataclasses.asdict(self.config),
            "obs_shape": list(self.obs_shape),
            "action_space": {"n": int(space.n)}  # type: ignore[attr-defined]
            if self.discrete
            else {"low": np.asarray(space.low).tolist(), "high": np.asarray(space.high).tolist()},  # type: ignore[attr-defined]
            "net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "input_mean": self.input_mean.copy(),
            "input_std": self.input_std.copy(),
            "output_mean": self.output_mean.copy(),
            "output_std": self.output_std.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.input_mean = np.asarray(state["input_mean"], dtype=np.float32)
        self.input_std = np.asarray(state["input_std"], dtype=np.float32)
        self.output_mean = np.asarray(state["output_mean"], dtype=np.float32)
        self.output_std = np.asarray(state["output_std"], dtype=np.float32)
        self.version = int(state["version"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RewardModel:
        space_info = state["action_space"]
        space: gym.Space
        if "n" in space_info:
            space = gym.spaces.Discrete(space_info["n"])
        else:
            space = gym.spaces.Box(
                np.array(space_info["low"], np.float32), np.array(space_info["high"], np.float32)
            )
        cfg = dict(state["config"])
        cfg["hidden_sizes"] = tuple(cfg["hidden_sizes"])
        model = cls(tuple(state["obs_shape"]), space, RewardModelConfig(**cfg))
        model.load_state_dict(state)
        return model

    def save(self, path: str | Path) -> None:
        """Write the model atomically (a reader never sees half a file)."""
        save_checkpoint(self.state_dict(), path, "reward_model")

    @classmethod
    def load(cls, path: str | Path) -> RewardModel:
        """Read a model written by :meth:`save` (loading it never runs code from the file).

        Raises:
            prefrl.utils.checkpoint.CheckpointError: not a reward model, or one that cannot
                be loaded safely (the message says what to do).
        """
        return cls.from_state_dict(load_checkpoint(path, "reward_model"))
