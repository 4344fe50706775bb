"""Atari from pixels, set up as in Christiano et al. 2017 (section 3.1.2, appendix A.2).

:class:`AtariFrames` turns an ALE env built with ``frameskip=1`` into what the agent and
the reward model see: frame-skip 4 with a max over the last two frames, 84x84 grayscale
(area interpolation), a stack of the last 4 frames, channels first: ``(4, 84, 84)``
uint8. Every reset takes one no-op frame plus 0-30 more (the no-op starts). Where a game
shows its score, and on BeamRider the enemy count, on Enduro the speed, distance and
cars-to-pass panel, the pixels are blacked out (:data:`MASKS`) before resizing, so the
agent cannot read the reward off the screen.

Game over must not tell the agent how it did either: in fixed-length episodes the game
restarts in place and the episode goes on (:class:`~prefrl.envs.wrappers.FixedLengthEpisodes`
with ``"restart"``), as the paper did ("we do not send life loss or episode end signals
to the agent").

Snapshots (:class:`AtariSnapshotter`) re-render a step in full colour: the ALE state
before the step's last frame (with the emulator's RNG) and that frame's action.
Restoring the state and emulating the one frame redraws exactly the screen the step
ended on (ALE's saved state does not hold the screen itself).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.errors import EnvError

SCREEN_SHAPE = (210, 160)
"""the Atari 2600 screen, rows x columns"""

DEFAULT_HORIZON = 27_000
"""agent steps of a fixed-length Atari episode: ALE's usual cap of 108,000 frames at frame-skip 4"""

Region = tuple[int, int, int, int]
"""``(top, bottom, left, right)`` screen pixels, bottom and right exclusive"""

MASKS: dict[str, tuple[Region, ...]] = {
    "Pong": ((0, 22, 0, 160),),  # both players' scores
    "Breakout": ((3, 17, 32, 84),),
    "BeamRider": ((5, 20, 56, 110), (30, 42, 14, 34)),  # score; enemies left in the sector
    "Enduro": ((158, 192, 44, 118),),  # the dashboard: distance, day and cars to pass
    "Qbert": ((4, 15, 30, 74),),
    "Seaquest": ((7, 19, 55, 106),),
    "SpaceInvaders": ((10, 22, 0, 68),),  # player 1's score (player 2's stays 0)
}
"""blacked-out regions per game (the ALE game name, e.g. ``"Pong"`` of ``ALE/Pong-v5``)"""


def game_name(env_id: str) -> str:
    """``"Pong"`` for ``"ALE/Pong-v5"`` and ``"PongNoFrameskip-v4"``."""
    name = env_id.split("/", 1)[1] if env_id.startswith("ALE/") else env_id
    name = name.split("-v", 1)[0]
    return name.removesuffix("NoFrameskip")


def is_atari_id(env_id: str) -> bool:
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


def area_weights(source: int, target: int) -> np.ndarray:
    """``(target, source)`` float32: output pixel i is the mean of the source pixels its
    interval ``[i * s, (i + 1) * s)`` covers (``s = source / target``), weighted by overlap."""
    scale = source / target
    weights = np.zeros((target, source), dtype=np.float64)
    for i in range(target):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(math.floor(lo), min(source, math.ceil(hi))):
            weights[i, j] = min(hi, j + 1) - max(lo, j)
    return (weights / scale).astype(np.float32)


class AreaResize:
    """Area interpolation of 2-D images, ``(rows, cols) -> (size, size)``.

    Each output pixel mixes a few neighbouring source pixels (:func:`area_weights`), so the
    resize is a handful of gathers and multiply-adds per axis: no matrix product, whose
    BLAS threads stall on a busy machine.
    """

    def __init__(self, shape: tuple[int, int], size: int):
        self.rows = self._taps(area_weights(shape[0], size))
        self.cols = self._taps(area_weights(shape[1], size))

    @staticmethod
    def _taps(weights: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(source index, weight)`` per tap, each ``(target,)``: tap k of output i is its
        k-th covered source pixel (weight 0 where it covers fewer)."""
        width = int((weights > 0).sum(axis=1).max())
        first = (weights > 0).argmax(axis=1)
        taps = []
        for k in range(width):
            index = np.minimum(first + k, weights.shape[1] - 1)
            taps.append((index, weights[np.arange(len(weights)), index] * (first + k < weights.shape[1])))
        return taps

    def __call__(self, image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32)
        rows = sum(x[index] * weight[:, None] for index, weight in self.rows)
        out = sum(rows[:, index] * weight[None, :] for index, weight in self.cols)
        return np.rint(out).astype(np.uint8)


class AtariFrames(gym.Wrapper):
    """The paper's Atari observations on an ALE env built with ``frameskip=1``.

    Args:
        env: ``gymnasium.make("ALE/...", frameskip=1, ...)``.
        frame_skip: emulator frames per agent step (the action is repeated).
        noop_max: at most this many extra no-op frames at every reset.
        screen_size: observations are ``screen_size`` x ``screen_size``.
        stack: frames per observation.
        masks: screen regions blacked out before resizing.
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        frame_skip: int = 4,
        noop_max: int = 30,
        screen_size: int = 84,
        stack: int = 4,
        masks: tuple[Region, ...] = (),
    ):
        super().__init__(env)
        inner: Any = env.unwrapped
        if getattr(inner, "_frameskip", 1) != 1:
            raise EnvError("AtariFrames skips frames itself: build the ALE env with frameskip=1")
        if frame_skip < 1 or stack < 1 or noop_max < 0:
            raise ValueError(
                f"frame_skip and stack must be >= 1, noop_max >= 0 ({frame_skip}, {stack}, {noop_max})"
            )
        self.ale = inner.ale
        self._action_set = list(inner._action_set)
        self.frame_skip = frame_skip
        self.noop_max = noop_max
        self.stack = stack
        self.masks = masks
        self._resize = AreaResize(SCREEN_SHAPE, screen_size)
        self._screens = np.zeros((2, *SCREEN_SHAPE), dtype=np.uint8)
        self._frames = np.zeros((stack, screen_size, screen_size), dtype=np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, self._frames.shape, np.uint8)
        # one frame per agent step: the game's 60 frames/s divided by the skip
        self.metadata = {**env.metadata, "render_fps": 60 / frame_skip}
        self._rng = np.random.default_rng()
        self._replay_state: Any = None  # ALE state before the last frame, and its action
        self._replay_action = 0

    # ------------------------------------------------------------------ frames
    def _frame(self) -> np.ndarray:
        """The processed frame of the last two screens grabbed."""
        screen = np.maximum(self._screens[0], self._screens[1])
        for top, bottom, left, right in self.masks:
            screen[top:bottom, left:right] = 0
        return self._resize(screen)

    def _push(self, frame: np.ndarray) -> np.ndarray:
        self._frames[:-1] = self._frames[1:]
        self._frames[-1] = frame
        return self._frames.copy()

    def _emulate(self, action: int, frames: int) -> tuple[float, bool, bool]:
        """``frames`` frames of ``action``, keeping the last two screens and the state
        before the last frame; returns ``(reward, terminated, truncated)``."""
        ale, ale_action = self.ale, self._action_set[action]
        total = 0.0
        self._screens[0] = 0  # a single frame is its own max
        for i in range(frames):
            if i == frames - 1:
                self._replay_state = ale.cloneState(include_rng=True)
                self._replay_action = action
            total += ale.act(ale_action)
            if i >= frames - 2:
                ale.getScreenGrayscale(self._screens[i - frames + 2])
            if ale.game_over(with_truncation=True):
                if i < frames - 1:  # ended early: the last screen is the one to keep
                    self._screens[0] = self._screens[1] = 0
                    ale.getScreenGrayscale(self._screens[1])
                # (the replay point is then an older frame's; a game that ended is reset
                # before its next snapshot is taken, and the reset sets a new one)
                break
        return total, ale.game_over(with_truncation=False), ale.game_truncated()

    # ---------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        _, info = self.env.reset(seed=seed, options=options)
        return self._start(), info

    def _start(self) -> np.ndarray:
        noops = 1 + int(self._rng.integers(0, self.noop_max + 1))
        self._emulate(0, noops)
        frame = self._frame()
        self._frames[:] = frame
        return self._frames.copy()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        reward, terminated, truncated = self._emulate(int(action), self.frame_skip)
        return self._push(self._frame()), reward, terminated, truncated, {"lives": self.ale.lives()}

    # -------------------------------------------------------------- snapshots
    def replay_point(self) -> tuple[Any, int]:
        """The ALE state before the last emulated frame, and that frame's action."""
        return self._replay_state, self._replay_action

    def replay(self, state: Any, action: int) -> None:
        """Restore ``state`` and emulate one frame of ``action``: the screen (``render``)
        then shows the frame it showed when the state was taken."""
        self.ale.restoreState(state)
        self.ale.act(self._action_set[action])
        self._replay_state, self._replay_action = state, action


def find_atari_frames(env: gym.Env) -> AtariFrames | None:
    """The :class:`AtariFrames` wrapper in ``env``'s chain of wrappers, if any."""
    current: Any = env
    while isinstance(current, gym.Wrapper):
        if isinstance(current, AtariFrames):
            return current
        current = current.env
    return None


def make_atari(env_id: str, *, render_mode: str | None, env_kwargs: dict[str, Any]) -> gym.Env:
    """``env_id`` with :class:`AtariFrames` and the game's masks.

    ``env_kwargs`` may set ``frameskip`` (agent-level frame skip, default 4),
    ``repeat_action_probability`` (default 0: no sticky actions; 0.25 is ALE v5's
    default), ``noop_max``, ``screen_size``, ``stack`` and ``mask_score`` (default True);
    the rest go to ``gymnasium.make``.
    """
    kwargs = dict(env_kwargs)
    frame_skip = int(kwargs.pop("frameskip", 4))
    noop_max = int(kwargs.pop("noop_max", 30))
    screen_size = int(kwargs.pop("screen_size", 84))
    stack = int(kwargs.pop("stack", 4))
    mask_score = bool(kwargs.pop("mask_score", True))
    kwargs.setdefault("repeat_action_probability", 0.0)
    kwargs.pop("max_episode_steps", None)  # the fixed-length wrapper counts agent steps itself
    env = gym.make(env_id, render_mode=render_mode, frameskip=1, **kwargs)
    masks = MASKS.get(game_name(env_id), ()) if mask_score else ()
    return AtariFrames(
        env,
        frame_skip=frame_skip,
        noop_max=noop_max,
        screen_size=screen_size,
        stack=stack,
        masks=masks,
    )
