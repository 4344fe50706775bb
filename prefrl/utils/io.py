"""Atomic file writes: a crash mid-write never leaves a torn file behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path``.

    The bytes are serialised first and written with plain file I/O, so a disk that is
    full or read-only raises an :class:`OSError` naming the file (torch's own writer
    says ``PytorchStreamWriter failed writing file``); no half-written file is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        with tmp.open("wb") as f:
            f.write(buffer.getbuffer())
        tmp.replace(path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if err.filename is None:  # a failed write or flush names no file
            raise OSError(err.errno, err.strerror, str(tmp)) from None
        raise
