"""Proximal Policy Optimization (Schulman et al. 2017), reading top to bottom like CleanRL.

seed -> networks -> rollout (``collect``) -> rewards from a reward source -> reward
scaling -> GAE -> minibatch epochs (``train``). The agent never reads the env's reward:
``train`` takes a :class:`~prefrl.interfaces.RewardSource`, which for baselines
returns the true reward and in preference runs returns the learned one.

Names follow the paper and CleanRL (``clip_coef``, ``ent_coef``, ``gae_lambda``;
``b_`` for batch, ``mb_`` for minibatch; ``losses/...`` and ``charts/...`` log keys).

Flat observations get MLPs that act in numpy on the CPU; image observations (uint8
``(C, H, W)``) a CNN (:mod:`prefrl.agent.cnn`) that acts and learns in torch on
``config.device``, from rollouts that keep the images as uint8 (:func:`build_policy`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prefrl.agent.cnn import CnnActorCritic, CnnKind, TorchActor
from prefrl.agent.normalize import ObsNormalizer, RewardScaler
from prefrl.agent.policies import ActorCritic, NumpyActor
from prefrl.envs.make import is_image_space
from prefrl.envs.vector import Episode, VecEnv
from prefrl.errors import ConfigError
from prefrl.interfaces import RewardSource
from prefrl.utils.checkpoint import load_checkpoint, save_checkpoint
from prefrl.utils.device import torch_device
from prefrl.utils.settings import override


@dataclass
class PPOConfig:
    """PPO hyperparameters (per-env defaults: :mod:`prefrl.agent.hyperparams`)."""

    num_envs: int = field(default=8, metadata={"min": 1})
    """number of envs stepped together"""
    num_steps: int = field(default=128, metadata={"min": 1})
    """steps per env in each rollout (a rollout is num_envs * num_steps transitions)"""
    learning_rate: float = field(default=3e-4, metadata={"above": 0})
    """Adam learning rate"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over the run"""
    gamma: float = field(default=0.99, metadata={"min": 0, "max": 1})
    """discount factor"""
    gae_lambda: float = field(default=0.95, metadata={"min": 0, "max": 1})
    """lambda of generalised advantage estimation"""
    minibatch_size: int = field(default=64, metadata={"min": 1})
    """transitions per gradient step"""
    update_epochs: int = field(default=10, metadata={"min": 1})
    """passes over each rollout"""
    norm_adv: bool = True
    """normalise advantages within each minibatch"""
    clip_coef: float = field(default=0.2, metadata={"min": 0})
    """surrogate clipping coefficient"""
    anneal_clip: bool = False
    """decay clip_coef linearly to 0 over the run"""
    clip_vloss: bool = False
    """clip the value loss like the surrogate (CleanRL's default; SB3's is off)"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = field(default=0.5, metadata={"min": 0})
    """value loss coefficient"""
    max_grad_norm: float = field(default=0.5, metadata={"above": 0})
    """gradient clipping norm"""
    target_kl: float | None = field(default=None, metadata={"above": 0})
    """stop the epochs of an update early when the approximate KL exceeds this"""
    norm_obs: bool = True
    """normalise observations with running statistics"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return"""
    clip_obs: float = field(default=10.0, metadata={"above": 0})
    """clip normalised observations to +-clip_obs"""
    clip_reward: float = field(default=10.0, metadata={"above": 0})
    """clip scaled rewards to +-clip_reward"""
    hidden_sizes: tuple[int, ...] = field(default=(64, 64), metadata={"min": 1})
    """hidden layer widths of the actor and of the critic"""
    activation: Literal["tanh", "relu"] = "tanh"
    """tanh or relu"""
    log_std_init: float = 0.0
    """initial log standard deviation of Gaussian actions"""
    noise_beta: float = field(default=0.0, metadata={"min": 0, "max": 2})
    """colour of the Gaussian action noise in time, power spectrum 1/f^beta: 0 white (each step its own), 1 pink, 2 red (prefrl.agent.noise)"""
    ortho_init: bool = True
    """orthogonal weight initialisation"""
    cnn: CnnKind = "auto"
    """CNN for image observations: nature (Mnih et al. 2015), small (MinAtar's), or auto (nature from 36x36 pixels up)"""
    channels_last: bool = True
    """CNN convolutions in channels-last memory order (oneDNN's layout on CPUs)"""
    device: str = "cpu"
    """where CNN policies act and learn: cpu, cuda or cuda:N (MLP policies always act and learn on the CPU)"""

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with ``changes`` applied and checked (ConfigError names the first bad one)."""
        return override(self, changes, what="PPO setting")


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016).

    Args:
        rewards: ``(T, N)`` reward of step t (for truncated episodes already including
            ``gamma * V(final_obs)``, the bootstrap).
        values: ``(T, N)`` V(obs_t).
        dones: ``(T, N)`` the episode ended after step t.
        last_values: ``(N,)`` V of the observation after the last step.

    Returns:
        ``(advantages, returns)``, both ``(T, N)``, with ``returns = advantages + values``.
    """
    num_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float32)
    last_gae = np.zeros_like(last_values, dtype=np.float32)
    for t in reversed(range(num_steps)):
        next_values = last_values if t == num_steps - 1 else values[t + 1]
        next_nonterminal = 1.0 - dones[t].astype(np.float32)
        delta = rewards[t] + gamma * next_values * next_nonterminal - values[t]
        last_gae = delta + gamma * gae_lambda * next_nonterminal * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


@dataclass
class Rollout:
    """Transitions of one rollout, ``(T, N, ...)`` = (num_steps, num_envs, ...).

    ``obs``, ``actions`` and ``true_rewards`` are what reward models and clips use
    (raw observations, actions as sent to the env); the rest is PPO's own bookkeeping.
    ``obs[t]`` is the observation *before* ``actions[t]``; ``snapshots[t]`` is the
    simulator state that renders ``obs[t]``; ``episode_starts[t]`` marks ``obs[t]`` as
    the first of an episode.
    """

    obs: np.ndarray
    actions: np.ndarray
    true_rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_starts: np.ndarray
    snapshots: np.ndarray | None
    policy_obs: np.ndarray  # what the policy saw: normalised flat obs; for images ``obs`` itself (uint8)
    policy_actions: np.ndarray  # sampled actions before clipping to the action space
    log_probs: np.ndarray
    values: np.ndarray
    bootstrap_values: np.ndarray  # V(final obs) where an episode was truncated, else 0
    last_values: np.ndarray  # (N,) V(obs after the last step)
    env_steps: int  # the agent's env step count at the end of this rollout

    @property
    def dones(self) -> np.ndarray:
        return self.terminated | self.truncated

    @staticmethod
    def of_envs(parts: list[Rollout]) -> Rollout:
        """One rollout of the envs of ``parts`` side by side (``N`` the sum of theirs).

        Snapshots narrower than the widest are zero-padded: a variable-width snapshot
        (``AtariSnapshotter``) leads with its length, so the padding is never read.
        """
        fields = {}
        for f in dataclasses.fields(Rollout):
            arrays = [getattr(part, f.name) for part in parts]
            if f.name == "env_steps":
                fields[f.name] = max(arrays)
            elif f.name == "last_values":
                fields[f.name] = np.concatenate(arrays)
            elif f.name == "snapshots" and arrays[0] is not None:
                width = max(a.shape[2] for a in arrays)
                fields[f.name] = np.concatenate(
                    [np.pad(a, ((0, 0), (0, 0), (0, width - a.shape[2]))) for a in arrays], axis=1
                )
            elif arrays[0] is None:
                fields[f.name] = None
            else:
                fields[f.name] = np.concatenate(arrays, axis=1)
        return Rollout(**fields)


@runtime_checkable
class RolloutCollector(Protocol):
    """Envs that collect a whole rollout themselves with a copy of the agent's policy
    (:class:`prefrl.runtime.rollout_workers.RolloutWorkers`), instead of being stepped."""

    num_envs: int
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]

    def reset(self, seed: int | None = None) -> np.ndarray: ...

    def close(self) -> None: ...

    def collect_rollout(
        self, acting_state: dict[str, Any], capture_snapshots: bool
    ) -> tuple[Rollout, list[Episode]]:
        """``num_steps`` steps of every env acting as ``acting_state`` says
        (:meth:`PPOAgent.acting_state`), and the episodes that ended in them."""
        ...


Policy = ActorCritic | CnnActorCritic
Actor = NumpyActor | TorchActor


def build_policy(
    config: PPOConfig, observation_space: gym.Space, action_space: gym.Space, seed: int
) -> tuple[Policy, Actor]:
    """The actor-critic network for these spaces and the actor that acts with it.

    Image observations (:func:`~prefrl.envs.make.is_image_space`) get a
    :class:`~prefrl.agent.cnn.CnnActorCritic` on ``config.device``, acted with by a
    :class:`~prefrl.agent.cnn.TorchActor`; any other Box an MLP
    :class:`~prefrl.agent.policies.ActorCritic` on the CPU, acted with in numpy by a
    :class:`~prefrl.agent.policies.NumpyActor` that shares its parameters.

    Raises:
        ConfigError: ``config.device`` is not on this machine, or ``config.cnn`` does not
            fit the image size.
    """
    device = torch_device(config.device, shown=f"device={config.device!r}")
    if config.noise_beta and (
        is_image_space(observation_space) or not isinstance(action_space, gym.spaces.Box)
    ):
        raise ConfigError(
            f"noise_beta={config.noise_beta} colours Gaussian action noise, which only an MLP policy "
            f"with continuous actions has (this env: {action_space}, {observation_space.shape} observations); "
            "leave noise_beta at 0"
        )
    if is_image_space(observation_space):
        cnn = CnnActorCritic(observation_space, action_space, config.cnn, config.channels_last).to(device)
        return cnn, TorchActor(cnn, seed)
    obs_shape = observation_space.shape
    assert obs_shape is not None
    mlp = ActorCritic(
        int(np.prod(obs_shape)),
        action_space,
        config.hidden_sizes,
        config.activation,
        config.log_std_init,
        config.ortho_init,
    )
    return mlp, NumpyActor(mlp, seed, config.noise_beta)  # NumpyActor reads CPU memory: MLPs stay on the CPU


def obs_normalizer(config: PPOConfig, observation_space: gym.Space) -> ObsNormalizer:
    """The running observation normalisation for these observations; images get none (the
    CNN scales them by ``1 / high``), so theirs is a disabled one of no shape."""
    if is_image_space(observation_space):
        return ObsNormalizer((), config.clip_obs, enabled=False)
    obs_shape = observation_space.shape
    assert obs_shape is not None
    return ObsNormalizer(obs_shape, config.clip_obs, config.norm_obs)


class PPOAgent:
    """PPO acting in a :class:`~prefrl.envs.vector.VecEnv`, or learning from the
    rollouts a :class:`RolloutCollector` collects with copies of its policy.

    Args:
        envs: the vector of envs to act in (its reward is never used for learning).
        config: hyperparameters.
        total_steps: the run's env-step budget, for learning-rate and clip annealing.
        seed: seeds torch, the action sampling and the envs.
    """

    def __init__(self, envs: VecEnv | RolloutCollector, config: PPOConfig, total_steps: int, seed: int = 0):
        if config.num_envs != envs.num_envs:
            raise ValueError(f"config.num_envs={config.num_envs} but the VecEnv has {envs.num_envs}")
        self.envs = envs
        self.config = config
        self.total_steps = int(total_steps)
        self.seed = seed
        torch.manual_seed(seed)
        obs_shape = envs.observation_space.shape
        assert obs_shape is not None
        self.obs_dim = int(np.prod(obs_shape))
        self.action_space = envs.action_space
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self.image = is_image_space(envs.observation_space)
        self.policy, self.actor = build_policy(config, envs.observation_space, self.action_space, seed)
        self.device = next(self.policy.parameters()).device
        self._params = [p for p in self.policy.parameters() if p.requires_grad]
        # fused=True: one kernel for all parameters, ~3x faster than foreach on small nets
        self.optimizer = torch.optim.Adam(self._params, lr=config.learning_rate, eps=1e-5, fused=True)
        self.obs_norm = obs_normalizer(config, envs.observation_space)
        self.reward_scaler = RewardScaler(envs.num_envs, config.gamma, config.clip_reward, config.norm_reward)
        if not self.discrete:
            box = self.action_space
            assert isinstance(box, gym.spaces.Box)
            self._action_low, self._action_high = box.low, box.high
        self.env_steps = 0
        self.num_updates = 0
        self.episodes: list[tuple[int, Episode]] = []  # (env step at its end, episode)
        self.reset_envs(seed)

    def reset_envs(self, seed: int | None) -> np.ndarray:
        """Start a new episode in every env (env ``i`` seeded ``seed + i``); their observations."""
        self._next_obs = self.envs.reset(seed=seed)
        self._next_episode_start = np.ones(self.envs.num_envs, dtype=bool)
        return self._next_obs

    def acting_state(self) -> dict[str, Any]:
        """What a copy of this agent needs to act as it does (:meth:`load_acting_state`)."""
        return {"policy": _on_cpu(self.policy.state_dict()), "obs_norm": self.obs_norm.state_dict()}

    def load_acting_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.obs_norm.load_state_dict(state["obs_norm"])

    # ------------------------------------------------------------------ acting
    def act(
        self, obs: np.ndarray, deterministic: bool = True, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Env-ready actions for raw observations ``(B, *obs_shape)`` (no learning).

        ``deterministic``: the most likely action, else one sampled as in training, with
        ``rng`` (default: the generator training samples with).
        """
        x = self._policy_input(obs)
        actions = self.actor.mode(x) if deterministic else self.actor.sample(x, rng)[0]
        return self._to_env_actions(actions)

    def _policy_input(self, obs: np.ndarray) -> np.ndarray:
        """What the policy takes: images raw (uint8), anything else normalised and flat."""
        if self.image:
            return obs
        return self.obs_norm(obs.reshape(len(obs), -1))

    def _to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        if self.discrete:
            return actions
        return np.clip(actions, self._action_low, self._action_high)

    def collect(self, capture_snapshots: bool = False) -> Rollout:
        """Run ``num_steps`` steps in every env with the current policy."""
        if isinstance(self.envs, RolloutCollector):
            return self._collect_elsewhere(capture_snapshots)
        cfg, envs = self.config, self.envs
        T, N = cfg.num_steps, envs.num_envs
        obs_shape = self._next_obs.shape[1:]
        act_shape = () if self.discrete else self.action_space.shape
        obs = np.empty((T, N, *obs_shape), dtype=self._next_obs.dtype)
        image = self.image
        # Images: the policy reads the raw uint8 observations, so they are stored once.
        policy_obs = obs if image else np.empty((T, N, self.obs_dim), dtype=np.float32)
        policy_actions = np.empty((T, N, *act_shape), dtype=np.int64 if self.discrete else np.float32)  # type: ignore[misc]
        log_probs = np.empty((T, N), dtype=np.float32)
        values = np.empty((T, N), dtype=np.float32)
        true_rewards = np.empty((T, N), dtype=np.float32)
        terminated = np.empty((T, N), dtype=bool)
        truncated = np.empty((T, N), dtype=bool)
        episode_starts = np.empty((T, N), dtype=bool)
        bootstrap_values = np.zeros((T, N), dtype=np.float32)
        snapshots = None
        if capture_snapshots:
            first = envs.snapshots()
            snapshots = np.empty((T, *first.shape), dtype=np.float64)

        next_obs = self._next_obs
        actor, policy_input = self.actor, self._policy_input
        for t in range(T):
            obs[t] = next_obs
            episode_starts[t] = self._next_episode_start
            if snapshots is not None:
                snapshots[t] = envs.snapshots()
            x = policy_input(next_obs)
            if not image:
                policy_obs[t] = x
            a, log_probs[t], values[t] = actor.sample(x)
            policy_actions[t] = a
            step = envs.step(self._to_env_actions(a))
            true_rewards[t] = step.true_rewards
            terminated[t] = step.terminated
            truncated[t] = step.truncated
            if step.truncated.any():
                idx = np.flatnonzero(step.truncated)
                bootstrap_values[t, idx] = actor.value(policy_input(step.final_obs[idx]))
            self._next_episode_start = step.terminated | step.truncated
            next_obs = step.obs
        last_values = actor.value(policy_input(next_obs))
        self._next_obs = next_obs
        self.env_steps += T * N
        for episode in envs.pop_finished():
            self.episodes.append((self.env_steps, episode))
        # Statistics are refreshed once per rollout: cheaper than every step, same effect.
        self.obs_norm.update(obs.reshape(T * N, -1))
        actions = self._to_env_actions(policy_actions)
        return Rollout(
            obs=obs,
            actions=actions,
            true_rewards=true_rewards,
            terminated=terminated,
            truncated=truncated,
            episode_starts=episode_starts,
            snapshots=snapshots,
            policy_obs=policy_obs,
            policy_actions=policy_actions,
            log_probs=log_probs,
            values=values,
            bootstrap_values=bootstrap_values,
            last_values=last_values,
            env_steps=self.env_steps,
        )

    def _collect_elsewhere(self, capture_snapshots: bool) -> Rollout:
        """A rollout the envs collected with a copy of this policy; the bookkeeping of
        :meth:`collect` (steps, episodes, observation statistics) done here."""
        assert isinstance(self.envs, RolloutCollector)
        rollout, episodes = self.envs.collect_rollout(self.acting_state(), capture_snapshots)
        T, N = rollout.true_rewards.shape
        self.env_steps += T * N
        self.episodes += [(self.env_steps, episode) for episode in episodes]
        self.obs_norm.update(rollout.obs.reshape(T * N, -1))
        rollout.env_steps = self.env_steps
        return rollout

    # ---------------------------------------------------------------- learning
    def rewards_for(self, rollout: Rollout, reward_source: RewardSource) -> np.ndarray:
        """The reward source's rewards for a rollout, ``(T, N)`` float32."""
        T, N = rollout.true_rewards.shape
        flat = reward_source(
            rollout.obs.reshape(T * N, *rollout.obs.shape[2:]),
            rollout.actions.reshape(T * N, *rollout.actions.shape[2:]),
            rollout.true_rewards.reshape(T * N),
        )
        return np.asarray(flat, dtype=np.float32).reshape(T, N)

    def train(self, rollout: Rollout, reward_source: RewardSource) -> dict[str, float]:
        """One PPO update on ``rollout`` with rewards from ``reward_source``; returns log values."""
        cfg = self.config
        progress = min(1.0, self.env_steps / max(1, self.total_steps))
        lr = cfg.learning_rate * (1.0 - progress) if cfg.anneal_lr else cfg.learning_rate
        lr = max(lr, 1e-3 * cfg.learning_rate)  # never exactly 0 when resumed past the budget
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        clip_coef = cfg.clip_coef * (1.0 - progress) if cfg.anneal_clip else cfg.clip_coef
        clip_coef = max(clip_coef, 1e-3 * cfg.clip_coef)

        # Rewards: from the source, scaled, plus the bootstrap of truncated episodes.
        rewards = self.rewards_for(rollout, reward_source)
        scaled = self.reward_scaler(rewards, rollout.dones)
        scaled = scaled + cfg.gamma * rollout.bootstrap_values
        advantages, returns = compute_gae(
            scaled, rollout.values, rollout.dones, rollout.last_values, cfg.gamma, cfg.gae_lambda
        )

        # Flatten the batch (images stay uint8 until the network scales them), on the
        # policy's device (moving it there is a no-op on the CPU).
        dev = self.device
        b_obs = torch.from_numpy(rollout.policy_obs.reshape(-1, *rollout.policy_obs.shape[2:])).to(dev)
        b_actions = torch.from_numpy(
            rollout.policy_actions.reshape(-1, *rollout.policy_actions.shape[2:])
        ).to(dev)
        b_log_probs = torch.from_numpy(rollout.log_probs.reshape(-1)).to(dev)
        b_advantages = torch.from_numpy(advantages.reshape(-1)).to(dev)
        b_returns = torch.from_numpy(returns.reshape(-1)).to(dev)
        b_values = torch.from_numpy(rollout.values.reshape(-1)).to(dev)
        batch_size = b_obs.shape[0]
        mb_size = min(cfg.minibatch_size, batch_size)

        pg_losses, v_losses, entropies, approx_kls, clipfracs = [], [], [], [], []
        for _epoch in range(cfg.update_epochs):
            # Shuffle once per epoch; minibatches are then contiguous slices (views, no copies).
            perm = torch.randperm(batch_size).to(dev)
            e_obs, e_actions, e_log_probs = b_obs[perm], b_actions[perm], b_log_probs[perm]
            e_advantages, e_returns, e_values = b_advantages[perm], b_returns[perm], b_values[perm]
            for start in range(0, batch_size, mb_size):
                mb = slice(start, start + mb_size)
                if min(batch_size, start + mb_size) - start < 2:  # adv. normalisation needs 2
                    continue
                new_log_prob, entropy, new_value = self.policy.evaluate(e_obs[mb], e_actions[mb])
                log_ratio = new_log_prob - e_log_probs[mb]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    approx_kls.append(((ratio - 1) - log_ratio).mean())
                    clipfracs.append(((ratio - 1.0).abs() > clip_coef).float().mean())

                mb_adv = e_advantages[mb]
                if cfg.norm_adv:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
                ).mean()

                if cfg.clip_vloss:
                    v_unclipped = (new_value - e_returns[mb]).pow(2)
                    v_clipped = e_values[mb] + torch.clamp(new_value - e_values[mb], -clip_coef, clip_coef)
                    v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - e_returns[mb]).pow(2)).mean()
                else:
                    v_loss = 0.5 * (new_value - e_returns[mb]).pow(2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
                self.optimizer.step()
                pg_losses.append(pg_loss.detach())
                v_losses.append(v_loss.detach())
                entropies.append(entropy_loss.detach())
            if cfg.target_kl is not None and approx_kls and float(approx_kls[-1]) > cfg.target_kl:
                break
        self.num_updates += 1

        y_pred, y_true = rollout.values.reshape(-1), returns.reshape(-1)
        var_y = float(np.var(y_true))
        explained_var = float("nan") if var_y == 0 else 1.0 - float(np.var(y_true - y_pred)) / var_y
        mean = lambda xs: float(torch.stack(xs).mean()) if xs else float("nan")  # noqa: E731
        return {
            "charts/learning_rate": lr,
            "charts/reward_mean": float(rewards.mean()),
            "losses/policy_loss": mean(pg_losses),
            "losses/value_loss": mean(v_losses),
            "losses/entropy": mean(entropies),
            "losses/approx_kl": mean(approx_kls),
            "losses/clipfrac": mean(clipfracs),
            "losses/explained_variance": explained_var,
        }

    def learn(
        self,
        num_steps: int,
        reward_source: RewardSource,
        callback: Callable[[Rollout, dict[str, float]], None] | None = None,
        capture_snapshots: bool = False,
    ) -> None:
        """Collect and train until ``num_steps`` more env steps are done.

        ``callback(rollout, stats)`` runs after every update (logging, clip cutting, ...).
        """
        target = self.env_steps + num_steps
        while self.env_steps < target:
            rollout = self.collect(capture_snapshots=capture_snapshots)
            stats = self.train(rollout, reward_source)
            if callback is not None:
                callback(rollout, stats)

    def recent_returns(self, n: int = 10) -> list[float]:
        """True returns of the last ``n`` finished training episodes."""
        return [ep.true_return for _, ep in self.episodes[-n:]]

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "policy": _on_cpu(self.policy.state_dict()),
            "optimizer": _on_cpu(self.optimizer.state_dict()),
            "obs_norm": self.obs_norm.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
            "env_steps": self.env_steps,
            "num_updates": self.num_updates,
            "total_steps": self.total_steps,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.env_steps = int(state["env_steps"])
        self.num_updates = int(state["num_updates"])
        self.total_steps = int(state["total_steps"])
        torch.set_rng_state(state["torch_rng"])

    def save(self, path: str | Path) -> None:
        """Write a checkpoint (policy, optimiser, normalisation statistics, counters)."""
        save_checkpoint(self.state_dict(), path, "agent")

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (loading it never runs code from the file)."""
        self.load_state_dict(load_checkpoint(path, "agent"))


def _on_cpu(state: Any) -> Any:
    """``state`` (nested dicts and lists of tensors) with every tensor on the CPU, so that a
    checkpoint or a message of a GPU-trained agent loads on any machine."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {k: _on_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_on_cpu(v) for v in state)
    return state
