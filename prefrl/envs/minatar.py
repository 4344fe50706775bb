"""MinAtar (Young and Tian 2019): five Atari games shrunk to 10x10 grids of object channels,
made for Atari-style research on a CPU. An optional extra (GPL): ``pip install
'prefrl[minatar]'``.

prefrl registers ``MinAtar/<Game>-v1`` (the game's minimal action set; all 6 actions
with ``minimal_actions=False``) for Asterix, Breakout, Freeway, Seaquest and
SpaceInvaders, as a gymnasium env of its own: observations are the game's channels first, ``(C, 10, 10)`` uint8 (0/1),
like the Atari frames of :mod:`prefrl.envs.atari`; ``render()`` draws the channels in
colour. Episodes are capped at :data:`MAX_EPISODE_STEPS` steps.

A snapshot of a MinAtar step is its observation: it is all the picture there is.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.errors import EnvError

GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
"""gymnasium name -> minatar's module name"""

MAX_EPISODE_STEPS = 1000
INSTALL_FIX = "pip install 'prefrl[minatar]' (the minatar package, GPL)"

# one colour per channel (background black); a cell shows its highest lit channel
PALETTE = np.array(
    [
        (0, 0, 0),
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
        (247, 247, 247),
    ],
    dtype=np.uint8,
)


class MinAtarEnv(gym.Env):
    """One MinAtar game.

    Args:
        game: minatar's name, e.g. ``"breakout"``.
        render_mode: ``"rgb_array"`` or None.
        sticky_action_prob: chance the previous action is repeated (MinAtar's default 0.1).
        difficulty_ramping: the game speeds up over time, as in MinAtar.
        minimal_actions: the game's minimal action set, else all 6 actions.
        cell_pixels: ``render()`` draws each cell as a square of this many pixels.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012 (gymnasium's own form)

    def __init__(
        self,
        game: str,
        render_mode: str | None = None,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        minimal_actions: bool = True,
        cell_pixels: int = 16,
    ):
        try:
            from minatar import Environment
        except ImportError as err:
            raise EnvError(f"MinAtar games need the minatar package: {INSTALL_FIX}") from err
        self.game = Environment(
            game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping
        )
        self.actions = list(self.game.minimal_action_set()) if minimal_actions else list(range(6))
        rows, cols, channels = self.game.state_shape()
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self.observation_space = gym.spaces.Box(0, 1, (channels, rows, cols), np.uint8)
        self.render_mode = render_mode
        self.cell_pixels = cell_pixels
        self.shown = np.zeros(self.observation_space.shape, dtype=np.uint8)  # what render() draws

    def _observe(self) -> np.ndarray:
        self.shown = np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8)
        return self.shown.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        elif not hasattr(self, "_seeded"):
            self.game.seed(int(self.np_random.integers(2**31)))
        self._seeded = True
        self.game.reset()
        return self._observe(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward, terminal = self.game.act(self.actions[int(action)])
        return self._observe(), float(reward), bool(terminal), False, {}

    def render(self) -> np.ndarray:
        """The shown cells in colour, ``(10 * cell_pixels, 10 * cell_pixels, 3)`` uint8."""
        return render_channels(self.shown, self.cell_pixels)


def render_channels(channels: np.ndarray, cell_pixels: int) -> np.ndarray:
    """Object channels ``(C, H, W)`` as an RGB image, each cell a square of ``cell_pixels``."""
    levels = np.arange(1, len(channels) + 1, dtype=np.int64)[:, None, None]
    top = (channels.astype(np.int64) * levels).max(axis=0)  # 0: no object
    image = PALETTE[np.minimum(top, len(PALETTE) - 1)]
    return np.repeat(np.repeat(image, cell_pixels, axis=0), cell_pixels, axis=1)


def register_minatar() -> None:
    """Register ``MinAtar/<Game>-v1`` with gymnasium (prefrl's env class)."""
    for name, game in GAMES.items():
        env_id = f"MinAtar/{name}-v1"
        if env_id in gym.registry and gym.registry[env_id].entry_point == f"{__name__}:MinAtarEnv":
            continue
        gym.register(
            env_id,
            entry_point=f"{__name__}:MinAtarEnv",
            kwargs={"game": game},
            max_episode_steps=MAX_EPISODE_STEPS,
        )
