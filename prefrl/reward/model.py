"""The reward model: an ensemble of (observation, action) MLPs, as in Christiano et al. 2017;
for image observations an ensemble of CNNs on the observation alone (the paper's Atari net).

Each member maps one transition to a scalar. The members are stored as one batched
network (weights shaped ``(members, in, out)``), so the whole ensemble costs one matrix
multiply per layer. The reward the agent sees is the mean over members of each
member's output normalised on its own to zero mean and a fixed standard deviation
(``output_std``; the paper uses 1 for MuJoCo, 0.05 for Atari) over recently visited
transitions.

Inputs: the observation flattened, followed by the action (one-hot for discrete action
spaces; left out with ``use_actions=False``), normalised with statistics of the labelled
clips' transitions. Images (uint8, channels first) stay uint8 until they reach the network
and are normalised with one mean and standard deviation over all their pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    (the paper's Atari setting, and the only one for images), for envs whose goal is a state,
    where a few labels make the members prefer one action everywhere and the agent exploits that"""
    cnn: Literal["auto", "paper", "small"] = "auto"
    """image observations: "paper" is the paper's Atari net (4 conv layers of 16 filters:
    7x7 stride 3, 5x5 stride 2, 3x3, 3x3), "small" two 3x3 conv layers of 16 filters for
    images of a few pixels (MinAtar's 10x10); "auto" picks "small" under 36 pixels a side.
    Each conv layer has batch norm, a leaky ReLU and dropout; ``hidden_sizes`` follow"""

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
    """``members`` MLPs with leaky-ReLU hidden layers and a scalar output: ``(B, in) -> (M, B)``
    (every member sees the same batch)."""

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

        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(0).expand(self.members, -1, -1)).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """Sum of squared weights of each member, ``(M,)`` (for the L2 penalty)."""
        return _weight_norms(self, self.members)


CNN_LAYERS: dict[str, tuple[tuple[int, int], ...]] = {
    "paper": ((7, 3), (5, 2), (3, 1), (3, 1)),
    "small": ((3, 1), (3, 1)),
}
"""(kernel, stride) of each conv layer of the image nets"""
CNN_FILTERS = 16


def cnn_layers(kind: str, image_size: int) -> tuple[tuple[int, int], ...]:
    """The conv layers of ``kind`` ("auto": by the image's smaller side)."""
    if kind == "auto":
        kind = "small" if image_size < 36 else "paper"
    return CNN_LAYERS[kind]


class EnsembleCNN(nn.Module):
    """``members`` CNNs over one batch of images: ``(B, C, H, W) float -> (M, B)``.

    The members are one network: the first conv layer has ``16 * M`` filters on the shared
    input, later conv layers are grouped (member m's filters only see member m's
    channels), then per-member linear layers (:class:`EnsembleLinear`). Batch norm is per
    channel, so per member. The convolutions run channels-last (oneDNN's layout on CPUs;
    results equal up to float rounding).
    """

    def __init__(
        self,
        members: int,
        obs_shape: tuple[int, ...],
        layers: tuple[tuple[int, int], ...],
        hidden: tuple[int, ...],
        slope: float,
        dropout: float,
    ):
        super().__init__()
        self.members = members
        channels, height, width = obs_shape
        width_out = CNN_FILTERS * members
        convs: list[nn.Module] = []
        for i, (kernel, stride) in enumerate(layers):
            convs.append(
                nn.Conv2d(
                    channels if i == 0 else width_out,
                    width_out,
                    kernel,
                    stride,
                    groups=1 if i == 0 else members,
                )
            )
            convs += [nn.BatchNorm2d(width_out), nn.LeakyReLU(slope)]
            if dropout > 0:
                convs.append(nn.Dropout(dropout))
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            if min(height, width) < 1:
                raise ValueError(f"images of shape {obs_shape} are too small for these conv layers: {layers}")
        self.convs = nn.Sequential(*convs).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.head = EnsembleMLP(members, CNN_FILTERS * height * width, hidden, slope, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x.contiguous(memory_format=torch.channels_last))  # (B, 16 M, h, w)
        y = y.reshape(len(x), self.members, -1).transpose(0, 1)  # (M, B, 16 h w)
        return self.head.net(y).squeeze(-1)

    def weight_norms(self) -> torch.Tensor:
        """Sum of squared weights of each member, ``(M,)`` (for the L2 penalty)."""
        return _weight_norms(self, self.members)


def _weight_norms(net: nn.Module, members: int) -> torch.Tensor:
    """Per member, the sum of squared weights of its linear and conv layers (a layer's
    weight leads with the member: ``(M, in, out)``, or ``(16 M, ...)`` output channels)."""
    norms = [
        m.weight.pow(2).reshape(members, -1).sum(1)
        for m in net.modules()
        if isinstance(m, (EnsembleLinear, nn.Conv2d))
    ]
    return torch.stack(norms).sum(0)


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
        cfg = self.config
        self.image = len(self.obs_shape) == 3
        if self.image and cfg.use_actions:
            raise ValueError(
                "a reward model on images takes observations only (the paper's Atari setting): "
                "set use_actions=False"
            )
        self.in_dim = self.obs_dim + (action_features(action_space) if cfg.use_actions else 0)
        generator_state = torch.get_rng_state()
        torch.manual_seed(seed)
        self.net: EnsembleMLP | EnsembleCNN
        if self.image:
            layers = cnn_layers(cfg.cnn, min(self.obs_shape[1:]))
            self.net = EnsembleCNN(
                cfg.ensemble_size, self.obs_shape, layers, cfg.hidden_sizes, cfg.leaky_slope, cfg.dropout
            )
        else:
            self.net = EnsembleMLP(
                cfg.ensemble_size, self.in_dim, cfg.hidden_sizes, cfg.leaky_slope, cfg.dropout
            )
        torch.set_rng_state(generator_state)  # building a model must not disturb the caller's RNG
        self.net.eval()
        norm_width = 1 if self.image else self.in_dim  # images: one statistic over all pixels
        self.input_mean = np.zeros(norm_width, dtype=np.float32)
        self.input_std = np.ones(norm_width, dtype=np.float32)
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
        """Unnormalised inputs from ``obs (B, *obs_shape)`` and ``actions``: ``(B, in_dim)``
        float32; for images the observations themselves, ``(B, C, H, W)`` (uint8 stays uint8)."""
        if self.image:
            return np.asarray(obs).reshape(len(obs), *self.obs_shape)
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

    def inputs(self, features: torch.Tensor) -> torch.Tensor:
        """The network's input: ``features`` (a batch, any dtype) normalised, float32."""
        mean, std = torch.from_numpy(self.input_mean), torch.from_numpy(self.input_std)
        return (features.float() - mean) / std

    def fit_input_normalization(self, features: np.ndarray | list[np.ndarray]) -> None:
        """Set the input statistics from unnormalised features: one array ``(B, ...)`` or a
        list of them (e.g. one per clip)."""
        parts = features if isinstance(features, list) else [features]
        if self.image:
            count = sum(p.size for p in parts)
            total = sum(float(p.sum(dtype=np.float64)) for p in parts)
            mean = total / count
            var = sum(float(np.square(p - mean, dtype=np.float64).sum()) for p in parts) / count
            self.input_mean = np.array([mean], dtype=np.float32)
            self.input_std = np.array([math.sqrt(var) if var > 1e-12 else 1.0], dtype=np.float32)
            return
        flat = np.concatenate(parts)
        self.input_mean = flat.mean(axis=0).astype(np.float32)
        std = flat.std(axis=0)
        # one-hot columns and constant observations keep a unit scale
        self.input_std = np.where(std > 1e-6, std, 1.0).astype(np.float32)

    # ----------------------------------------------------------------- outputs
    FORWARD_CHUNK = 1024
    """images per forward pass when predicting (bounds the conv layers' memory)"""

    def member_rewards(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) reward of every member, ``(M, B)`` float32."""
        return self._members_from_features(self.features(obs, actions))

    def _members_from_features(self, features: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(features))
        chunk = self.FORWARD_CHUNK if self.image else max(1, len(x))
        with torch.inference_mode():
            outs = [self.net(self.inputs(x[i : i + chunk])) for i in range(0, len(x), chunk)]
        return torch.cat(outs, dim=1).numpy() if outs else np.zeros((self.ensemble_size, 0), np.float32)

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
