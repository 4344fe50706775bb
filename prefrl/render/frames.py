"""Frames: render envs, and re-render stretches of behaviour from simulator snapshots."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from prefrl.envs.make import make_env
from prefrl.envs.snapshot import Snapshotter, env_family, snapshotter_for
from prefrl.errors import RenderError

# What the user asked SDL for, before prefrl touched it (the labelling window reads it to
# tell a real display from none).
USER_SDL_VIDEODRIVER = os.environ.get("SDL_VIDEODRIVER")


def _offscreen_sdl() -> None:
    """Classic-control rendering calls pygame.init(), which probes for a screen and a sound
    server and prints errors on machines without them: point SDL at its dummy drivers
    when there is no display at all (prefrl plays no sound anywhere)."""
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def fast_mujoco_rendering(env: gym.Env) -> None:
    """Turn off shadows, reflections and the skybox: ~4x faster on a CPU (llvmpipe)."""
    import mujoco

    inner: Any = env.unwrapped
    viewer = inner.mujoco_renderer._get_viewer("rgb_array")
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        viewer.scn.flags[flag] = 0


def follow_the_body(env: gym.Env) -> None:
    """Make the camera follow the agent's body.

    gymnasium (1.x) draws ``rgb_array`` frames from a free camera and resets it to free
    before every frame, so the ``trackbodyid`` of the env's ``default_camera_config``
    (Hopper, Walker2d, Humanoid) is set but ignored, and a hopper that travels 2 m leaves
    the picture. Envs whose config names no body (HalfCheetah, Ant, Swimmer) follow their
    first body if it moves freely (a free or sliding root joint); arms fixed to the world
    and envs that name the world body (Reacher, InvertedPendulum) keep the still camera.
    A tracking camera keeps the config's distance and elevation and moves its look-at
    point with the body, frame by frame, without smoothing: a frame re-rendered from a
    snapshot is the same whatever was drawn before it.
    """
    import mujoco

    inner: Any = env.unwrapped
    renderer = inner.mujoco_renderer
    if renderer.camera_id != -1:  # the env was asked for one of the model's own cameras
        return
    viewer = renderer._get_viewer("rgb_array")
    body = int(viewer.cam.trackbodyid)
    if body == 0:  # the world: its subtree's centre of mass is the whole model's
        return
    if body < 0:
        model = inner.model
        moving = (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        if model.nbody < 2 or model.body_jntnum[1] == 0:
            return
        if int(model.jnt_type[model.body_jntadr[1]]) not in moving:
            return
        body = 1
    viewer.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    viewer.cam.trackbodyid = body
    renderer.camera_id = None  # with -1 every render() would switch back to the free camera


class RenderCurrentMujocoState(gym.Wrapper):
    """Render MuJoCo bodies where ``qpos`` puts them now.

    After ``mj_step`` the body positions MuJoCo draws are those computed *before* the
    step's last integration, one substep behind ``qpos``. A frame re-rendered from a
    snapshot (``qpos``/``qvel`` + ``mj_forward``) shows the current positions, so live
    frames do the same (``mj_forward`` does not change the simulation's trajectory).
    """

    def render(self) -> Any:
        import mujoco

        inner: Any = self.env.unwrapped
        mujoco.mj_forward(inner.model, inner.data)
        return self.env.render()


def make_render_env(
    env_id: str, *, fixed_length: bool | int = False, fast: bool = True, **kwargs: Any
) -> gym.Env:
    """``make_env(..., render_mode="rgb_array")``, with the fast MuJoCo preset unless ``fast=False``."""
    _offscreen_sdl()
    env = make_env(env_id, render_mode="rgb_array", fixed_length=fixed_length, **kwargs)
    if env_family(env) == "mujoco":
        if fast:
            fast_mujoco_rendering(env)
        follow_the_body(env)
        env = RenderCurrentMujocoState(env)
    return env


def render_fps(env: gym.Env) -> float:
    """The env's own playback speed (``metadata['render_fps']``, which a wrapper may change,
    e.g. a frame skip), 30 if it declares none."""
    return float(env.metadata.get("render_fps") or 30)


def render_frame(env: gym.Env) -> np.ndarray:
    """``env``'s frame now, ``[H, W, 3]`` uint8.

    Raises:
        RenderError: the env draws no rgb_array frames (none among its render modes, or its
            ``render()`` gave something else).
    """
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    try:
        frame = env.render()
    except AssertionError as err:  # gymnasium's checker: rgb_array is not among its render modes
        raise RenderError(f"{name} cannot draw frames: {err}") from None
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise RenderError(
            f"{name} cannot draw frames: its render() with render_mode='rgb_array' gave "
            f"{type(frame).__name__}, not an image array [height, width, 3]"
        )
    return frame


class SnapshotRenderer:
    """Renders frames from snapshots, with one render env kept open for reuse.

    ``render(snapshots[T, S]) -> frames[T, H, W, 3]`` uint8.
    """

    def __init__(self, env_id: str, fixed_length: bool | int = False, fast: bool = True):
        self.env = make_render_env(env_id, fixed_length=fixed_length, fast=fast)
        self.env.reset(seed=0)
        self.snapshotter: Snapshotter = snapshotter_for(self.env)
        self.fps = render_fps(self.env)

    def render(self, snapshots: np.ndarray) -> np.ndarray:
        frames = []
        for snapshot in snapshots:
            self.snapshotter.restore(self.env, snapshot)
            frames.append(render_frame(self.env))
        return np.stack(frames)

    def close(self) -> None:
        self.env.close()
