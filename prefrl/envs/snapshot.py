"""Cheap simulator snapshots, so any stretch of behaviour can be re-rendered later.

A snapshot is a flat ``float64`` numpy array (plain data: it pickles, crosses process
boundaries and fits in the preference store). Capturing one costs a few microseconds,
so the agent takes one at every step; frames are only rendered for the clips someone
will look at, by restoring the snapshot into a render env and calling ``render()``.

Each env family knows what its renderer reads:

- classic control: the ``state`` vector (plus ``last_u`` for Pendulum's torque arrow);
- MuJoCo: ``qpos``, ``qvel`` and actuator activations, followed by ``mj_forward``.

Atari (ALE ``cloneState``) is a later family; it registers a :class:`Snapshotter` here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.errors import EnvError


class Snapshotter(ABC):
    """Captures and restores the part of an env's state that its renderer reads."""

    @abstractmethod
    def capture(self, env: gym.Env) -> np.ndarray:
        """Return the current state of ``env`` as a 1-D float64 array."""

    @abstractmethod
    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        """Put ``env`` (same env id, any instance) into the state ``snapshot`` describes."""


class ClassicControlSnapshotter(Snapshotter):
    """``env.unwrapped.state``; Pendulum also keeps the last torque, which it draws."""

    def __init__(self, env: gym.Env):
        from gymnasium.envs.classic_control.pendulum import PendulumEnv

        self.has_last_u = isinstance(env.unwrapped, PendulumEnv)

    def capture(self, env: gym.Env) -> np.ndarray:
        inner: Any = env.unwrapped
        state = np.asarray(inner.state, dtype=np.float64).ravel()
        if not self.has_last_u:
            return state.copy()
        last_u = np.nan if inner.last_u is None else float(np.asarray(inner.last_u).ravel()[0])
        return np.append(state, last_u)

    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        inner: Any = env.unwrapped
        snapshot = np.asarray(snapshot, dtype=np.float64)
        if self.has_last_u:
            last_u = float(snapshot[-1])
            inner.last_u = None if math.isnan(last_u) else last_u
            snapshot = snapshot[:-1]
        inner.state = snapshot.copy()


class MujocoSnapshotter(Snapshotter):
    """``qpos``, ``qvel`` and ``act`` of the MjData; restoring runs ``mj_forward``."""

    def __init__(self, env: gym.Env):
        data = env.unwrapped.data  # type: ignore[attr-defined]
        self.nq, self.nv = data.qpos.size, data.qvel.size

    def capture(self, env: gym.Env) -> np.ndarray:
        data = env.unwrapped.data  # type: ignore[attr-defined]
        return np.concatenate([data.qpos, data.qvel, data.act])

    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        import mujoco

        inner: Any = env.unwrapped
        nq, nv = self.nq, self.nv
        inner.data.qpos[:] = snapshot[:nq]
        inner.data.qvel[:] = snapshot[nq : nq + nv]
        inner.data.act[:] = snapshot[nq + nv :]
        mujoco.mj_forward(inner.model, inner.data)


def env_family(env: gym.Env) -> str:
    """The family of ``env``: ``"classic_control"``, ``"mujoco"``, ``"atari"`` or ``"other"``."""
    module = type(env.unwrapped).__module__
    if module.startswith("gymnasium.envs.classic_control"):
        return "classic_control"
    if module.startswith("gymnasium.envs.mujoco"):
        return "mujoco"
    if module.startswith("ale_py"):
        return "atari"
    return "other"


def snapshotter_for(env: gym.Env) -> Snapshotter:
    """The :class:`Snapshotter` for ``env``'s family.

    Raises:
        EnvError: the family has no snapshot support, so its clips cannot be re-rendered.
    """
    family = env_family(env)
    if family == "classic_control":
        return ClassicControlSnapshotter(env)
    if family == "mujoco":
        return MujocoSnapshotter(env)
    raise EnvError(
        f"prefrl cannot snapshot {type(env.unwrapped).__name__} ({family} family), so its clips "
        "cannot be re-rendered for a human. Use a synthetic oracle (which needs no video), "
        "or add a Snapshotter for this family in prefrl/envs/snapshot.py."
    )
