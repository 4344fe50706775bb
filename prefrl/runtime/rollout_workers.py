"""The agent's envs spread over Ray actors (``prefrl train --backend ray --workers N``).

:class:`RolloutWorkers` holds the run's ``num_envs`` envs in N rollout-worker actors, a
share each. For every PPO rollout the agent sends them, once (``ray.put``), what its
policy needs to act (:meth:`~prefrl.agent.ppo.PPOAgent.acting_state`: the network's
weights and the observation statistics); each worker acts in its envs with that copy
for the rollout's ``num_steps`` steps, snapshots included, and sends back its part of
the rollout. One round trip per rollout, not per step: the workers step at once, each
on its own CPU, while the agent waits. The agent joins the parts
(:meth:`~prefrl.agent.ppo.Rollout.of_envs`) and learns from them as from its own.

Env ``i`` of the run is seeded ``seed + i`` as in the agent; each worker samples its
actions from a generator of its own, so a run with workers takes other actions than
one without.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.agent.ppo import PPOAgent, PPOConfig, Rollout
from prefrl.envs.vector import Episode
from prefrl.tasks import trust_task_file, trusted_task_files

WORKER_CPUS = 1
"""CPUs each rollout worker asks of the cluster"""


class RolloutWorker:
    """A Ray actor's body: the run's envs ``first`` to ``first + count - 1`` and a PPO
    agent that acts in them with the copy of the run's policy it is sent."""

    def __init__(
        self,
        config: dict[str, Any],
        ppo: PPOConfig,
        first: int,
        count: int,
        seed: int,
        capture: bool,
        trusted: list[str],
    ):
        import torch

        from prefrl.envs.make import make_env
        from prefrl.envs.vector import VecEnv
        from prefrl.runtime.config import TrainConfig

        torch.set_num_threads(1)
        trust_task_file(*trusted)  # the task files the run trusts (a worker has not its environment)
        cfg = TrainConfig.from_dict(config)  # registers the run's task env, if any
        make = lambda: make_env(cfg.env_id, fixed_length=cfg.fixed_length or False)  # noqa: E731
        envs = VecEnv([make] * count, capture_snapshots=capture)
        # seeded seed + first: its env j is the run's env first + j, seeded as in the agent
        self.agent = PPOAgent(
            envs, dataclasses.replace(ppo, num_envs=count), total_steps=1, seed=seed + first
        )
        self.first = first

    def spaces(self) -> tuple[gym.Space[Any], gym.Space[Any]]:
        return self.agent.envs.observation_space, self.agent.envs.action_space

    def reset(self, seed: int | None) -> np.ndarray:
        return self.agent.reset_envs(None if seed is None else seed + self.first)

    def collect(self, acting_state: dict[str, Any], capture_snapshots: bool) -> tuple[Rollout, list[Episode]]:
        self.agent.load_acting_state(acting_state)
        rollout = self.agent.collect(capture_snapshots)
        episodes = [
            Episode(e.env_index + self.first, e.true_return, e.length) for _, e in self.agent.episodes
        ]
        self.agent.episodes.clear()
        return rollout, episodes

    def close(self) -> None:
        self.agent.envs.close()


class RolloutWorkers:
    """The run's ``ppo.num_envs`` envs spread over ``workers`` actors (as even as can be):
    a :class:`~prefrl.agent.ppo.RolloutCollector` for :class:`~prefrl.agent.ppo.PPOAgent`.

    Must be made where Ray is initialised (inside the agent's actor of the ray backend).
    The workers are owned by the process that makes them: they end with it.
    """

    def __init__(
        self, config: dict[str, Any], ppo: PPOConfig, workers: int, *, seed: int, capture_snapshots: bool
    ):
        import ray

        self.num_envs = ppo.num_envs
        if not 1 <= workers <= self.num_envs:
            raise ValueError(f"workers must be 1 to num_envs={self.num_envs}, not {workers}")
        self.ray = ray
        counts = [len(part) for part in np.array_split(np.arange(self.num_envs), workers)]
        firsts = np.cumsum([0, *counts[:-1]])
        actor: Any = ray.remote(num_cpus=WORKER_CPUS, scheduling_strategy="SPREAD")(RolloutWorker)
        trusted = trusted_task_files()
        self.workers: list[Any] = [
            actor.remote(config, ppo, int(first), count, seed, capture_snapshots, trusted)
            for first, count in zip(firsts, counts, strict=True)
        ]
        self.observation_space, self.action_space = ray.get(self.workers[0].spaces.remote())

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode in every env (env ``i`` seeded ``seed + i``); their observations."""
        return np.concatenate(self.ray.get([w.reset.remote(seed) for w in self.workers]))

    def collect_rollout(
        self, acting_state: dict[str, Any], capture_snapshots: bool
    ) -> tuple[Rollout, list[Episode]]:
        state = self.ray.put(acting_state)  # once, read by every worker
        parts = self.ray.get([w.collect.remote(state, capture_snapshots) for w in self.workers])
        return Rollout.of_envs([rollout for rollout, _ in parts]), [
            e for _, episodes in parts for e in episodes
        ]

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
