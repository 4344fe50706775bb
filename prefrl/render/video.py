"""Videos: frames -> mp4/gif with moviepy 2, and recordings of a policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.errors import RenderError
from prefrl.render.frames import make_render_env, render_fps, render_frame
from prefrl.utils.io import replacing, temporary_beside


def write_video(frames: Sequence[np.ndarray] | np.ndarray, path: str | Path, fps: float) -> Path:
    """Write uint8 RGB frames ``(T, H, W, 3)`` to ``path`` (``.mp4`` or ``.gif``)."""
    from moviepy import ImageSequenceClip

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip([np.asarray(f) for f in frames], fps=fps)
    # written beside it, renamed over it once whole: a failed write leaves the old video as
    # it was (the temporary name keeps the extension, which moviepy goes by, and is its
    # writer's own: two processes may write one video, e.g. two seeds' measures)
    try:
        with replacing(path, temporary_beside(path, keep_suffix=True)) as tmp:
            if path.suffix.lower() == ".gif":
                clip.write_gif(str(tmp), fps=fps, logger=None)
            else:
                # yuv420p and even sizes: plays in browsers and common players
                clip.write_videofile(
                    str(tmp),
                    fps=fps,
                    codec="libx264",
                    audio=False,
                    logger=None,
                    ffmpeg_params=["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"],
                )
    finally:
        clip.close()
    return path


def record_policy(
    act: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    path: str | Path,
    *,
    episodes: int = 1,
    fixed_length: bool | int = False,
    seed: int = 0,
    max_frames: int = 1500,
    gif: bool = False,
) -> list[float]:
    """Render ``episodes`` episodes of ``act(obs[B, ...]) -> actions[B, ...]`` to an mp4.

    Returns the true return of each episode. At most ``max_frames`` frames are written.
    With ``gif=True`` a ``.gif`` is written beside the mp4.
    """
    env = make_render_env(env_id, fixed_length=fixed_length)
    frames: list[np.ndarray] = []
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        frames.append(render_frame(env))
        total, done = 0.0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs[None])[0])
            total += info["true_reward"]
            done = terminated or truncated
            if len(frames) < max_frames:
                frames.append(render_frame(env))
        returns.append(total)
    fps = render_fps(env)
    env.close()
    write_video(frames, path, fps)
    if gif:
        write_video(frames, Path(path).with_suffix(".gif"), fps)
    return returns


def final_video(record: Callable[[], Any]) -> None:
    """Call ``record``, which writes a finished run's video of its final policy. An env
    that draws no frames, or a write that fails (a full disk, ffmpeg's refusal), is said in
    one line instead: the run is done, and its summary is still to be written."""
    try:
        record()
    except (RenderError, OSError) as err:
        print(f"prefrl: no final video: {err} (--no-video skips it)", flush=True)
