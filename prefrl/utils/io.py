"""Atomic file writes: a crash mid-write never leaves a torn file behind, and a power
loss never leaves an empty one (the new file reaches the disk before it is renamed)."""

from __future__ import annotations

import errno
import io
import itertools
import os
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_WRITES = itertools.count(1)  # numbers this process's temporary files apart
_CRC32_OPTION = threading.Lock()


# What reading a damaged zip archive (an .npz file, a torch checkpoint) raises: a member
# whose CRC-32 or header does not match (BadZipFile), a deflated member that does not
# inflate (zlib.error, EOFError), header fields no zip writer sets (NotImplementedError),
# offsets past the end (OSError, ValueError).
ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError)


def temporary_beside(path: Path, *, keep_suffix: bool = False) -> Path:
    """A temporary name beside ``path`` that no other writer of ``path`` uses at the same
    time (``NAME.PID-N.tmp``): two threads or processes writing one file (a grid's
    ``results.csv`` from two cells, or from ``prefrl report`` during ``prefrl bench``) must
    not write into each other's temporary file and rename a mix of both.
    ``keep_suffix``: the name ends in ``path``'s suffix (``STEM.PID-N.tmp.mp4``), for a
    writer that goes by it (moviepy)."""
    tag = f"{os.getpid()}-{next(_WRITES)}.tmp"
    if keep_suffix:
        return path.with_name(f"{path.stem}.{tag}{path.suffix}")
    return path.with_name(f"{path.name}.{tag}")


@contextmanager
def replacing(path: str | Path, tmp: str | Path | None = None, *, durable: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` (default :func:`temporary_beside`) for the caller to write;
    when the block ends without an error, the file is flushed to the disk (fsync; a file
    system that cannot, EINVAL, is let be), renamed over ``path`` and the rename flushed
    (best effort); on an error it is removed and ``path`` is left as it was.
    ``durable=False``: no flush, for a file worthless after a power loss (a heartbeat):
    still whole or not at all to any reader.

    Raises:
        OSError: the OS refused; it names the file (a failed write or flush names none).
            One without an errno (a library's own message) is raised as it was.
    """
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else temporary_beside(path)
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        tmp.replace(path)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)  # half a file takes space and is never read
        except OSError:
            pass
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(tmp)) from None
        raise  # as it was: moviepy's IOError (no errno) carries ffmpeg's text, the why
    if durable:
        _sync_dir(path.parent)


def fsync_file(path: str | Path) -> None:
    """Flush the file ``path`` to the disk (fsync), as :func:`replacing` does before its
    rename; for a writer that renames several files only once all are written. A file
    system that cannot (EINVAL: some FUSE and network mounts) is let be, as for a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    """Flush a directory's entries (a rename) to the disk, where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a directory
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: str | bytes | memoryview, *, durable: bool = True) -> None:
    """Write ``data`` (a ``str`` as UTF-8) to ``path`` through :func:`replacing`."""
    with replacing(path, durable=durable) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path``.

    The bytes are serialised first and written with plain file I/O, so a disk that is
    full or read-only raises an :class:`OSError` naming the file (torch's own writer
    says ``PytorchStreamWriter failed writing file``); no half-written file is left.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    # with the CRC-32s that prefrl.utils.checkpoint checks (a torch before 2.6 always writes
    # them); the option is global: threads saving at once switch it under one lock
    with _CRC32_OPTION:
        crc32 = getattr(torch.serialization, "get_crc32_options", lambda: True)()
        if not crc32:
            torch.serialization.set_crc32_options(True)
        try:
            torch.save(obj, buffer)
        finally:
            if not crc32:
                torch.serialization.set_crc32_options(False)
    atomic_write(path, buffer.getbuffer())
