"""Damaged clips in a preference store: finding them, and the error that names them.

SQLite's integrity check does not look inside blobs, so a clip whose arrays were damaged
on disk is only noticed when it is read (:func:`prefrl.prefs.blobs.load_clip`).
:func:`damaged_clips` reads and checks every stored clip; :func:`damaged_error` makes the
:class:`~prefrl.prefs.errors.DamagedClipError` that names damaged clips, the queries in
use that compare them, and the command that sets those aside (``prefrl repair``). The
store's :meth:`~prefrl.prefs.store.PreferenceStore.get_clips`,
:meth:`~prefrl.prefs.store.PreferenceStore.verify` and
:meth:`~prefrl.prefs.store.PreferenceStore.set_aside_damaged` use them; :func:`clip_damage`
checks one clip.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prefrl.prefs.blobs import Damaged, load_clip
from prefrl.prefs.errors import DamagedClipError
from prefrl.prefs.schema import IN_USE, MAX_VARS, READ_CLIP


def damaged_error(conn: sqlite3.Connection, path: Path, damaged: dict[str, str]) -> DamagedClipError:
    """The error naming the damaged clips ``damaged`` (id -> reason) of the store at ``path``
    and their queries."""
    ids = list(damaged)
    queries: list[int] = []
    for i in range(0, len(ids), MAX_VARS // 2):
        chunk = ids[i : i + MAX_VARS // 2]
        marks = ", ".join("?" * len(chunk))
        queries += [
            int(row[0])
            for row in conn.execute(
                f"SELECT query_id FROM queries WHERE (left_clip IN ({marks}) OR right_clip IN "
                f"({marks})) AND {IN_USE} ORDER BY query_id",
                chunk + chunk,
            )
        ]
    queries.sort()
    shown = ", ".join(f"{cid} ({damaged[cid]})" for cid in ids[:3])
    if len(ids) > 3:
        shown += f" and {len(ids) - 3} more"
    what = (
        f"the preference store {path} holds {'a damaged clip' if len(ids) == 1 else 'damaged clips'} {shown}"
    )
    if not queries:
        message = f"{what}; no query in use compares {'it' if len(ids) == 1 else 'them'}, so nothing needs it"
    else:
        qs = ", ".join(map(str, queries[:10])) + (
            f" and {len(queries) - 10} more" if len(queries) > 10 else ""
        )
        message = (
            f"{what}, used by {'query' if len(queries) == 1 else 'queries'} {qs}; run "
            f"`prefrl repair {path.parent}` to set {'it' if len(queries) == 1 else 'them'} "
            "aside (answers are kept but no longer trained on or counted, so those labels are asked again)"
        )
    return DamagedClipError(message, ids, queries)


def damaged_clips(conn: sqlite3.Connection) -> tuple[int, dict[str, str]]:
    """Read and check every stored clip: (clips checked, damaged clip id -> reason)."""
    checked = 0
    damaged: dict[str, str] = {}
    last = -1
    while True:
        # Batches by rowid keep memory bounded however large the store is.
        rows = conn.execute(
            READ_CLIP.replace("SELECT ", "SELECT rowid, ", 1) + " WHERE rowid > ? ORDER BY rowid LIMIT 256",
            (last,),
        ).fetchall()
        if not rows:
            return checked, damaged
        for rowid, *row in rows:
            last = rowid
            checked += 1
            try:
                load_clip(tuple(row))
            except Damaged as e:
                damaged[row[0]] = str(e)


def clip_damage(conn: sqlite3.Connection, clip_id: str) -> str | None:
    """Why the stored clip ``clip_id`` cannot be read, or None if it can."""
    try:
        load_clip(conn.execute(f"{READ_CLIP} WHERE clip_id = ?", (clip_id,)).fetchone())
    except Damaged as reason:
        return str(reason)
    return None
