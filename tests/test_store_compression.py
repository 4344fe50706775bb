"""Large arrays are stored compressed; what comes back, and what an export holds, is the same."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from prefrl.prefs.blobs import COMPRESS_ABOVE, decode, encode, to_npy
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.exchange import export_store, import_into
from prefrl.prefs.store import PreferenceStore


def _frames_clip(rng: np.random.Generator, env_id: str = "ALE/Pong-v5") -> Clip:
    frames = rng.integers(0, 4, size=(29, 84, 84), dtype=np.uint8)
    obs = np.stack([frames[t : t + 4] for t in range(25)])  # stacks that share frames
    return Clip(
        obs=obs,
        actions=rng.integers(0, 6, 25),
        true_rewards=np.zeros(25, np.float32),
        snapshots=rng.random((25, 40)),
        env_id=env_id,
    )


def test_small_arrays_stay_plain_npy():
    blob = encode(np.arange(10))
    assert blob.startswith(b"\x93NUMPY") and to_npy(blob) is blob


def test_large_arrays_are_compressed_and_decode_exactly():
    clip = _frames_clip(np.random.default_rng(0))
    blob = encode(clip.obs)
    assert clip.obs.nbytes > COMPRESS_ABOVE
    assert len(blob) < clip.obs.nbytes / 2  # each frame is stored in four stacks
    np.testing.assert_array_equal(decode(blob), clip.obs)
    np.testing.assert_array_equal(np.load(io.BytesIO(to_npy(blob))), clip.obs)


def test_incompressible_arrays_are_kept_as_they_are():
    noise = np.random.default_rng(0).integers(0, 256, COMPRESS_ABOVE * 2, dtype=np.uint8)
    assert encode(noise).startswith(b"\x93NUMPY")


def test_store_export_import_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    source = tmp_path / "a.sqlite"
    with PreferenceStore(source, env_id="ALE/Pong-v5") as store:
        left, right = _frames_clip(rng), _frames_clip(rng)
        qid = store.add_query(left, right, agent_step=0, oracle="test", selection="random")
        store.record_answer(qid, Answer.LEFT, oracle="test")
    export_store(source, tmp_path / "export")
    with zipfile.ZipFile(tmp_path / "export" / "clips.npz") as zf:
        info = zf.getinfo(f"{left.clip_id}.obs.npy")
        assert info.compress_type == zipfile.ZIP_DEFLATED
    npz = np.load(tmp_path / "export" / "clips.npz")  # a plain .npz for anyone
    np.testing.assert_array_equal(npz[f"{left.clip_id}.obs"], left.obs)
    target = tmp_path / "b.sqlite"
    with PreferenceStore(target, env_id="ALE/Pong-v5") as store:
        import_into(store, tmp_path / "export")
        back = store.clips_of(store.labels())
        np.testing.assert_array_equal(back[left.clip_id].obs, left.obs)
        np.testing.assert_array_equal(back[right.clip_id].snapshots, right.snapshots)
        blob = store._conn.execute("SELECT obs FROM clips WHERE clip_id = ?", (left.clip_id,)).fetchone()[0]
        assert len(blob) < left.obs.nbytes / 2  # stored compressed again


def test_a_damaged_compressed_blob_is_reported(tmp_path):
    path = tmp_path / "a.sqlite"
    with PreferenceStore(path, env_id="ALE/Pong-v5") as store:
        clip = _frames_clip(np.random.default_rng(2))
        store.add_query(
            clip, _frames_clip(np.random.default_rng(3)), agent_step=0, oracle="test", selection="random"
        )
    with PreferenceStore(path, env_id="ALE/Pong-v5") as store:
        with store._write() as conn:
            blob = bytearray(
                conn.execute("SELECT obs FROM clips WHERE clip_id = ?", (clip.clip_id,)).fetchone()[0]
            )
            blob[100:110] = b"\x00" * 10
            conn.execute("UPDATE clips SET obs = ? WHERE clip_id = ?", (bytes(blob), clip.clip_id))
    with pytest.raises(Exception, match="damaged"):
        export_store(path, tmp_path / "export")
