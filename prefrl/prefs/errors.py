"""The preference store's errors (both are :class:`prefrl.errors.PrefrlError`: one line each)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefrl.errors import EXIT_FAILED, PrefrlError


class StoreError(PrefrlError, ValueError):
    """The store cannot do what was asked: a damaged or foreign file, another env's data,
    an unknown or already answered query, an unreadable export."""


class DamagedClipError(StoreError):
    """Stored clips whose bytes are not what was stored (checksum mismatch, an array that
    cannot be read or has the wrong shape).

    Attributes:
        clip_ids: the damaged clips.
        query_ids: the queries (not yet set aside) that compare one of them.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, clip_ids: Iterable[str] = (), query_ids: Iterable[int] = ()):
        super().__init__(message)
        self.clip_ids: tuple[str, ...] = tuple(clip_ids)
        self.query_ids: tuple[int, ...] = tuple(query_ids)

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling between processes
        return (type(self), (str(self), self.clip_ids, self.query_ids))
