"""The preference store's file: its tables, the checks before it is opened, and migrations.

Tables::

    meta      (key, value)                 env_id, schema_version
    clips     (clip_id, env_id, agent_step, episode_step, length, true_return,
               obs, actions, true_rewards, snapshots, created_at, checksum)
    queries   (query_id, left_clip, right_clip, created_at, agent_step, oracle, selection,
               score, source)
    answers   (query_id, answer, answered_at, oracle, response_time)
    set_aside (query_id, clip_id, reason, set_aside_at)
    undone    (undo_id, query_id, answer, answered_at, oracle, response_time, undone_at)

A file that is not an intact store is refused without being written to; a store of an
older schema is migrated in place (:func:`open_schema`).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from prefrl.prefs.blobs import clip_checksum
from prefrl.prefs.clips import Answer
from prefrl.prefs.errors import StoreError

# 1: the first schema. 2: clips.checksum and the set_aside table. 3: the undone table (see _migrate).
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0
STORE_NAME = "prefs.sqlite"  # RUN_DIR/prefs.sqlite
REUSED_STORE_NAME = "reused.sqlite"  # RUN_DIR/reused.sqlite: labels a run reuses (prefrl train --labels-from)

SQLITE_MAGIC = b"SQLite format 3\x00"

ANSWER_VALUES = ", ".join(f"'{a.value}'" for a in Answer)
# Queries set aside because a clip they compare is damaged: kept for the record, with their
# answers, but left out of every count and list of queries and labels.
SET_ASIDE_TABLE = """CREATE TABLE IF NOT EXISTS set_aside (
        query_id INTEGER PRIMARY KEY REFERENCES queries(query_id),
        clip_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        set_aside_at REAL NOT NULL
    )"""
IN_USE = "query_id NOT IN (SELECT query_id FROM set_aside)"
# Clips that leave a store (export, import from it) and that a labeler pairs again: not
# one a set-aside query names as damaged, nor one whose every query is set aside (a query
# with two damaged clips names only one of them); a clip in no query yet is one. What
# `prefrl repair` set aside stays in its store, for the record.
CLIP_IN_USE = (
    "clip_id NOT IN (SELECT clip_id FROM set_aside) AND ("
    f"clip_id IN (SELECT left_clip FROM queries WHERE {IN_USE} UNION SELECT right_clip FROM queries WHERE {IN_USE}) "
    "OR clip_id NOT IN (SELECT left_clip FROM queries UNION SELECT right_clip FROM queries))"
)
# Answers taken back by the person who gave them (the labelling window's undo): moved here
# from ``answers``, for the record, so the query is unanswered again and asked anew. A query
# can be answered and undone several times: one row per undo.
UNDONE_TABLE = """CREATE TABLE IF NOT EXISTS undone (
        undo_id INTEGER PRIMARY KEY AUTOINCREMENT,
        query_id INTEGER NOT NULL REFERENCES queries(query_id),
        answer TEXT NOT NULL,
        answered_at REAL NOT NULL,
        oracle TEXT NOT NULL,
        response_time REAL,
        undone_at REAL NOT NULL
    )"""
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS clips (
        clip_id TEXT PRIMARY KEY,
        env_id TEXT NOT NULL,
        agent_step INTEGER NOT NULL,
        episode_step INTEGER NOT NULL,
        length INTEGER NOT NULL,
        true_return REAL NOT NULL,
        obs BLOB NOT NULL,
        actions BLOB NOT NULL,
        true_rewards BLOB NOT NULL,
        snapshots BLOB,
        created_at REAL NOT NULL,
        checksum INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS queries (
        query_id INTEGER PRIMARY KEY AUTOINCREMENT,
        left_clip TEXT NOT NULL REFERENCES clips(clip_id),
        right_clip TEXT NOT NULL REFERENCES clips(clip_id),
        created_at REAL NOT NULL,
        agent_step INTEGER NOT NULL,
        oracle TEXT NOT NULL,
        selection TEXT NOT NULL,
        score REAL,
        source TEXT
    )""",
    # Imports recognise a query they already hold by (left, right, created_at).
    "CREATE INDEX IF NOT EXISTS queries_by_content ON queries (left_clip, right_clip, created_at)",
    f"""CREATE TABLE IF NOT EXISTS answers (
        query_id INTEGER PRIMARY KEY REFERENCES queries(query_id),
        answer TEXT NOT NULL CHECK (answer IN ({ANSWER_VALUES})),
        answered_at REAL NOT NULL,
        oracle TEXT NOT NULL,
        response_time REAL
    )""",
    SET_ASIDE_TABLE,
    UNDONE_TABLE,
)

CLIP_COLUMNS = (
    "clip_id, env_id, agent_step, episode_step, length, true_return, "
    "obs, actions, true_rewards, snapshots, created_at"
)
INSERT_CLIP = (
    f"INSERT OR IGNORE INTO clips ({CLIP_COLUMNS}, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What reading a clip needs, in the order load_clip takes it.
READ_CLIP = (
    "SELECT clip_id, env_id, agent_step, episode_step, length, obs, actions, true_rewards, "
    "snapshots, checksum FROM clips"
)
QUERY_COLUMNS = "query_id, left_clip, right_clip, created_at, agent_step, oracle, selection, score"
MAX_VARS = 900
"""ids bound in one statement at most: under SQLITE_MAX_VARIABLE_NUMBER of old SQLite builds (999)"""


def recovery_hint(path: Path) -> str:
    """How to go on from a store file that cannot be used (said after "damaged")."""
    target = path.parent if path.name == STORE_NAME else path
    return (
        f"Nothing was changed. To go on, move {path.name} aside and either start a new run "
        f"directory, or restore the labels into a new store with `prefrl import {target} "
        "EXPORT_DIR|COPY.sqlite` (an export written earlier by `prefrl export`, or an intact copy "
        "of the store); the sqlite3 tool's '.recover' command may salvage rows from a damaged file."
    )


SOURCE_HINT = (
    "A source of labels is a preference store (a run's prefs.sqlite, or a copy of it) or a "
    "directory written by `prefrl export` (clips.npz, clips.csv, queries.csv, answers.csv)."
)


def read_only_uri(path: Path) -> str:
    """The URI of a read-only connection to the store file ``path``. On a medium that
    cannot be written (a read-only mount, an archive) SQLite cannot make the shared-memory
    file a WAL database is read through, so a store with no WAL file beside it (closed
    cleanly: everything is in the file) is opened as immutable."""
    uri = "file:" + urllib.parse.quote(path.resolve().as_posix()) + "?mode=ro"
    wal = path.with_name(path.name + "-wal")
    if not os.access(path.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size > 0):
        uri += "&immutable=1"
    return uri


def remove_store(path: Path) -> None:
    """Delete the store file ``path`` with its WAL and shared-memory files, where they exist."""
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        part.unlink(missing_ok=True)


def is_sqlite_file(path: Path) -> bool:
    """Whether the file ``path`` starts with the SQLite header."""
    with open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def check_file(path: Path, pragma: str = "quick_check", *, source: bool = False) -> None:
    """Refuse a file that is not an intact SQLite database, without writing to it.

    ``pragma`` is ``quick_check`` or the slower, fuller ``integrity_check``; neither looks
    inside blobs (clips have their own checksums for that). ``source``: the file was given
    as a source of labels (``prefrl import``, ``--labels-from``), not a run's own store,
    so a refusal says what a source is rather than how to mend a run's store.
    """
    if not is_sqlite_file(path):
        if source:
            raise StoreError(
                f"{path} is not a preference store or an export (it is not an SQLite database). "
                + SOURCE_HINT
            )
        raise StoreError(
            f"{path} is not an SQLite database (it does not start with the SQLite header). "
            + recovery_hint(path)
        )
    hint = (
        f"Nothing was read from it; ask for an intact copy or an export of it. {SOURCE_HINT}"
        if source
        else recovery_hint(path)
    )
    # A read-only connection never writes to the database file (it cannot even checkpoint
    # the WAL into it), so a damaged file stays exactly as it was found.
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.OperationalError as e:
        raise StoreError(f"cannot open the preference store {path}: {e}") from None
    try:
        problems = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.OperationalError as e:  # busy, locked, I/O: not evidence of damage
        raise StoreError(f"cannot read the preference store {path}: {e}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"the preference store {path} is damaged ({e}). " + hint) from None
    finally:
        conn.close()
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise StoreError(f"the preference store {path} is damaged ({pragma}: {shown}). " + hint)


def open_schema(conn: sqlite3.Connection, path: Path, env_id: str | None) -> str:
    """Create the schema if the database is empty; check it; return the store's env_id."""
    meta = read_meta(conn, path)
    if meta is None:
        assert env_id is not None  # checked by the caller
        conn.execute("BEGIN IMMEDIATE")
        try:
            meta = read_meta(conn, path)  # another process may have created it meanwhile
            if meta is None:
                for sql in SCHEMA:
                    conn.execute(sql)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("env_id", env_id), ("schema_version", str(SCHEMA_VERSION))],
                )
                meta = {"env_id": env_id, "schema_version": str(SCHEMA_VERSION)}
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this prefrl's {SCHEMA_VERSION}; upgrade prefrl"
        )
    if version < SCHEMA_VERSION and "env_id" in meta:
        _migrate(conn)
    stored = meta.get("env_id")
    if stored is None:
        raise StoreError(
            f"{path} is a damaged preference store (no env_id in its meta table). " + recovery_hint(path)
        )
    if env_id is not None and env_id != stored:
        raise StoreError(
            f"the preference store {path} holds env {stored!r}, not {env_id!r}; "
            f"use a new run directory for {env_id!r}"
        )
    return stored


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store of an older schema up to :data:`SCHEMA_VERSION`, in one transaction.

    1 -> 2: adds ``clips.checksum``, filled from each clip's current blobs, and the
    ``set_aside`` table. A clip damaged before this migration gets the checksum of its
    damaged bytes, so such damage can still only be caught by the decode check (an array
    that cannot be read or has the wrong shape), not by the checksum.

    2 -> 3: adds the ``undone`` table (answers taken back; no answer changes).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated the store meanwhile.
        version = int(dict(conn.execute("SELECT key, value FROM meta")).get("schema_version", "0"))
        if version < 2:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(clips)")}
            if "checksum" not in columns:
                conn.execute("ALTER TABLE clips ADD COLUMN checksum INTEGER")
            last = -1
            while True:
                rows = conn.execute(
                    "SELECT rowid, obs, actions, true_rewards, snapshots FROM clips "
                    "WHERE rowid > ? AND checksum IS NULL ORDER BY rowid LIMIT 256",
                    (last,),
                ).fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                conn.executemany(
                    "UPDATE clips SET checksum = ? WHERE rowid = ?",
                    [(clip_checksum(blobs), rowid) for rowid, *blobs in rows],
                )
            conn.execute(SET_ASIDE_TABLE)
        if version < 3:
            conn.execute(UNDONE_TABLE)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str] | None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        if tables - {"sqlite_sequence"}:
            raise StoreError(
                f"{path} is an SQLite database but not a prefrl preference store "
                f"(tables: {', '.join(sorted(tables))}); it was left as it is"
            )
        return None
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def store_file(path: str | os.PathLike[str]) -> Path:
    """The store file of a run directory, or ``path`` itself; it must exist.

    Raises:
        StoreError: there is no store there.
    """
    store_path = Path(path)
    if store_path.is_dir():
        store_path = store_path / STORE_NAME
    if not store_path.is_file():
        raise StoreError(
            f"there is no preference store at {store_path}; pass a run directory of a preference run"
        )
    return store_path
