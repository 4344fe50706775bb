"""Videos (prefrl.render.video): a video is replaced only by a whole new one."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from moviepy import ImageSequenceClip

from prefrl.render.video import final_video, write_video

FRAMES = np.zeros((4, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize("name, method", [("final_policy.mp4", "write_videofile"), ("play.gif", "write_gif")])
def test_a_failed_write_leaves_the_old_video_and_nothing_else(tmp_path, monkeypatch, name, method):
    path = tmp_path / name
    path.write_bytes(b"the old, good video")
    written: list[str] = []

    def fails_halfway(self: ImageSequenceClip, filename: str, *args: object, **kwargs: object) -> None:
        written.append(filename)
        with open(filename, "wb") as f:
            f.write(b"half a vid")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ImageSequenceClip, method, fails_halfway)
    with pytest.raises(OSError):
        write_video(FRAMES, path, fps=10)
    assert path.read_bytes() == b"the old, good video"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert len(written) == 1 and written[0].endswith(f".tmp{path.suffix}")  # moviepy sees the extension


def test_two_writers_of_one_video_at_once_both_succeed(tmp_path):
    path = tmp_path / "trained.mp4"
    errors: list[BaseException] = []

    def write() -> None:
        try:
            write_video(FRAMES, path, fps=10)
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    writers = [threading.Thread(target=write) for _ in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert errors == []
    assert path.read_bytes()[4:8] == b"ftyp" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_whole_video_replaces_the_old_one(tmp_path):
    path = tmp_path / "final_policy.mp4"
    path.write_bytes(b"the old video")
    assert write_video(FRAMES, path, fps=10) == path
    assert path.read_bytes()[4:8] == b"ftyp"  # an mp4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final_policy.mp4"]


def test_a_failed_write_says_ffmpegs_why(tmp_path, monkeypatch):
    def refused(self: ImageSequenceClip, filename: str, *args: object, **kwargs: object) -> None:
        raise OSError("MoviePy error: FFMPEG encountered the following error: Unknown encoder 'libx264'")

    monkeypatch.setattr(ImageSequenceClip, "write_videofile", refused)
    with pytest.raises(OSError) as caught:
        write_video(FRAMES, tmp_path / "final_policy.mp4", fps=10)
    assert (
        str(caught.value)
        == "MoviePy error: FFMPEG encountered the following error: Unknown encoder 'libx264'"
    )


def test_a_final_video_that_cannot_be_written_is_one_line(capsys):
    def disk_full() -> None:
        raise OSError(28, "No space left on device", "run/videos/.final_policy.partial.mp4")

    final_video(disk_full)
    assert capsys.readouterr().out == (
        "prefrl: no final video: [Errno 28] No space left on device: "
        "'run/videos/.final_policy.partial.mp4' (--no-video skips it)\n"
    )
