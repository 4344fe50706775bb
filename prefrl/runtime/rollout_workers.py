"""The agent's envs spread over Ray actors (``prefrl train --backend ray --workers N``).

:class:`RolloutWorkers` is a :class:`~prefrl.envs.vector.VecEnv` whose envs live in N
rollout-worker actors, each stepping its share as a ``VecEnv`` of its own: the agent
sends every worker its slice of the actions and gathers the steps, one round trip per
step with all workers stepping at once. Each worker takes its envs' snapshots right
after stepping and sends them with the step, so cutting clips costs no extra trip.

Env ``i`` is seeded ``seed + i`` as in a local ``VecEnv``: the same actions give the
same observations, rewards and snapshots whether the envs are local or spread.

A round trip per step, carrying each env's observation and snapshot, costs more than
stepping in the agent unless the envs are slow and the workers have cores of their own
(other machines'): measured in docs/ray.md.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.vector import Episode, VecEnv, VecStep

WORKER_CPUS = 1
"""CPUs each rollout worker asks of the cluster"""


class RolloutWorker:
    """A Ray actor's body: ``count`` envs of the run, stepped as one ``VecEnv``."""

    def __init__(self, config: dict[str, Any], count: int, capture_snapshots: bool):
        import torch

        from prefrl.envs.make import make_env
        from prefrl.runtime.config import TrainConfig

        torch.set_num_threads(1)
        cfg = TrainConfig.from_dict(config)  # registers the run's task env, if any
        make = lambda: make_env(cfg.env_id, fixed_length=cfg.fixed_length or False)  # noqa: E731
        self.envs = VecEnv([make] * count, capture_snapshots=capture_snapshots)
        self.capture = capture_snapshots

    def spaces(self) -> tuple[gym.Space[Any], gym.Space[Any]]:
        return self.envs.observation_space, self.envs.action_space

    def reset(self, seed: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        obs = self.envs.reset(seed)
        return obs, self._snapshots()

    def step(self, actions: np.ndarray) -> tuple[VecStep, np.ndarray | None, list[Episode]]:
        step = self.envs.step(actions)
        return step, self._snapshots(), self.envs.pop_finished()

    def close(self) -> None:
        self.envs.close()

    def _snapshots(self) -> np.ndarray | None:
        return self.envs.snapshots() if self.capture else None


class RolloutWorkers:
    """``num_envs`` envs of the run spread over ``workers`` actors (as even as can be).

    Must be made where Ray is initialised (inside the agent's actor of the ray backend).
    The workers are owned by the process that makes them: they end with it.
    """

    def __init__(
        self, config: dict[str, Any], num_envs: int, workers: int, *, capture_snapshots: bool = False
    ):
        import ray

        if not 1 <= workers <= num_envs:
            raise ValueError(f"workers must be 1 to num_envs={num_envs}, not {workers}")
        self.ray = ray
        self.num_envs = num_envs
        counts = [len(part) for part in np.array_split(np.arange(num_envs), workers)]
        self.offsets = np.cumsum([0, *counts])
        actor: Any = ray.remote(num_cpus=WORKER_CPUS, scheduling_strategy="SPREAD")(RolloutWorker)
        self.workers: list[Any] = [actor.remote(config, count, capture_snapshots) for count in counts]
        self.observation_space, self.action_space = ray.get(self.workers[0].spaces.remote())
        self.capture = capture_snapshots
        self._snapshots: np.ndarray | None = None
        self.width = 0  # of the snapshots, set at the first reset
        self.finished: list[Episode] = []

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env (env ``i`` gets ``seed + i``) and return observations ``(N, ...)``."""
        calls = [
            w.reset.remote(None if seed is None else seed + int(offset))
            for w, offset in zip(self.workers, self.offsets, strict=False)
        ]
        parts = self.ray.get(calls)
        if self.capture:
            self.width = max(p[1].shape[1] for p in parts)
            self._snapshots = self._join_snapshots([p[1] for p in parts])
        return np.concatenate([p[0] for p in parts])

    def step(self, actions: np.ndarray) -> VecStep:
        """Step every env with its action (``actions[i]``) and reset those that ended."""
        o = self.offsets
        parts = self.ray.get([w.step.remote(actions[o[i] : o[i + 1]]) for i, w in enumerate(self.workers)])
        for i, (_, _, episodes) in enumerate(parts):
            self.finished.extend(Episode(e.env_index + int(o[i]), e.true_return, e.length) for e in episodes)
        if self.capture:
            self._snapshots = self._join_snapshots([p[1] for p in parts])
        steps = [p[0] for p in parts]
        return VecStep(
            **{f.name: np.concatenate([getattr(s, f.name) for s in steps]) for f in fields(VecStep)}
        )

    def _join_snapshots(self, parts: list[np.ndarray]) -> np.ndarray:
        """One ``(N, width)`` array. An Atari snapshot's width is fixed by each worker's
        first state (``AtariSnapshotter``), so workers may differ by a value or two: the
        narrower ones are zero-padded, which its layout reads the same (a byte count
        leads)."""
        out = np.zeros((self.num_envs, self.width), dtype=np.float64)
        for part, start in zip(parts, self.offsets, strict=False):
            out[start : start + len(part), : part.shape[1]] = part
        return out

    def snapshots(self) -> np.ndarray:
        """Simulator state of every env now, ``(N, snapshot_size)`` float64."""
        if self._snapshots is None:
            raise RuntimeError("RolloutWorkers was built without capture_snapshots=True")
        return self._snapshots

    def pop_finished(self) -> list[Episode]:
        """Episodes finished since the last call."""
        done, self.finished = self.finished, []
        return done

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
