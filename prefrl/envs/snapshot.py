"""Cheap simulator snapshots, so any stretch of behaviour can be re-rendered later.

A snapshot is a flat ``float64`` numpy array (plain data: it pickles, crosses process
boundaries and fits in the preference store). Capturing one costs a few microseconds,
so the agent takes one at every step; frames are only rendered for the clips someone
will look at, by restoring the snapshot into a render env and calling ``render()``.

Each env family knows what its renderer reads:

- classic control: the ``state`` vector (plus ``last_u`` for Pendulum's torque arrow);
- MuJoCo: ``qpos``, ``qvel`` and actuator activations, followed by ``mj_forward``;
- Atari: the serialised ALE state before the step's last frame, with that frame's action
  (see :mod:`prefrl.envs.atari`);
- MinAtar: the observation's object channels (what is drawn; the game cannot be resumed
  from it);
- toy text grids (FrozenLake, CliffWalking, Taxi): the state index ``s``, the last action
  (the agent is drawn facing it) and Taxi's orientation.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.errors import EnvError

NO_VIDEO_ORACLE = "Use a synthetic oracle (which needs no video)"
"""the advice on an env whose clips cannot be shown (replaced where clips are shown to no one)"""


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


class AtariSnapshotter(Snapshotter):
    """The ALE state (with its RNG) before a step's last frame, and the frame's action.

    Layout: ``[n_bytes, action, state bytes...]``, the bytes zero-padded and read as
    float64 (only ever copied, never computed with). Serialised states differ in length
    by a few bytes from step to step, so the width is fixed at the first capture with room
    to spare: every snapshot of one vector of envs has the same shape.
    """

    HEADER = 2
    SLACK_BYTES = 2048

    def __init__(self, env: gym.Env):
        self.width: int | None = None  # float64 values per snapshot

    @staticmethod
    def _frames(env: gym.Env) -> Any:
        from prefrl.envs.atari import find_atari_frames

        frames = find_atari_frames(env)
        if frames is None:
            raise EnvError(
                "this Atari env was not built by prefrl.make_env (no AtariFrames wrapper), so its "
                "steps cannot be re-rendered; build it with prefrl.make_env(env_id)"
            )
        return frames

    def capture(self, env: gym.Env) -> np.ndarray:
        state, action = self._frames(env).replay_point()
        if state is None:
            raise EnvError("an Atari env has no snapshot before its first reset")
        raw = state.__getstate__()
        if self.width is None:
            self.width = self.HEADER + -(-(len(raw) + self.SLACK_BYTES) // 8)
        capacity = (self.width - self.HEADER) * 8
        if len(raw) > capacity:
            raise EnvError(
                f"an ALE state of {len(raw)} bytes does not fit the {capacity} bytes this run's "
                "snapshots were sized for"
            )
        out = np.zeros(self.width, dtype=np.float64)
        out[0], out[1] = len(raw), action
        out[self.HEADER :].view(np.uint8)[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        return out

    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        import ale_py

        snapshot = np.ascontiguousarray(snapshot, dtype=np.float64)
        n_bytes, action = int(snapshot[0]), int(snapshot[1])
        raw = snapshot[self.HEADER :].view(np.uint8)[:n_bytes].tobytes()
        self._frames(env).replay(ale_py.ALEState(raw), action)


class MinAtarSnapshotter(Snapshotter):
    """The object channels a MinAtar step shows, flattened."""

    def __init__(self, env: gym.Env):
        self.shape = env.unwrapped.shown.shape  # type: ignore[attr-defined]

    def capture(self, env: gym.Env) -> np.ndarray:
        return env.unwrapped.shown.astype(np.float64).ravel()  # type: ignore[attr-defined]

    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        inner: Any = env.unwrapped
        inner.shown = np.asarray(snapshot).reshape(self.shape).astype(np.uint8)


class ToyTextGridSnapshotter(Snapshotter):
    """A grid world's state index ``s``, ``lastaction`` and (Taxi) ``taxi_orientation``;
    ``NaN`` stands for None or an attribute the env does not have."""

    FIELDS = ("s", "lastaction", "taxi_orientation")

    def capture(self, env: gym.Env) -> np.ndarray:
        inner = env.unwrapped
        values = (getattr(inner, name, None) for name in self.FIELDS)
        return np.array([np.nan if v is None else float(v) for v in values])

    def restore(self, env: gym.Env, snapshot: np.ndarray) -> None:
        inner = env.unwrapped
        for name, value in zip(self.FIELDS, np.asarray(snapshot, dtype=np.float64), strict=True):
            if hasattr(inner, name):
                setattr(inner, name, None if math.isnan(value) else int(value))


def env_family(env: gym.Env) -> str:
    """The family of ``env``: ``"classic_control"``, ``"mujoco"``, ``"atari"``, ``"minatar"``,
    ``"toy_text"`` (the grid worlds with a state index) or ``"other"``."""
    module = type(env.unwrapped).__module__
    if module.startswith("gymnasium.envs.toy_text"):
        from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv

        if isinstance(env.unwrapped, (CliffWalkingEnv, FrozenLakeEnv, TaxiEnv)):
            return "toy_text"
    if module.startswith("gymnasium.envs.classic_control"):
        return "classic_control"
    if module.startswith("gymnasium.envs.mujoco"):
        return "mujoco"
    if module.startswith("ale_py"):
        return "atari"
    if module == "prefrl.envs.minatar":
        return "minatar"
    return "other"


def can_snapshot(env: gym.Env) -> bool:
    """Whether :func:`snapshotter_for` has a :class:`Snapshotter` for ``env``."""
    try:
        snapshotter_for(env)
    except EnvError:
        return False
    return True


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
    if family == "atari":
        from prefrl.envs.atari import find_atari_frames

        if find_atari_frames(env) is None:
            raise EnvError(
                f"prefrl snapshots an Atari env through the frames prefrl.make_env builds for it, and "
                f"this {type(env.unwrapped).__name__} has none (RAM observations, or built elsewhere), so "
                f"its clips cannot be re-rendered for a human. {NO_VIDEO_ORACLE}, or the game's pixel "
                "observations (the default)"
            )
        return AtariSnapshotter(env)
    if family == "minatar":
        return MinAtarSnapshotter(env)
    if family == "toy_text":
        return ToyTextGridSnapshotter()
    raise EnvError(
        f"prefrl cannot snapshot {type(env.unwrapped).__name__} ({family} family), so its clips "
        f"cannot be re-rendered for a human. {NO_VIDEO_ORACLE}, "
        "or add a Snapshotter for this family in prefrl/envs/snapshot.py."
    )
