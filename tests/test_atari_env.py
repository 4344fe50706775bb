"""Atari from pixels: the paper's observations, score masks, game over, snapshots."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from prefrl.envs import EnvError, check_spaces, make_env, snapshotter_for
from prefrl.envs.atari import MASKS, AreaResize, AtariFrames, area_weights, find_atari_frames
from prefrl.envs.make import snapshots_supported

# RAM bytes each game keeps its score in (ALE's own reward code reads them), and the
# counters the paper also hides; values written there to change what the screen shows.
SCORE_RAM: dict[str, dict[int, int]] = {
    "Pong": {13: 5, 14: 7},
    "Breakout": {76: 0x99, 77: 0x99},
    "BeamRider": {9: 0x99, 10: 0x99, 11: 0x99, 84: 8},  # 84: enemies left in the sector
    "Enduro": {0x2B: 0x99, 0x2C: 0x99},  # cars to pass
    "Qbert": {0x59: 0x99, 0x5A: 0x99, 0x5B: 0x99},
    "Seaquest": {0x38: 0x99, 0x39: 0x99, 0x3A: 0x99},
    "SpaceInvaders": {0x66: 0x99, 0x68: 0x99},
}


def _ale(env: gym.Env):
    frames = find_atari_frames(env)
    assert frames is not None
    return frames.ale


def test_observations_are_the_papers():
    env = make_env("ALE/Pong-v5")
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(obs[0], obs[i]) for i in range(4))  # the first frame, repeated
    ale = _ale(env)
    assert ale.getFloat("repeat_action_probability") == 0.0
    assert 1 <= ale.getEpisodeFrameNumber() <= 31  # one no-op frame plus 0-30 more
    before = ale.getEpisodeFrameNumber()
    nxt, *_ = env.step(0)
    assert ale.getEpisodeFrameNumber() == before + 4  # frame-skip 4
    assert np.array_equal(nxt[:3], obs[1:])  # the stack moves by one frame


def test_clips_play_at_the_games_speed():
    from prefrl.render import render_fps

    assert render_fps(make_env("ALE/Pong-v5")) == 15.0
    assert render_fps(make_env("ALE/Pong-v5", frameskip=2)) == 30.0


def test_sticky_actions_and_frame_skip_are_options():
    env = make_env("ALE/Pong-v5", repeat_action_probability=0.25, frameskip=2)
    env.reset(seed=0)
    ale = _ale(env)
    assert ale.getFloat("repeat_action_probability") == 0.25
    before = ale.getEpisodeFrameNumber()
    env.step(0)
    assert ale.getEpisodeFrameNumber() == before + 2


def test_reset_seed_repeats_the_start():
    a, b = make_env("ALE/Breakout-v5"), make_env("ALE/Breakout-v5")
    starts = [a.reset(seed=3)[0], b.reset(seed=3)[0]]
    assert np.array_equal(*starts)
    frames = {(a.reset(seed=s), _ale(a).getEpisodeFrameNumber())[1] for s in range(12)}
    assert len(frames) > 1  # the no-op starts vary with the seed


def test_area_weights_average_the_source():
    w = area_weights(210, 84)
    assert w.shape == (84, 210)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w[0, :3], [0.4, 0.4, 0.2], rtol=1e-6)  # a scale of 2.5


def test_resize_is_area_interpolation():
    image = np.random.default_rng(0).integers(0, 256, (210, 160), dtype=np.uint8)
    exact = area_weights(210, 84).astype(np.float64) @ image @ area_weights(160, 84).T.astype(np.float64)
    resized = AreaResize((210, 160), 84)(image)
    assert resized.shape == (84, 84) and resized.dtype == np.uint8
    assert np.abs(resized - exact).max() <= 0.5 + 1e-3  # rounded to the nearest level
    assert (AreaResize((210, 160), 84)(np.full((210, 160), 77, np.uint8)) == 77).all()


@pytest.mark.parametrize("game", sorted(MASKS))
def test_masks_hide_the_score(game):
    """Two states that differ only in the score (and the masked counters) look different
    on the screen and identical to the agent."""
    assert set(SCORE_RAM) == set(MASKS)
    env = make_env(f"ALE/{game}-v5")
    env.reset(seed=0)
    ale = _ale(env)
    rng = np.random.default_rng(0)
    for _ in range(150):
        env.step(int(rng.integers(env.action_space.n)))
    state = ale.cloneState(include_rng=True)
    plain = env.step(0)[0][-1]
    plain_screen = ale.getScreenRGB().copy()
    ale.restoreState(state)
    for address, value in SCORE_RAM[game].items():
        ale.setRAM(address, value)
    changed = env.step(0)[0][-1]
    assert not np.array_equal(ale.getScreenRGB(), plain_screen), "the new score was not drawn"
    assert np.array_equal(changed, plain)


def test_unmasked_score_is_seen():
    """Without the mask the same change reaches the observation (the test above can fail)."""
    env = make_env("ALE/Pong-v5", mask_score=False)
    env.reset(seed=0)
    ale = _ale(env)
    state = ale.cloneState(include_rng=True)
    plain = env.step(0)[0][-1]
    ale.restoreState(state)
    ale.setRAM(13, 5)
    assert not np.array_equal(env.step(0)[0][-1], plain)


def test_game_over_restarts_the_game_inside_a_fixed_length_episode():
    env = make_env("ALE/Pong-v5", fixed_length=400)
    env.reset(seed=0)
    ale = _ale(env)
    ale.setRAM(13, 20)  # the computer needs one more point to win
    restarts, steps, truncated = 0, 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(0)
        assert not terminated
        restarts += bool(info.get("terminated_inner"))
        steps += 1
    assert steps == 400
    assert restarts == 1
    assert ale.getRAM()[13] < 20  # a new game


def test_game_over_ends_an_episode_of_the_env_as_registered():
    env = make_env("ALE/Pong-v5")
    env.reset(seed=0)
    _ale(env).setRAM(13, 20)
    for _ in range(2000):
        terminated = env.step(0)[2]
        if terminated:
            break
    assert terminated


def test_snapshots_render_the_frame_the_step_showed():
    env = make_env("ALE/SpaceInvaders-v5", render_mode="rgb_array", fixed_length=True)
    env.reset(seed=0)
    snapshotter = snapshotter_for(env)
    rng = np.random.default_rng(0)
    kept = []
    for t in range(120):
        env.step(int(rng.integers(env.action_space.n)))
        if t % 20 == 0:
            kept.append((snapshotter.capture(env), env.render().copy()))
    widths = {snapshot.shape for snapshot, _ in kept}
    assert len(widths) == 1  # one shape for every step of a run
    other = make_env("ALE/SpaceInvaders-v5", render_mode="rgb_array", fixed_length=True)
    other.reset(seed=5)
    renderer = snapshotter_for(other)
    for snapshot, frame in reversed(kept):
        renderer.restore(other, snapshot)
        assert np.array_equal(other.render(), frame)
    # from a restored step the game goes on as it did (the emulator's RNG is in the state)
    snapshot, _ = kept[2]
    renderer.restore(other, snapshot)
    snapshotter.restore(env, snapshot)
    for action in rng.integers(env.action_space.n, size=30):
        env.step(int(action))
        other.step(int(action))
        assert np.array_equal(other.render(), env.render())


def test_image_envs_without_known_preprocessing_are_refused():
    class RGBEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(EnvError, match=r"channels first|\(channels, height, width\)"):
        check_spaces(RGBEnv())
    raw = gym.make("ALE/Pong-v5")  # gymnasium's own, unprocessed
    with pytest.raises(EnvError, match="ALE/Pong-v5"):
        check_spaces(raw)


def test_atari_frames_wants_single_frames():
    raw = gym.make("ALE/Pong-v5")  # frameskip=4 inside the emulator
    with pytest.raises(EnvError, match="frameskip=1"):
        AtariFrames(raw)


def test_ram_observations_are_learned_from_without_snapshots():
    # a synthetic oracle needs no video; a person cannot be shown clips of RAM
    ram = 'ALE/Pong-v5(obs_type="ram")'
    env = make_env(ram)
    assert env.observation_space.shape == (128,)
    assert not snapshots_supported(ram) and snapshots_supported("ALE/Pong-v5")
    with pytest.raises(EnvError, match=r"this AtariEnv has none \(RAM observations, or built elsewhere\)"):
        snapshotter_for(env)
    env.close()
