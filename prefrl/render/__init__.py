"""Rendering: frames from snapshots, videos of clips and policies."""

from prefrl.render.frames import SnapshotRenderer, make_render_env, render_fps
from prefrl.render.video import record_policy, write_video

__all__ = ["SnapshotRenderer", "make_render_env", "record_policy", "render_fps", "write_video"]
