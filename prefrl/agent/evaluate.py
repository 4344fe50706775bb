"""Evaluation: true returns of a policy on fresh episodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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


class Actor(Protocol):
    """What :func:`evaluate_both` needs of an agent (:class:`prefrl.agent.ppo.PPOAgent` is one)."""

    def act(
        self, obs: np.ndarray, deterministic: bool = True, rng: np.random.Generator | None = None
    ) -> np.ndarray: ...


def evaluate_both(
    agent: Actor,
    env_id: str,
    episodes: int = 10,
    *,
    seed: int = 10_000,
    fixed_length: bool | int = False,
) -> tuple[list[float], list[float]]:
    """True returns of the deterministic policy (the most likely action) and of the
    stochastic one (actions sampled as in training), on the same ``episodes`` starts.

    The stochastic policy samples with a generator of its own, seeded with ``seed``, so
    evaluating leaves the agent's training draws as they were.
    """
    deterministic = evaluate(agent.act, env_id, episodes, seed=seed, fixed_length=fixed_length)
    rng = np.random.default_rng(seed)
    stochastic = evaluate(
        lambda obs: agent.act(obs, deterministic=False, rng=rng),
        env_id,
        episodes,
        seed=seed,
        fixed_length=fixed_length,
    )
    return deterministic, stochastic


def evaluation_warning(
    steps: int, rollout: int, num_evals: int, eval_episodes: int, horizon: int | None
) -> str | None:
    """A warning when a run's evaluations may take more env steps than its ``steps`` of
    training (a short run of long episodes: Atari's fixed length is 27,000 steps), else
    None. A run evaluates ``num_evals`` times, at most once per ``rollout``, each time
    :func:`evaluate_both` on ``eval_episodes`` episodes of up to ``horizon`` steps."""
    if horizon is None:
        return None
    evaluations = min(num_evals, -(-steps // rollout))
    cost = evaluations * 2 * eval_episodes * horizon
    if cost <= steps:
        return None
    return (
        f"the policy's {evaluations} evaluation(s) may take up to {cost:,} env steps "
        f"({2 * eval_episodes} episodes of up to {horizon:,} steps each), {cost / steps:,.1f} times "
        f"the {steps:,} of training; --eval-episodes and --num-evals make them fewer"
    )
