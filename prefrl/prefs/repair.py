"""Setting damaged clips aside: what ``prefrl repair RUN_DIR`` does.

SQLite's integrity check does not look inside blobs, so a clip whose arrays were damaged
on disk is only noticed when it is read (:class:`prefrl.prefs.store.DamagedClipError`).
:func:`repair_store` reads every clip of a store and sets aside the queries that compare a
damaged one: they stay in the store with their answers, for the record, but are no longer
trained on or counted as answered, so a run asks for those labels again.
:func:`restore_clip` mends such a clip from an intact copy (``prefrl import`` of a backup
or an export), and its queries count again.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from typing import Any

from prefrl.prefs.damage import clip_damage
from prefrl.prefs.schema import store_file
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import RunDir, mark_stopped_if_dead


def repair_store(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Set aside the queries of every damaged clip in a run's preference store.

    Args:
        path: a run directory (its ``prefs.sqlite`` is repaired) or a store file.

    Returns:
        A JSON-serialisable dict: ``store`` (the file's path), ``clips_checked``,
        ``damaged_clips`` (ids), ``queries_set_aside`` and ``answers_set_aside`` (by this
        call; both 0 when repeated), ``total_set_aside`` (in the store), ``answered``
        (answers still counted toward the label budget), and with queries set aside,
        ``then``: how their labels come back.

    Raises:
        RunBusyError: a live process runs the run (a label set aside under it would still
            count in its processes' accounting).
        StoreError: there is no store at ``path``, or the file itself is damaged (the
            message says how to go on).
    """
    store_path = store_file(path)
    with RunDir(store_path.parent).claim_if_run(then=f"prefrl repair {path}"):  # no resume starts meanwhile
        mark_stopped_if_dead(store_path.parent)  # killed: its status.json said running
        with PreferenceStore(store_path) as store:
            report = store.set_aside_damaged()
    result: dict[str, Any] = {"store": str(store_path)}
    result.update(dataclasses.asdict(report))
    result["damaged_clips"] = list(report.damaged_clips)
    if report.total_set_aside:
        result["then"] = (
            f"an intact copy of the store (a backup of {store_path.name}, or an export) restores the "
            f"{report.total_set_aside} set-aside queries: prefrl import {path} COPY"
        )
    return result


# -- restoring from an intact copy (prefrl import) ---------------------------------------


def clips_of_set_aside_queries(conn: sqlite3.Connection) -> set[str]:
    """Both clips of every set-aside query: repair names one, and the other may be damaged too."""
    return {
        row[0]
        for row in conn.execute(
            "SELECT left_clip FROM set_aside JOIN queries USING (query_id) "
            "UNION SELECT right_clip FROM set_aside JOIN queries USING (query_id)"
        )
    }


def restore_clip(conn: sqlite3.Connection, row: tuple[Any, ...], checksum: int) -> int:
    """Mend the clip ``row[0]`` of a set-aside query with the arrays of ``row`` (a row of
    ``CLIP_COLUMNS`` whose arrays were checked: ``checksum`` is theirs) if the stored one
    is damaged and it is that clip, of the same env, length and creation time. The queries
    set aside for it are in use again then, except those whose other clip is damaged too:
    they stay aside, for that one. 1 if it was mended, else 0."""
    cid = row[0]
    if clip_damage(conn, cid) is None:
        return 0
    mended = conn.execute(
        "UPDATE clips SET obs = ?, actions = ?, true_rewards = ?, snapshots = ?, checksum = ? "
        "WHERE clip_id = ? AND env_id = ? AND length = ? AND created_at = ?",
        (*row[6:10], checksum, cid, row[1], row[4], row[10]),
    ).rowcount
    if not mended:
        return 0
    aside = conn.execute(
        "SELECT query_id, left_clip, right_clip FROM set_aside JOIN queries USING (query_id) WHERE clip_id = ?",
        (cid,),
    ).fetchall()
    for qid, left, right in aside:
        other = right if left == cid else left
        reason = clip_damage(conn, other)
        if reason is None:
            conn.execute("DELETE FROM set_aside WHERE query_id = ?", (qid,))
        else:
            conn.execute(
                "UPDATE set_aside SET clip_id = ?, reason = ? WHERE query_id = ?",
                (other, f"clip {other} is damaged: {reason}", qid),
            )
    return 1
