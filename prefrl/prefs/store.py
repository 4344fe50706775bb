"""The preference store: the durable record of every query and every human (or oracle) label.

One SQLite file per run, ``RUN_DIR/prefs.sqlite``, shared by several processes (the agent
adds clips, the labeler writes queries and answers, the reward trainer reads labels). Each
process opens its own :class:`PreferenceStore`; SQLite's WAL journal lets readers and one
writer work at the same time, and ``synchronous=FULL`` makes every commit reach the disk
before the call that made it returns, so a label that was recorded survives a crash of any
process (or of the machine).

Tables::

    meta      (key, value)                 env_id, schema_version
    clips     (clip_id, env_id, agent_step, episode_step, length, true_return,
               obs, actions, true_rewards, snapshots, created_at, checksum)
    queries   (query_id, left_clip, right_clip, created_at, agent_step, oracle, selection,
               score, source)
    answers   (query_id, answer, answered_at, oracle, response_time)
    set_aside (query_id, clip_id, reason, set_aside_at)

Array columns hold ``np.save`` bytes, so dtype and shape survive; ``checksum`` is a CRC-32
of a clip's array blobs, checked on every read of them, because SQLite's own integrity
check does not look inside blobs. A damaged clip raises :class:`DamagedClipError`, and
:meth:`PreferenceStore.set_aside_damaged` sets the queries that use it aside: they stay in
the store (answers included) but are neither trained on nor counted as answered. Times are
Unix times in seconds (``time.time()``); ``response_time`` is in seconds.

:meth:`PreferenceStore.export` writes an export directory (``clips.npz`` and three CSV
files) and :meth:`PreferenceStore.import_from` reads one back (or another store's
``.sqlite`` file); importing is how labels move between runs and how a damaged store is
replaced.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sqlite3
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from prefrl.errors import EXIT_FAILED, PrefrlError
from prefrl.prefs.clips import Answer, Clip

# 1: the first schema. 2: clips.checksum and the set_aside table (see _migrate).
SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 30.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
_NPY_MAGIC = b"\x93NUMPY"
# Stay under SQLITE_MAX_VARIABLE_NUMBER of old SQLite builds (999).
_MAX_VARS = 900

_ANSWER_SET = frozenset(a.value for a in Answer)
_ANSWER_VALUES = ", ".join(f"'{a.value}'" for a in Answer)
# Queries set aside because a clip they compare is damaged: kept for the record, with their
# answers, but left out of every count and list of queries and labels.
_SET_ASIDE_TABLE = """CREATE TABLE IF NOT EXISTS set_aside (
        query_id INTEGER PRIMARY KEY REFERENCES queries(query_id),
        clip_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        set_aside_at REAL NOT NULL
    )"""
_IN_USE = "query_id NOT IN (SELECT query_id FROM set_aside)"
_SCHEMA = (
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
        answer TEXT NOT NULL CHECK (answer IN ({_ANSWER_VALUES})),
        answered_at REAL NOT NULL,
        oracle TEXT NOT NULL,
        response_time REAL
    )""",
    _SET_ASIDE_TABLE,
)

_CLIP_COLUMNS = (
    "clip_id, env_id, agent_step, episode_step, length, true_return, "
    "obs, actions, true_rewards, snapshots, created_at"
)
_INSERT_CLIP = (
    f"INSERT OR IGNORE INTO clips ({_CLIP_COLUMNS}, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What reading a clip needs, in the order _load_clip takes it.
_READ_CLIP = (
    "SELECT clip_id, env_id, agent_step, episode_step, length, obs, actions, true_rewards, "
    "snapshots, checksum FROM clips"
)
_QUERY_COLUMNS = "query_id, left_clip, right_clip, created_at, agent_step, oracle, selection, score"

# CSV headers of an export directory.
_CLIPS_CSV = (
    "clip_id",
    "env_id",
    "agent_step",
    "episode_step",
    "length",
    "true_return",
    "has_snapshots",
    "created_at",
)
_QUERIES_CSV = (
    "query_id",
    "left_clip_id",
    "right_clip_id",
    "created_at",
    "agent_step",
    "oracle",
    "selection",
    "score",
    "source",
)
_ANSWERS_CSV = ("query_id", "answer", "answered_at", "oracle", "response_time")
_ARRAYS = ("obs", "actions", "true_rewards", "snapshots")


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


@dataclass(frozen=True)
class SetAsideReport:
    """What :meth:`PreferenceStore.set_aside_damaged` found and did.

    Attributes:
        clips_checked: clips read and checked.
        damaged_clips: ids of the damaged clips, in the order they were stored.
        queries_set_aside: queries set aside now (0 when repeated).
        answers_set_aside: of those, the answered ones (no longer counted as answered).
        total_set_aside: queries set aside in the store, now and before.
        answered: answers still counted (:meth:`PreferenceStore.num_answered`).
    """

    clips_checked: int
    damaged_clips: tuple[str, ...]
    queries_set_aside: int
    answers_set_aside: int
    total_set_aside: int
    answered: int


@dataclass(frozen=True)
class Query:
    """A pair of clips put to a labeler.

    Attributes:
        query_id: the store's id of the query (increasing in creation order).
        left_clip_id, right_clip_id: the clips shown on the left and on the right.
        created_at: Unix time (s) the query was made.
        agent_step: the agent's env-step count when the query was made.
        oracle: who the query was meant for (e.g. ``"human"``, ``"synthetic"``).
        selection: how the pair was chosen (e.g. ``"random"``, ``"disagreement"``).
        score: the selection's score of the pair (e.g. ensemble disagreement), if any.
    """

    query_id: int
    left_clip_id: str
    right_clip_id: str
    created_at: float
    agent_step: int
    oracle: str
    selection: str
    score: float | None


@dataclass(frozen=True)
class Label:
    """An answered query.

    Attributes:
        query_id, left_clip_id, right_clip_id: as in :class:`Query`.
        answer: what the labeler said.
        mu: probability that the left clip is preferred (``answer.mu``: 1.0, 0.0, 0.5, or
            None for answers that are not trained on).
        agent_step: the agent's env-step count when the query was made.
    """

    query_id: int
    left_clip_id: str
    right_clip_id: str
    answer: Answer
    mu: float | None = field(init=False)
    agent_step: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", self.answer.mu)


@dataclass(frozen=True)
class ImportReport:
    """What :meth:`PreferenceStore.import_from` added.

    Attributes:
        source: the export directory or ``.sqlite`` file imported (absolute path).
        clips_added, queries_added, answers_added: rows added to this store.
        answers_conflicting: source answers to queries this store had already answered
            differently; this store's answer was kept.
    """

    source: str
    clips_added: int
    queries_added: int
    answers_added: int
    answers_conflicting: int = 0


class PreferenceStore:
    """The preference store of one run: clips, queries and answers in one SQLite file.

    ``PreferenceStore(path, env_id)`` opens the store at ``path``, creating it if the file
    does not exist (``env_id`` is then required and recorded). An existing store is checked
    before use (``PRAGMA quick_check``) and never recreated or overwritten; a store of an
    older schema is migrated in place (see ``_migrate``).

    One object holds one SQLite connection: use it from the thread that opened it, and let
    each process open its own object. Every write method commits (durably) before it
    returns; readers in other processes see a write as soon as it returns.

    Raises:
        StoreError: ``path`` is not an SQLite database, is damaged, is another program's
            database, was written by a newer prefrl, holds another env's data than
            ``env_id``, or does not exist and ``env_id`` is None.
    """

    def __init__(self, path: str | os.PathLike[str], env_id: str | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a directory; a preference store is a file (RUN_DIR/prefs.sqlite)"
            )
        exists = self.path.exists()
        if not exists and env_id is None:
            raise StoreError(f"there is no preference store at {self.path}; pass env_id to create one")
        if not exists and not self.path.parent.is_dir():
            raise StoreError(f"cannot create a preference store in {self.path.parent}: no such directory")
        if exists and self.path.stat().st_size > 0:
            _check_existing(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # Refuse another program's database before anything (even the journal mode) is written.
            if _read_meta(conn, self.path) is None and env_id is None:
                raise StoreError(f"{self.path} holds no preference store yet; pass env_id to create one")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: SQLite could not use its WAL journal here (journal_mode={mode}); "
                    "put the run directory on a local file system"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.env_id: str = _open_schema(conn, self.path, env_id)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Everything written is already committed."""
        self._conn.close()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.path)!r}, env_id={self.env_id!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        conn = self._conn
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so the
        # transaction cannot fail half-way because another process started writing.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every statement in it sees the same state of the store."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- clips ------------------------------------------------------------------------

    def add_clip(self, clip: Clip) -> str:
        """Store ``clip`` (a no-op if a clip with its ``clip_id`` is stored) and return its id.

        Raises:
            StoreError: the clip comes from another env than the store's, or its arrays do
                not all have ``clip.length`` rows.
        """
        row = self._clip_row(clip)
        self._conn.execute(_INSERT_CLIP, row)
        return clip.clip_id

    def get_clip(self, clip_id: str) -> Clip:
        """The stored clip ``clip_id``, arrays with the dtype and shape they were stored with.

        Raises:
            KeyError: no clip ``clip_id`` in the store.
            DamagedClipError: the stored clip is damaged.
        """
        return self.get_clips([clip_id])[clip_id]

    def recent_clips(self, num: int) -> list[Clip]:
        """The ``num`` clips stored last, oldest first, leaving out those set aside: what a
        labeler that starts again (a restart, a resume) pairs from until new clips arrive.

        Raises:
            DamagedClipError: one of them is damaged (see :meth:`get_clips`).
        """
        rows = self._conn.execute(
            "SELECT clip_id FROM clips WHERE clip_id NOT IN (SELECT clip_id FROM set_aside) "
            "ORDER BY rowid DESC LIMIT ?",
            (num,),
        ).fetchall()
        ids = [row[0] for row in reversed(rows)]
        clips = self.get_clips(ids)
        return [clips[i] for i in ids]

    def get_clips(self, clip_ids: Iterable[str]) -> dict[str, Clip]:
        """The stored clips ``clip_ids`` by id (one SELECT per 900 ids), each checked
        against its checksum, and its arrays for readability and shape.

        Raises:
            KeyError: some of the ids are not in the store (the message names them).
            DamagedClipError: some of the clips are damaged (the message names them, the
                queries that use them, and the command that sets those aside).
        """
        wanted = list(dict.fromkeys(clip_ids))
        clips: dict[str, Clip] = {}
        damaged: dict[str, str] = {}
        for i in range(0, len(wanted), _MAX_VARS):
            chunk = wanted[i : i + _MAX_VARS]
            rows = self._conn.execute(f"{_READ_CLIP} WHERE clip_id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in rows:
                try:
                    clips[row[0]] = _load_clip(row)
                except _Damaged as e:
                    damaged[row[0]] = str(e)
        if damaged:  # named in the order they were asked for
            raise self._damaged_error({c: damaged[c] for c in wanted if c in damaged})
        missing = [c for c in wanted if c not in clips]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise KeyError(f"no clip {shown} in the preference store {self.path}")
        return clips

    def _damaged_error(self, damaged: dict[str, str]) -> DamagedClipError:
        """The error naming the damaged clips ``damaged`` (id -> reason) and their queries."""
        ids = list(damaged)
        queries: list[int] = []
        for i in range(0, len(ids), _MAX_VARS // 2):
            chunk = ids[i : i + _MAX_VARS // 2]
            marks = ", ".join("?" * len(chunk))
            queries += [
                int(row[0])
                for row in self._conn.execute(
                    f"SELECT query_id FROM queries WHERE (left_clip IN ({marks}) OR right_clip IN "
                    f"({marks})) AND {_IN_USE} ORDER BY query_id",
                    chunk + chunk,
                )
            ]
        queries.sort()
        shown = ", ".join(f"{cid} ({damaged[cid]})" for cid in ids[:3])
        if len(ids) > 3:
            shown += f" and {len(ids) - 3} more"
        what = f"the preference store {self.path} holds {'a damaged clip' if len(ids) == 1 else 'damaged clips'} {shown}"
        if not queries:
            message = (
                f"{what}; no query in use compares {'it' if len(ids) == 1 else 'them'}, so nothing needs it"
            )
        else:
            qs = ", ".join(map(str, queries[:10])) + (
                f" and {len(queries) - 10} more" if len(queries) > 10 else ""
            )
            message = (
                f"{what}, used by {'query' if len(queries) == 1 else 'queries'} {qs}; run "
                f"`prefrl repair {self.path.parent}` to set {'it' if len(queries) == 1 else 'them'} "
                "aside (answers are kept but no longer trained on or counted, so those labels are asked again)"
            )
        return DamagedClipError(message, ids, queries)

    def _damaged_clips(self) -> tuple[int, dict[str, str]]:
        """Read and check every stored clip: (clips checked, damaged clip id -> reason)."""
        checked = 0
        damaged: dict[str, str] = {}
        last = -1
        while True:
            # Batches by rowid keep memory bounded however large the store is.
            rows = self._conn.execute(
                _READ_CLIP.replace("SELECT ", "SELECT rowid, ", 1)
                + " WHERE rowid > ? ORDER BY rowid LIMIT 256",
                (last,),
            ).fetchall()
            if not rows:
                return checked, damaged
            for rowid, *row in rows:
                last = rowid
                checked += 1
                try:
                    _load_clip(tuple(row))
                except _Damaged as e:
                    damaged[row[0]] = str(e)

    def _clip_row(self, clip: Clip) -> tuple[Any, ...]:
        if clip.env_id != self.env_id:
            raise StoreError(
                f"clip {clip.clip_id} comes from env {clip.env_id!r}, but the store {self.path} "
                f"holds env {self.env_id!r}"
            )
        n = clip.length
        arrays = {"obs": clip.obs, "actions": clip.actions, "snapshots": clip.snapshots}
        for name, array in arrays.items():
            if array is not None and len(array) != n:
                raise StoreError(
                    f"clip {clip.clip_id}: {name} has {len(array)} rows but true_rewards has {n}"
                )
        blobs = (
            _encode(clip.obs),
            _encode(clip.actions),
            _encode(clip.true_rewards),
            None if clip.snapshots is None else _encode(clip.snapshots),
        )
        return (
            clip.clip_id,
            clip.env_id,
            int(clip.agent_step),
            int(clip.episode_step),
            n,
            clip.true_return,
            *blobs,
            time.time(),
            _checksum(blobs),
        )

    # -- queries and answers ----------------------------------------------------------

    def add_query(
        self,
        left: Clip,
        right: Clip,
        *,
        agent_step: int,
        oracle: str,
        selection: str,
        score: float | None = None,
    ) -> int:
        """Store both clips (if new) and a query comparing them, in one transaction.

        Args:
            left, right: the clips shown on the left and on the right.
            agent_step: the agent's env-step count now.
            oracle: who is to answer (e.g. ``"human"``, ``"synthetic"``).
            selection: how the pair was chosen (e.g. ``"random"``, ``"disagreement"``).
            score: the selection's score of the pair (e.g. ensemble disagreement).

        Returns:
            The new query's id (ids increase in creation order).

        Raises:
            StoreError: the two clips are the same clip, or a clip is from another env or
                malformed (see :meth:`add_clip`).
        """
        if left.clip_id == right.clip_id:
            raise StoreError(f"a query compares two different clips; both are {left.clip_id}")
        rows = [self._clip_row(left), self._clip_row(right)]
        with self._write() as conn:
            conn.executemany(_INSERT_CLIP, rows)
            cur = conn.execute(
                "INSERT INTO queries (left_clip, right_clip, created_at, agent_step, oracle, selection, "
                "score) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    left.clip_id,
                    right.clip_id,
                    time.time(),
                    int(agent_step),
                    oracle,
                    selection,
                    None if score is None else float(score),
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record_answer(
        self,
        query_id: int,
        answer: Answer,
        *,
        oracle: str,
        response_time: float | None = None,
    ) -> None:
        """Record the answer to query ``query_id``; it is on disk when this returns.

        Args:
            query_id: a query of this store.
            answer: what the labeler said (an :class:`Answer` or its string value).
            oracle: who answered (e.g. ``"human"``, ``"synthetic"``).
            response_time: seconds the labeler took, if known.

        Raises:
            StoreError: there is no query ``query_id``, or it has been answered already (a
                recorded answer is never overwritten).
            ValueError: ``answer`` is not an :class:`Answer` value.
        """
        answer = Answer(answer)
        try:
            # In autocommit mode one INSERT is one transaction, committed (and, with
            # synchronous=FULL, synced to disk) before execute returns.
            self._conn.execute(
                "INSERT INTO answers (query_id, answer, answered_at, oracle, response_time) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    int(query_id),
                    answer.value,
                    time.time(),
                    oracle,
                    None if response_time is None else float(response_time),
                ),
            )
        except sqlite3.IntegrityError:
            row = self._conn.execute(
                "SELECT answer, oracle FROM answers WHERE query_id = ?", (int(query_id),)
            ).fetchone()
            if row is not None:
                raise StoreError(
                    f"query {query_id} was already answered {row[0]!r} by {row[1]!r}; "
                    "a recorded answer is never overwritten"
                ) from None
            raise StoreError(f"there is no query {query_id} in the preference store {self.path}") from None

    def pending_queries(self) -> list[Query]:
        """Queries without an answer, oldest first (including ones offered before a crash);
        set-aside queries are left out."""
        rows = self._conn.execute(
            "SELECT q.query_id, q.left_clip, q.right_clip, q.created_at, q.agent_step, q.oracle, "
            "q.selection, q.score FROM queries q LEFT JOIN answers a ON a.query_id = q.query_id "
            f"WHERE a.query_id IS NULL AND q.{_IN_USE} ORDER BY q.query_id"
        )
        return [Query(*row) for row in rows]

    def num_answered(self) -> int:
        """Number of answers, of every kind: ``cant_tell`` and ``skipped`` cost the labeler's
        time as well, so they count toward the label budget. Answers to set-aside queries do
        not count (those labels go back to the budget)."""
        return int(self._conn.execute(f"SELECT COUNT(*) FROM answers WHERE {_IN_USE}").fetchone()[0])

    def answer_counts(self) -> dict[Answer, int]:
        """Number of answers of each kind, set-aside queries left out; every :class:`Answer`
        is a key (zeros included)."""
        counts = dict.fromkeys(Answer, 0)
        for value, n in self._conn.execute(
            f"SELECT answer, COUNT(*) FROM answers WHERE {_IN_USE} GROUP BY answer"
        ):
            counts[Answer(value)] = int(n)
        return counts

    def labels(self, after_query_id: int = 0) -> list[Label]:
        """Answered queries with ``query_id > after_query_id``, in query_id order, set-aside
        queries left out.

        Includes answers that are not trained on (``mu`` None); see :meth:`trainable_labels`.
        """
        rows = self._conn.execute(
            "SELECT q.query_id, q.left_clip, q.right_clip, a.answer, q.agent_step "
            "FROM queries q JOIN answers a ON a.query_id = q.query_id "
            f"WHERE q.query_id > ? AND q.{_IN_USE} ORDER BY q.query_id",
            (int(after_query_id),),
        )
        return [Label(qid, left, right, Answer(ans), step) for qid, left, right, ans, step in rows]

    def trainable_labels(self, after_query_id: int = 0) -> list[Label]:
        """:meth:`labels` whose ``mu`` is not None (left, right and equal answers)."""
        return [label for label in self.labels(after_query_id) if label.mu is not None]

    # -- damage -----------------------------------------------------------------------

    def verify(self, deep: bool = False) -> list[str]:
        """Check the store file and, if ``deep``, every stored clip; return the ids of the
        damaged clips (in the order they were stored; always empty unless ``deep``).

        ``deep`` runs SQLite's full ``integrity_check`` instead of ``quick_check`` and reads
        every clip as :meth:`get_clips` does (checksum, readability, shapes); it changes
        nothing. :meth:`set_aside_damaged` sets aside the queries of the clips it returns.

        Raises:
            StoreError: the file itself is damaged (the message says how to go on).
        """
        _check_existing(self.path, "integrity_check" if deep else "quick_check")
        if not deep:
            return []
        with self._snapshot():
            return list(self._damaged_clips()[1])

    def set_aside_damaged(self) -> SetAsideReport:
        """Check every stored clip and set aside each query that compares a damaged one.

        A set-aside query stays in the store with its answer (and the damaged clip), for the
        record, in the ``set_aside`` table with the damaged clip and the reason; it is left
        out of :meth:`pending_queries`, :meth:`labels`, :meth:`trainable_labels`,
        :meth:`num_answered` and :meth:`answer_counts`, so its label goes back to the run's
        budget and is asked again with other clips. Nothing is deleted; repeating the call
        sets nothing more aside.
        """
        with self._snapshot():
            checked, damaged = self._damaged_clips()
        with self._write() as conn:
            before = self.num_answered()
            added = 0
            now = time.time()
            for cid, reason in damaged.items():
                added += conn.execute(
                    "INSERT OR IGNORE INTO set_aside (query_id, clip_id, reason, set_aside_at) "
                    "SELECT query_id, ?, ?, ? FROM queries WHERE left_clip = ? OR right_clip = ?",
                    (cid, f"clip {cid} is damaged: {reason}", now, cid, cid),
                ).rowcount
            answered = self.num_answered()
            total = int(conn.execute("SELECT COUNT(*) FROM set_aside").fetchone()[0])
        return SetAsideReport(checked, tuple(damaged), added, before - answered, total, answered)

    def set_aside_queries(self) -> dict[int, str]:
        """The set-aside queries: query_id -> why it was set aside, in query_id order."""
        rows = self._conn.execute("SELECT query_id, reason FROM set_aside ORDER BY query_id")
        return {int(qid): reason for qid, reason in rows}

    # -- export and import ------------------------------------------------------------

    def export(self, directory: str | os.PathLike[str]) -> Path:
        """Write the whole store to ``directory`` (created if needed) and return its path.

        Files (existing ones are replaced)::

            clips.npz     arrays keyed "<clip_id>.obs", "<clip_id>.actions",
                          "<clip_id>.true_rewards", "<clip_id>.snapshots" (when captured)
            clips.csv     clip_id, env_id, agent_step, episode_step, length, true_return,
                          has_snapshots (0/1), created_at
            queries.csv   query_id, left_clip_id, right_clip_id, created_at, agent_step,
                          oracle, selection, score, source
            answers.csv   query_id, answer, answered_at, oracle, response_time

        Times are Unix times in seconds, response_time is in seconds, empty cells are
        missing values. The export is one consistent state of the store, even while other
        processes write to it.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written: list[tuple[Path, Path]] = []
        try:
            with self._snapshot() as conn:
                npz = _partial(out / "clips.npz")
                written.append((npz, out / "clips.npz"))
                with zipfile.ZipFile(npz, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                    rows = conn.execute(
                        "SELECT clip_id, obs, actions, true_rewards, snapshots FROM clips ORDER BY rowid"
                    )
                    for cid, *blobs in rows:
                        for name, blob in zip(_ARRAYS, blobs, strict=True):
                            if blob is not None:
                                # The blobs are .npy files already, which is what np.savez stores.
                                zf.writestr(f"{cid}.{name}.npy", blob)
                _sync(npz)
                tables = (
                    (
                        "clips.csv",
                        _CLIPS_CSV,
                        "SELECT clip_id, env_id, agent_step, episode_step, length, true_return, "
                        "snapshots IS NOT NULL, created_at FROM clips ORDER BY rowid",
                    ),
                    (
                        "queries.csv",
                        _QUERIES_CSV,
                        f"SELECT {_QUERY_COLUMNS}, source FROM queries ORDER BY query_id",
                    ),
                    (
                        "answers.csv",
                        _ANSWERS_CSV,
                        "SELECT query_id, answer, answered_at, oracle, response_time FROM answers "
                        "ORDER BY query_id",
                    ),
                )
                for name, header, sql in tables:
                    tmp = _partial(out / name)
                    written.append((tmp, out / name))
                    with open(tmp, "w", newline="", encoding="utf-8") as f:
                        writer = csv.writer(f)
                        writer.writerow(header)
                        writer.writerows(["" if v is None else v for v in row] for row in conn.execute(sql))
                    _sync(tmp)
            # The store only grows, so replacing the files in this order (clips before the
            # queries that use them, queries before their answers) leaves a consistent export
            # even if the process dies between two replacements.
            for tmp, final in written:
                os.replace(tmp, final)
        finally:
            for tmp, _ in written:
                tmp.unlink(missing_ok=True)
        return out

    def import_from(self, source: str | os.PathLike[str]) -> ImportReport:
        """Copy the clips, queries and answers of ``source`` into this store, in one transaction.

        ``source`` is an export directory (see :meth:`export`) or another store's ``.sqlite``
        file. Clips are matched by clip_id; queries get new ids here, their ``source`` column
        records ``"<source path>#<query_id there>"``, and a query this store already holds
        (same clips, same creation time) is not copied again, so importing a source twice
        adds nothing the second time. An answer the source has for a query this store holds
        unanswered is added; an answer here is never replaced.

        Raises:
            StoreError: ``source`` is missing, not an export or a preference store, holds
                clips of another env (nothing is imported then), refers to clips or queries it
                does not contain, or is this store itself.
        """
        src = Path(source)
        if not src.exists():
            raise StoreError(f"cannot import {src}: no such file or directory")
        if src.is_file() and self.path.exists() and os.path.samefile(src, self.path):
            raise StoreError(f"cannot import the store {self.path} into itself")
        label = str(src.resolve())
        if src.is_dir():
            return self._import_export_dir(src, label)
        with PreferenceStore(src) as other, other._snapshot() as conn:
            env_ids = {row[0] for row in conn.execute("SELECT DISTINCT env_id FROM clips")}
            self._check_env_ids(env_ids, src)
            queries = [
                _SourceQuery(*row)
                for row in conn.execute(f"SELECT {_QUERY_COLUMNS} FROM queries ORDER BY query_id")
            ]
            answers = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT query_id, answer, answered_at, oracle, response_time FROM answers"
                )
            }
            clip_rows = conn.execute(f"SELECT {_CLIP_COLUMNS}, checksum FROM clips ORDER BY rowid")
            return self._import(label, clip_rows, queries, answers)

    def _import_export_dir(self, src: Path, label: str) -> ImportReport:
        names = ("clips.npz", "clips.csv", "queries.csv", "answers.csv")
        missing = [n for n in names if not (src / n).is_file()]
        if missing:
            raise StoreError(
                f"{src} is not a preference-store export (missing {', '.join(missing)}); "
                "pass a directory written by PreferenceStore.export or a .sqlite store"
            )
        clips_meta = _read_csv(src / "clips.csv", _CLIPS_CSV)
        self._check_env_ids({row["env_id"] for row in clips_meta}, src)
        queries = []
        for i, row in enumerate(_read_csv(src / "queries.csv", _QUERIES_CSV), start=1):
            with _csv_row(src / "queries.csv", i):
                queries.append(
                    _SourceQuery(
                        int(row["query_id"]),
                        row["left_clip_id"],
                        row["right_clip_id"],
                        float(row["created_at"]),
                        int(row["agent_step"]),
                        row["oracle"],
                        row["selection"],
                        _opt_float(row["score"]),
                    )
                )
        answers: dict[int, tuple[Any, ...]] = {}
        for i, row in enumerate(_read_csv(src / "answers.csv", _ANSWERS_CSV), start=1):
            with _csv_row(src / "answers.csv", i):
                answers[int(row["query_id"])] = (
                    row["answer"],
                    float(row["answered_at"]),
                    row["oracle"],
                    _opt_float(row["response_time"]),
                )
        try:
            zf = zipfile.ZipFile(src / "clips.npz")
        except zipfile.BadZipFile as e:
            raise StoreError(f"{src / 'clips.npz'} is not a readable .npz file ({e})") from None
        with zf:
            members = set(zf.namelist())

            def clip_rows() -> Iterator[tuple[Any, ...]]:
                for i, row in enumerate(clips_meta, start=1):
                    cid = row["clip_id"]
                    blobs: list[bytes | None] = []
                    for name in _ARRAYS:
                        member = f"{cid}.{name}.npy"
                        if member in members:
                            blobs.append(zf.read(member))
                        elif name == "snapshots" and row["has_snapshots"] in ("0", "", "False"):
                            blobs.append(None)
                        else:
                            raise StoreError(
                                f"{src / 'clips.npz'} has no array {cid}.{name} (clips.csv lists it)"
                            )
                    with _csv_row(src / "clips.csv", i):
                        values = (
                            cid,
                            row["env_id"],
                            int(row["agent_step"]),
                            int(row["episode_step"]),
                            int(row["length"]),
                            float(row["true_return"]),
                            *blobs,
                            float(row["created_at"]),
                            None,  # an export carries no checksum; the arrays are checked as read
                        )
                    yield values

            return self._import(label, clip_rows(), queries, answers)

    def _check_env_ids(self, env_ids: set[str], src: Path) -> None:
        other = sorted(env_ids - {self.env_id})
        if other:
            raise StoreError(
                f"{src} holds clips of env {', '.join(map(repr, other))}, but the store {self.path} "
                f"holds env {self.env_id!r}; nothing was imported"
            )

    def _import(
        self,
        label: str,
        clip_rows: Iterable[tuple[Any, ...]],
        queries: list[_SourceQuery],
        answers: dict[int, tuple[Any, ...]],
    ) -> ImportReport:
        query_ids = {q.query_id for q in queries}
        orphans = sorted(set(answers) - query_ids)
        if orphans:
            raise StoreError(f"{label} has answers to queries it does not contain: {orphans[:5]}")
        for qid, (answer, *_) in answers.items():
            if answer not in _ANSWER_SET:
                raise StoreError(
                    f"{label}: query {qid} has the answer {answer!r}, which is not an Answer value"
                )
        clips_added = queries_added = answers_added = conflicting = 0
        with self._write() as conn:
            for source_row in clip_rows:
                row, expected = tuple(source_row[:11]), source_row[11]
                checksum = _checksum(row[6:10])
                if expected is not None and expected != checksum:
                    raise StoreError(
                        f"{label}: clip {row[0]} is damaged (its arrays do not match their "
                        "checksum); nothing was imported"
                    )
                _check_clip_row(row, label)
                if row[1] != self.env_id:  # the caller checked; this guards the stream itself
                    self._check_env_ids({row[1]}, Path(label))
                clips_added += conn.execute(_INSERT_CLIP, (*row, checksum)).rowcount
            for q in queries:
                found = conn.execute(
                    "SELECT query_id FROM queries WHERE left_clip = ? AND right_clip = ? AND created_at = ?",
                    (q.left_clip_id, q.right_clip_id, q.created_at),
                ).fetchone()
                if found is not None:
                    qid = int(found[0])
                else:
                    try:
                        cur = conn.execute(
                            "INSERT INTO queries (left_clip, right_clip, created_at, agent_step, oracle, "
                            "selection, score, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (*q[1:], f"{label}#{q.query_id}"),
                        )
                    except sqlite3.IntegrityError:
                        raise StoreError(
                            f"{label}: query {q.query_id} compares clips {q.left_clip_id} and "
                            f"{q.right_clip_id}, which neither it nor {self.path} holds; nothing was imported"
                        ) from None
                    assert cur.lastrowid is not None
                    qid = cur.lastrowid
                    queries_added += 1
                if q.query_id in answers:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO answers (query_id, answer, answered_at, oracle, "
                        "response_time) VALUES (?, ?, ?, ?, ?)",
                        (qid, *answers[q.query_id]),
                    )
                    if cur.rowcount:
                        answers_added += 1
                    else:
                        ours = conn.execute(
                            "SELECT answer FROM answers WHERE query_id = ?", (qid,)
                        ).fetchone()
                        conflicting += int(ours[0] != answers[q.query_id][0])
        return ImportReport(label, clips_added, queries_added, answers_added, conflicting)


class _SourceQuery(NamedTuple):
    """A query of an import source (its columns in the order of the queries table)."""

    query_id: int
    left_clip_id: str
    right_clip_id: str
    created_at: float
    agent_step: int
    oracle: str
    selection: str
    score: float | None


# -- opening --------------------------------------------------------------------------


def _recovery_hint(path: Path) -> str:
    return (
        f"Nothing was changed. To go on, keep {path.name} aside and either start a new run "
        "directory, or create a new store there and restore the labels from an export or an "
        "intact copy of the store with PreferenceStore(NEW_PATH, ENV_ID).import_from(EXPORT_DIR "
        "or COPY.sqlite); the sqlite3 tool's '.recover' command may salvage rows from a damaged file."
    )


def _check_existing(path: Path, pragma: str = "quick_check") -> None:
    """Refuse a file that is not an intact SQLite database, without writing to it.

    ``pragma`` is ``quick_check`` or the slower, fuller ``integrity_check``; neither looks
    inside blobs (clips have their own checksums for that).
    """
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not an SQLite database (it does not start with the SQLite header). "
            + _recovery_hint(path)
        )
    # A read-only connection never writes to the database file (it cannot even checkpoint
    # the WAL into it), so a damaged file stays exactly as it was found.
    uri = "file:" + urllib.parse.quote(path.resolve().as_posix()) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.OperationalError as e:
        raise StoreError(f"cannot open the preference store {path}: {e}") from None
    try:
        problems = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.OperationalError as e:  # busy, locked, I/O: not evidence of damage
        raise StoreError(f"cannot read the preference store {path}: {e}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"the preference store {path} is damaged ({e}). " + _recovery_hint(path)) from None
    finally:
        conn.close()
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise StoreError(
            f"the preference store {path} is damaged ({pragma}: {shown}). " + _recovery_hint(path)
        )


def _open_schema(conn: sqlite3.Connection, path: Path, env_id: str | None) -> str:
    """Create the schema if the database is empty; check it; return the store's env_id."""
    meta = _read_meta(conn, path)
    if meta is None:
        assert env_id is not None  # checked by the caller
        conn.execute("BEGIN IMMEDIATE")
        try:
            meta = _read_meta(conn, path)  # another process may have created it meanwhile
            if meta is None:
                for sql in _SCHEMA:
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
            f"{path} is a damaged preference store (no env_id in its meta table). " + _recovery_hint(path)
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
                    [(_checksum(blobs), rowid) for rowid, *blobs in rows],
                )
            conn.execute(_SET_ASIDE_TABLE)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str] | None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        if tables - {"sqlite_sequence"}:
            raise StoreError(
                f"{path} is an SQLite database but not a prefrl preference store "
                f"(tables: {', '.join(sorted(tables))}); it was left as it is"
            )
        return None
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


# -- arrays ---------------------------------------------------------------------------


def _encode(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


# .npy header bytes -> (dtype, shape, fortran_order, data offset). np.load spends ~60 µs
# parsing each header; clips of one run share a handful of headers, and training reads
# thousands of arrays at a time.
_HEADERS: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], bool, int]] = {}


def _decode(blob: bytes) -> np.ndarray:
    """The array of an ``np.save`` blob (a writable copy, dtype and shape as saved)."""
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


def _checksum(blobs: Iterable[bytes | None]) -> int:
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


class _Damaged(Exception):
    """A stored clip is not what was stored; the message is the reason, in our own words."""


def _load_clip(row: tuple[Any, ...]) -> Clip:
    """The clip of a row of ``_READ_CLIP``, checked.

    Raises:
        _Damaged: the blobs do not match the checksum, an array cannot be read, or an
            array has not ``length`` rows.
    """
    cid, env_id, agent_step, episode_step, length, *blobs, checksum = row
    if checksum is not None and _checksum(blobs) != checksum:
        raise _Damaged("its arrays do not match their checksum")
    arrays: dict[str, np.ndarray | None] = {}
    for name, blob in zip(_ARRAYS, blobs, strict=True):
        if blob is None:
            if name != "snapshots":
                raise _Damaged(f"its {name} array is missing")
            arrays[name] = None
            continue
        try:
            array = _decode(blob)
        except Exception:
            # numpy's own message may advise loading the bytes unsafely; it never reaches a user.
            raise _Damaged(f"its {name} array cannot be read") from None
        if array.ndim == 0 or len(array) != length:
            raise _Damaged(f"its {name} array has shape {array.shape}, not {length} rows")
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


def _check_clip_row(row: tuple[Any, ...], label: str) -> None:
    """Check that an imported clip's arrays decode and have ``length`` rows."""
    cid, length = row[0], row[4]
    for name, blob in zip(_ARRAYS, row[6:10], strict=True):
        if blob is None:
            if name != "snapshots":
                raise StoreError(f"{label}: clip {cid} has no {name}")
            continue
        try:
            array = _decode(blob)
        except Exception:
            # Not numpy's message: it may advise loading the bytes unsafely.
            raise StoreError(f"{label}: clip {cid}'s {name} is not a readable array") from None
        if array.ndim == 0 or len(array) != length:
            raise StoreError(f"{label}: clip {cid}'s {name} has shape {array.shape}, not {length} rows")


# -- files ----------------------------------------------------------------------------


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise StoreError(
                f"{path} lacks the columns {', '.join(missing)}; is it a preference-store export?"
            )
        return list(reader)


@contextlib.contextmanager
def _csv_row(path: Path, row: int) -> Iterator[None]:
    """Turn a bad cell into a StoreError naming the file and the data row (1 = first)."""
    try:
        yield
    except (ValueError, KeyError, TypeError) as e:
        if isinstance(e, StoreError):
            raise
        raise StoreError(f"{path}, data row {row}: {e}") from None


def _opt_float(cell: str) -> float | None:
    return None if cell == "" else float(cell)
