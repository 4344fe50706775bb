"""How a clip's arrays are stored: ``np.save`` bytes (dtype and shape survive) and a
CRC-32 checksum over them, checked on every read because SQLite's own integrity check
does not look inside blobs. Large arrays (the frames of image observations, Atari
snapshots) are stored zlib-compressed behind a 4-byte marker; exports hold plain
``.npy`` files either way."""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from prefrl.prefs.clips import Clip
from prefrl.prefs.errors import StoreError

ARRAYS = ("obs", "actions", "true_rewards", "snapshots")
"""a clip's array columns, in the order they are stored and checksummed"""

_NPY_MAGIC = b"\x93NUMPY"
_ZLIB_MAGIC = b"PRZ\x01"
COMPRESS_ABOVE = 32 * 1024
"""arrays of more bytes than this are stored compressed"""


def encode(array: np.ndarray) -> bytes:
    """The stored form of ``array``: its ``.npy`` bytes, compressed when large."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return pack(buf.getvalue())


def pack(npy: bytes) -> bytes:
    """The stored form of ``.npy`` bytes (compressed when large and it saves space)."""
    if len(npy) <= COMPRESS_ABOVE:
        return npy
    packed = _ZLIB_MAGIC + zlib.compress(npy, 1)
    return packed if len(packed) < len(npy) else npy


def to_npy(blob: bytes) -> bytes:
    """The ``.npy`` bytes of a stored blob.

    Raises:
        zlib.error: a compressed blob that does not decompress.
    """
    return zlib.decompress(blob[len(_ZLIB_MAGIC) :]) if blob[: len(_ZLIB_MAGIC)] == _ZLIB_MAGIC else blob


# .npy header bytes -> (dtype, shape, fortran_order, data offset). np.load spends ~60 µs
# parsing each header; clips of one run share a handful of headers, and training reads
# thousands of arrays at a time.
_HEADERS: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], bool, int]] = {}


def decode(blob: bytes) -> np.ndarray:
    """The array of a stored blob (a writable copy, dtype and shape as saved)."""
    blob = to_npy(blob)
    if len(blob) < 12 or blob[:6] != _NPY_MAGIC or blob[6] not in (1, 2):
        return np.load(io.BytesIO(blob), allow_pickle=False)
    start = 10 if blob[6] == 1 else 12
    end = start + int.from_bytes(blob[8:start], "little")
    header = blob[:end]
    info = _HEADERS.get(header)
    if info is None:
        fp = io.BytesIO(header)
        version = np.lib.format.read_magic(fp)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(fp)
        if dtype.hasobject or dtype.itemsize == 0:
            return np.load(io.BytesIO(blob), allow_pickle=False)
        if len(_HEADERS) > 256:
            _HEADERS.clear()
        info = _HEADERS[header] = (dtype, tuple(shape), bool(fortran), end)
    dtype, shape, fortran, offset = info
    count = math.prod(shape)
    if len(blob) - offset < count * dtype.itemsize:
        raise StoreError(
            f"a stored array is truncated ({len(blob) - offset} bytes for shape {shape}, {dtype})"
        )
    flat = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")


def clip_checksum(blobs: Iterable[bytes | None]) -> int:
    """CRC-32 of a clip's array blobs (obs, actions, true_rewards, snapshots), each with
    its length (a missing one as -1), so that bytes cannot move between arrays unseen.
    CRC-32 catches every error of up to 32 consecutive bits and costs far less than
    decoding the arrays."""
    crc = 0
    for blob in blobs:
        crc = zlib.crc32((-1 if blob is None else len(blob)).to_bytes(8, "little", signed=True), crc)
        if blob is not None:
            crc = zlib.crc32(blob, crc)
    return crc


class Damaged(Exception):
    """A stored clip is not what was stored; the message is the reason, in our own words."""


def load_clip(row: tuple[Any, ...]) -> Clip:
    """The clip of a row of :data:`prefrl.prefs.schema.READ_CLIP`, checked.

    Raises:
        Damaged: the blobs do not match the checksum, an array cannot be read, or an
            array has not ``length`` rows.
    """
    cid, env_id, agent_step, episode_step, length, *blobs, checksum = row
    if checksum is not None and clip_checksum(blobs) != checksum:
        raise Damaged("its arrays do not match their checksum")
    arrays: dict[str, np.ndarray | None] = {}
    for name, blob in zip(ARRAYS, blobs, strict=True):
        if blob is None:
            if name != "snapshots":
                raise Damaged(f"its {name} array is missing")
            arrays[name] = None
            continue
        try:
            array = decode(blob)
        except Exception:
            # numpy's own message may advise loading the bytes unsafely; it never reaches a user.
            raise Damaged(f"its {name} array cannot be read") from None
        if array.ndim == 0 or len(array) != length:
            raise Damaged(f"its {name} array has shape {array.shape}, not {length} rows")
        arrays[name] = array
    return Clip(
        obs=arrays["obs"],  # type: ignore[arg-type]
        actions=arrays["actions"],  # type: ignore[arg-type]
        true_rewards=arrays["true_rewards"],  # type: ignore[arg-type]
        snapshots=arrays["snapshots"],
        env_id=env_id,
        agent_step=agent_step,
        episode_step=episode_step,
        clip_id=cid,
    )
