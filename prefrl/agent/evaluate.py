"""Evaluation: true returns of a policy on fresh episodes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prefrl.envs.make import make_env
from prefrl.envs.vector import VecEnv


def evaluate(
    act: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    episodes: int = 10,
    *,
    seed: int = 10_000,
    fixed_length: bool | int = False,
) -> list[float]:
    """True return of each of ``episodes`` episodes, run side by side.

    ``act(obs[B, ...]) -> actions[B, ...]`` is called once per step for all unfinished
    episodes (e.g. ``agent.act`` for the deterministic policy). Episode ``i`` is seeded
    ``seed + i``, so two policies evaluated with the same seed face the same starts.
    """
    envs = VecEnv([lambda: make_env(env_id, fixed_length=fixed_length)] * episodes)
    obs = envs.reset(seed=seed)
    returns: list[float | None] = [None] * episodes
    while any(r is None for r in returns):
        obs = envs.step(act(obs)).obs
        for episode in envs.pop_finished():
            if returns[episode.env_index] is None:
                returns[episode.env_index] = episode.true_return
    envs.close()
    return [float(r) for r in returns if r is not None]
