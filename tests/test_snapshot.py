import numpy as np
import pytest

from prefrl.envs import make_env, snapshotter_for
from prefrl.render.frames import make_render_env, render_frame

ENV_IDS = [
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Hopper-v5",
    "FrozenLake-v1",
    "CliffWalking-v1",
    "Taxi-v4",
]


def drive(env, steps, seed):
    env.action_space.seed(seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_snapshot_round_trip(env_id):
    env = make_env(env_id)
    env.reset(seed=1)
    snap = snapshotter_for(env)
    drive(env, 7, seed=1)
    saved = snap.capture(env)
    assert saved.dtype == np.float64 and saved.ndim == 1
    drive(env, 5, seed=2)
    assert not np.array_equal(snap.capture(env), saved)
    other = make_env(env_id)  # another instance, as in a render process
    other.reset(seed=99)
    snap.restore(other, saved)
    np.testing.assert_array_equal(snap.capture(other), saved)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_restored_snapshot_renders_the_live_frame(env_id):
    live = make_render_env(env_id)
    live.reset(seed=3)
    snap = snapshotter_for(live)
    drive(live, 9, seed=3)
    saved, live_frame = snap.capture(live), render_frame(live)

    replay = make_render_env(env_id)
    replay.reset(seed=123)
    drive(replay, 4, seed=4)
    snap.restore(replay, saved)
    np.testing.assert_array_equal(render_frame(replay), live_frame)


def _body_pixels(frame):
    """Bounding box (rows, columns) of the orange body pixels."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    rows, cols = np.nonzero((r > 120) & (r > g + 40) & (g > b))
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_the_camera_follows_a_hopper_that_travels():
    import mujoco

    env = make_render_env("Hopper-v5")
    env.reset(seed=0)
    inner = env.unwrapped
    at_start = _body_pixels(render_frame(env))
    inner.data.qpos[0] = 3.0  # 3 m forward: out of a still camera's picture
    mujoco.mj_forward(inner.model, inner.data)
    assert _body_pixels(render_frame(env)) == at_start


@pytest.mark.parametrize(
    "env_id, followed",
    [("Hopper-v5", 2), ("HalfCheetah-v5", 1), ("Ant-v5", 1), ("Reacher-v5", None), ("Pusher-v5", None)],
)
def test_the_camera_follows_moving_bodies_and_stays_still_for_arms(env_id, followed):
    import mujoco

    env = make_render_env(env_id)
    camera = env.unwrapped.mujoco_renderer._get_viewer("rgb_array").cam
    if followed is None:
        assert camera.type != mujoco.mjtCamera.mjCAMERA_TRACKING
    else:
        assert (camera.type, camera.trackbodyid) == (mujoco.mjtCamera.mjCAMERA_TRACKING, followed)
