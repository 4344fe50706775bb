"""The preference store: the durable record of every query and every human (or oracle) label.

One SQLite file per run, ``RUN_DIR/prefs.sqlite``, shared by several processes (the agent
adds clips, the labeler writes queries and answers, the reward trainer reads labels). Each
process opens its own :class:`PreferenceStore`; SQLite's WAL journal lets readers and one
writer work at the same time, and ``synchronous=FULL`` makes every commit reach the disk
before the call that made it returns, so a label that was recorded survives a crash of any
process (or of the machine).

The tables, the checks before a file is opened and the migrations of older schemas are in
:mod:`prefrl.prefs.schema`. Array columns hold ``np.save`` bytes, so dtype and shape survive; ``checksum`` is a CRC-32
of a clip's array blobs, checked on every read of them, because SQLite's own integrity
check does not look inside blobs (:mod:`prefrl.prefs.blobs`). A damaged clip raises :class:`DamagedClipError`, and
:meth:`PreferenceStore.set_aside_damaged` sets the queries that use it aside: they stay in
the store (answers included) but are neither trained on nor counted as answered. Times are
Unix times in seconds (``time.time()``); ``response_time`` is in seconds.

The records the store hands out (:class:`Query`, :class:`Label`, :class:`SetAsideReport`)
are defined in :mod:`prefrl.prefs.records`, and found here too; reading every clip for
damage and the error that names damaged clips are in :mod:`prefrl.prefs.damage`.

:mod:`prefrl.prefs.export` writes a store's export (``prefrl export``) and
:mod:`prefrl.prefs.exchange` merges an export or another store into it (``prefrl import``):
how labels move between runs and how a damaged store is replaced.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prefrl.prefs.blobs import Damaged, clip_checksum, encode, load_clip
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.damage import damaged_clips, damaged_error
from prefrl.prefs.errors import DamagedClipError, StoreError
from prefrl.prefs.records import Label, Query, SetAsideReport
from prefrl.prefs.schema import (
    BUSY_TIMEOUT_S,
    CLIP_IN_USE,
    IN_USE,
    INSERT_CLIP,
    MAX_VARS,
    READ_CLIP,
    SCHEMA_VERSION,
    check_file,
    open_schema,
    read_meta,
    read_only_uri,
    recovery_hint,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "SCHEMA_VERSION",
    "DamagedClipError",
    "Label",
    "PreferenceStore",
    "Query",
    "SetAsideReport",
    "StoreError",
    "is_busy",
    "is_read_only",
]


def is_busy(err: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (worth trying again)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:  # raised before SQLite answered (no code): judged by the message
        return "locked" in str(err) or "busy" in str(err)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def is_read_only(err: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused to write because the store is read-only to this process."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:
        return "readonly" in str(err)
    return code & 0xFF == sqlite3.SQLITE_READONLY


class PreferenceStore:
    """The preference store of one run: clips, queries and answers in one SQLite file.

    ``PreferenceStore(path, env_id)`` opens the store at ``path``, creating it if the file
    does not exist (``env_id`` is then required and recorded). An existing store is checked
    before use (``PRAGMA quick_check``) and never recreated or overwritten; a store of an
    older schema is migrated in place (see :func:`prefrl.prefs.schema.open_schema`).
    A store in a directory this process cannot write (a read-only mount, another
    person's run) is opened read-only: it can be read, and a write to it fails.

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
            check_file(self.path)
        # a store on a medium that cannot be written (a shared or archived run) is read as it is
        writable = not exists or os.access(self.path.parent, os.W_OK)
        if writable:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        else:
            uri = read_only_uri(self.path)
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # Refuse another program's database before anything (even the journal mode) is written.
            if read_meta(conn, self.path) is None and env_id is None:
                raise StoreError(
                    f"{self.path} holds no labels: it is an empty database (the run stopped while its "
                    f"store was being made, or the file was emptied). {recovery_hint(self.path)}"
                )
            mode = conn.execute(
                "PRAGMA journal_mode = WAL" if writable else "PRAGMA journal_mode"
            ).fetchone()[0]
            if writable and str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: SQLite could not use its WAL journal here (journal_mode={mode}); "
                    "put the run directory on a local file system"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.env_id: str = open_schema(conn, self.path, env_id)
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

    def wait_when_busy(self, seconds: float) -> None:
        """How long a write waits for another process's write lock before it fails with
        ``sqlite3.OperationalError`` ("database is locked"): ``BUSY_TIMEOUT_S`` from
        opening. A caller that must stay responsive (the labelling window) waits less and
        tries again later."""
        self._conn.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it (also what
        :mod:`prefrl.prefs.exchange` imports in)."""
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
        """One read transaction: every statement in it sees the same state of the store (also
        what :mod:`prefrl.prefs.export` exports from)."""
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
        self._conn.execute(INSERT_CLIP, row)
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
            f"SELECT clip_id FROM clips WHERE {CLIP_IN_USE} ORDER BY rowid DESC LIMIT ?",
            (num,),
        ).fetchall()
        ids = [row[0] for row in reversed(rows)]
        clips = self.get_clips(ids)
        return [clips[i] for i in ids]

    def clips_of(self, labels: Iterable[Label]) -> dict[str, Clip]:
        """The clips the ``labels`` compare, by id (see :meth:`get_clips`)."""
        return self.get_clips({c for label in labels for c in (label.left_clip_id, label.right_clip_id)})

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
        for i in range(0, len(wanted), MAX_VARS):
            chunk = wanted[i : i + MAX_VARS]
            rows = self._conn.execute(f"{READ_CLIP} WHERE clip_id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in rows:
                try:
                    clips[row[0]] = load_clip(row)
                except Damaged as e:
                    damaged[row[0]] = str(e)
        if damaged:  # named in the order they were asked for
            raise damaged_error(self._conn, self.path, {c: damaged[c] for c in wanted if c in damaged})
        missing = [c for c in wanted if c not in clips]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise KeyError(f"no clip {shown} in the preference store {self.path}")
        return clips

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
            encode(clip.obs),
            encode(clip.actions),
            encode(clip.true_rewards),
            None if clip.snapshots is None else encode(clip.snapshots),
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
            clip_checksum(blobs),
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
            conn.executemany(INSERT_CLIP, rows)
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

    def undo_answer(self, query_id: int) -> Answer:
        """Take back the answer to query ``query_id`` (a person's undo); return what it was.

        The answer is moved to the ``undone`` table, for the record, in one transaction:
        from then on the query is pending again (asked anew), and the answer is left out of
        :meth:`num_answered` (its label goes back to the budget), :meth:`labels`,
        :meth:`trainable_labels`, :meth:`answer_counts` and exports. A reward trainer drops
        it from its data at its next read of the labels.

        Raises:
            StoreError: query ``query_id`` has no answer (never answered, or undone already).
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT answer, answered_at, oracle, response_time FROM answers WHERE query_id = ?",
                (int(query_id),),
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"query {query_id} has no answer to undo in the preference store {self.path}"
                )
            conn.execute(
                "INSERT INTO undone (query_id, answer, answered_at, oracle, response_time, undone_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(query_id), *row, time.time()),
            )
            conn.execute("DELETE FROM answers WHERE query_id = ?", (int(query_id),))
        return Answer(row[0])

    def undone_answers(self) -> list[tuple[int, Answer, str]]:
        """The answers taken back (:meth:`undo_answer`), in the order they were undone:
        ``(query_id, answer, oracle)``."""
        rows = self._conn.execute("SELECT query_id, answer, oracle FROM undone ORDER BY undo_id")
        return [(int(qid), Answer(answer), oracle) for qid, answer, oracle in rows]

    def query_keys(self, *, answered: bool = False) -> set[tuple[str, str, float]]:
        """What identifies each query in use across stores (an import, a copy of reused
        labels): ``(left clip, right clip, creation time)``; ``answered``: of answered
        queries only."""
        where = f"{IN_USE} AND query_id IN (SELECT query_id FROM answers)" if answered else IN_USE
        rows = self._conn.execute(f"SELECT left_clip, right_clip, created_at FROM queries WHERE {where}")
        return {(str(left), str(right), float(created)) for left, right, created in rows}

    def pending_queries(self) -> list[Query]:
        """Queries without an answer, oldest first (including ones offered before a crash);
        set-aside queries are left out."""
        rows = self._conn.execute(
            "SELECT q.query_id, q.left_clip, q.right_clip, q.created_at, q.agent_step, q.oracle, "
            "q.selection, q.score FROM queries q LEFT JOIN answers a ON a.query_id = q.query_id "
            f"WHERE a.query_id IS NULL AND q.{IN_USE} ORDER BY q.query_id"
        )
        return [Query(*row) for row in rows]

    def num_clips(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0])

    def num_queries(self) -> int:
        """Queries asked, answered or not; set-aside queries left out."""
        return int(self._conn.execute(f"SELECT COUNT(*) FROM queries WHERE {IN_USE}").fetchone()[0])

    def asked_pairs(self, *, answered: bool = False) -> set[tuple[str, str]]:
        """The clip ids ``(left, right)`` of every query, answered or not (``answered``:
        answered ones only); set-aside queries left out."""
        return {(left, right) for left, right, _ in self.query_keys(answered=answered)}

    def num_answered(self) -> int:
        """Number of answers, of every kind: ``cant_tell`` and ``skipped`` cost the labeler's
        time as well, so they count toward the label budget. Answers to set-aside queries do
        not count (those labels go back to the budget)."""
        return int(self._conn.execute(f"SELECT COUNT(*) FROM answers WHERE {IN_USE}").fetchone()[0])

    def answer_counts(self) -> dict[Answer, int]:
        """Number of answers of each kind, set-aside queries left out; every :class:`Answer`
        is a key (zeros included)."""
        counts = dict.fromkeys(Answer, 0)
        for value, n in self._conn.execute(
            f"SELECT answer, COUNT(*) FROM answers WHERE {IN_USE} GROUP BY answer"
        ):
            counts[Answer(value)] = int(n)
        return counts

    def answered_returns(self, oracle: str) -> list[tuple[float, float]]:
        """The true returns ``(left, right)`` of the pairs ``oracle`` (an oracle's name)
        answered, in the order it answered them, set-aside queries included (see
        :meth:`prefrl.oracles.base.Oracle.recall`)."""
        rows = self._conn.execute(
            "SELECT l.true_return, r.true_return FROM queries q "
            "JOIN answers a ON a.query_id = q.query_id "
            "JOIN clips l ON l.clip_id = q.left_clip JOIN clips r ON r.clip_id = q.right_clip "
            "WHERE a.oracle = ? ORDER BY a.answered_at, q.query_id",
            (oracle,),
        )
        return [(float(left), float(right)) for left, right in rows]

    def num_trainable(self) -> int:
        """Number of answers a reward model can train on (left, right, equally good), set-aside
        queries left out."""
        return sum(n for answer, n in self.answer_counts().items() if answer.mu is not None)

    def labels(self, after_query_id: int = 0) -> list[Label]:
        """Answered queries with ``query_id > after_query_id``, in query_id order, set-aside
        queries left out.

        Includes answers that are not trained on (``mu`` None); see :meth:`trainable_labels`.
        """
        rows = self._conn.execute(
            "SELECT q.query_id, q.left_clip, q.right_clip, a.answer, q.agent_step "
            "FROM queries q JOIN answers a ON a.query_id = q.query_id "
            f"WHERE q.query_id > ? AND q.{IN_USE} ORDER BY q.query_id",
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
        check_file(self.path, "integrity_check" if deep else "quick_check")
        if not deep:
            return []
        with self._snapshot():
            return list(damaged_clips(self._conn)[1])

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
            checked, damaged = damaged_clips(self._conn)
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
