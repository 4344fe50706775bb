from __future__ import annotations

import io
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from prefrl.errors import EXIT_FAILED, PrefrlError
from prefrl.prefs.blobs import encode
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.repair import repair_store
from prefrl.prefs.store import (
    SCHEMA_VERSION,
    DamagedClipError,
    Label,
    PreferenceStore,
    Query,
    StoreError,
)

ENV = "CartPole-v1"


def make_clip(
    rng: np.random.Generator,
    length: int = 50,
    *,
    snapshots: bool = True,
    env_id: str = ENV,
    agent_step: int = 0,
) -> Clip:
    return Clip(
        obs=rng.normal(size=(length, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=length).astype(np.int64),
        true_rewards=rng.normal(size=length),
        snapshots=rng.normal(size=(length, 4)) if snapshots else None,
        env_id=env_id,
        agent_step=agent_step,
        episode_step=int(rng.integers(0, 400)),
    )


def assert_same_clip(a: Clip, b: Clip) -> None:
    assert (a.clip_id, a.env_id, a.agent_step, a.episode_step) == (
        b.clip_id,
        b.env_id,
        b.agent_step,
        b.episode_step,
    )
    for name in ("obs", "actions", "true_rewards", "snapshots"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
            continue
        assert y.dtype == x.dtype and y.shape == x.shape, name
        np.testing.assert_array_equal(y, x)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def store(tmp_path: Path):
    with PreferenceStore(tmp_path / "prefs.sqlite", ENV) as s:
        yield s


def answer_all(store: PreferenceStore, rng: np.random.Generator, answers: list[Answer]) -> list[int]:
    ids = []
    for i, answer in enumerate(answers):
        qid = store.add_query(
            make_clip(rng),
            make_clip(rng),
            agent_step=100 * i,
            oracle="synthetic",
            selection="random",
            score=0.5,
        )
        store.record_answer(qid, answer, oracle="synthetic", response_time=1.5)
        ids.append(qid)
    return ids


# -- opening --------------------------------------------------------------------------


def test_new_store_settings_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        assert store.env_id == ENV
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta == {"env_id": ENV, "schema_version": str(SCHEMA_VERSION)}
    with PreferenceStore(path) as store:  # env_id is optional once the store exists
        assert store.env_id == ENV


def test_open_refuses_other_env_and_missing_store(tmp_path: Path) -> None:
    path = tmp_path / "prefs.sqlite"
    PreferenceStore(path, ENV).close()
    with pytest.raises(StoreError, match=r"'CartPole-v1'.*'Hopper-v4'"):
        PreferenceStore(path, "Hopper-v4")
    with pytest.raises(StoreError, match="pass env_id to create"):
        PreferenceStore(tmp_path / "other.sqlite")
    assert not (tmp_path / "other.sqlite").exists()


def test_open_refuses_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "prefs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a prefrl preference store"):
        PreferenceStore(path, ENV)
    assert path.read_bytes() == before


def test_random_bytes_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "prefs.sqlite"
    data = np.random.default_rng(1).bytes(10_000)
    path.write_bytes(data)
    with pytest.raises(StoreError) as err:
        PreferenceStore(path, ENV)
    message = str(err.value)
    assert "not an SQLite database" in message and "new run directory" in message
    assert f"`prefrl import {tmp_path} EXPORT_DIR|COPY.sqlite`" in message and "prefrl export" in message
    assert path.read_bytes() == data


def test_truncated_database_is_refused_and_left_untouched(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        answer_all(store, rng, [Answer.LEFT] * 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    truncated = path.read_bytes()
    with pytest.raises(StoreError) as err:
        PreferenceStore(path, ENV)
    message = str(err.value)
    assert (
        "damaged" in message and f"`prefrl import {tmp_path} " in message and "Nothing was changed" in message
    )
    assert path.read_bytes() == truncated


# -- clips ----------------------------------------------------------------------------


@pytest.mark.parametrize("snapshots", [True, False])
def test_clip_round_trip(store: PreferenceStore, rng: np.random.Generator, snapshots: bool) -> None:
    clip = make_clip(rng, 25, snapshots=snapshots, agent_step=1234)
    clip.obs = rng.integers(0, 255, size=(25, 3, 8, 8), dtype=np.uint8)  # image-shaped, another dtype
    assert store.add_clip(clip) == clip.clip_id
    assert store.add_clip(clip) == clip.clip_id  # idempotent
    assert store._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 1
    back = store.get_clip(clip.clip_id)
    assert_same_clip(back, clip)
    assert back.length == 25 and back.true_return == pytest.approx(clip.true_return)
    back.obs[0] = 0  # arrays are writable copies


def test_fortran_order_and_scalar_dtypes_survive(store: PreferenceStore, rng: np.random.Generator) -> None:
    clip = make_clip(rng, 6)
    clip.obs = np.asfortranarray(rng.normal(size=(6, 5)))
    clip.actions = rng.normal(size=(6, 2)).astype(">f4")  # big-endian
    clip.true_rewards = np.arange(6, dtype=np.float16)
    store.add_clip(clip)
    assert_same_clip(store.get_clip(clip.clip_id), clip)


def test_get_clips_and_missing_clip(store: PreferenceStore, rng: np.random.Generator) -> None:
    clips = [make_clip(rng, 5) for _ in range(3)]
    for c in clips:
        store.add_clip(c)
    got = store.get_clips([c.clip_id for c in clips] + [clips[0].clip_id])
    assert set(got) == {c.clip_id for c in clips}
    for c in clips:
        assert_same_clip(got[c.clip_id], c)
    assert store.get_clips([]) == {}
    with pytest.raises(KeyError, match="no clip nope"):
        store.get_clip("nope")
    with pytest.raises(KeyError, match="nope"):
        store.get_clips([clips[0].clip_id, "nope"])


def test_clip_of_other_env_or_bad_shape_is_refused(store: PreferenceStore, rng: np.random.Generator) -> None:
    with pytest.raises(StoreError, match=r"'Hopper-v4'.*'CartPole-v1'"):
        store.add_clip(make_clip(rng, env_id="Hopper-v4"))
    bad = make_clip(rng, 5)
    bad.obs = bad.obs[:4]
    with pytest.raises(StoreError, match="obs has 4 rows"):
        store.add_clip(bad)
    with pytest.raises(StoreError, match="different clips"):
        c = make_clip(rng)
        store.add_query(c, c, agent_step=0, oracle="synthetic", selection="random")
    assert store._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0


# -- queries and answers --------------------------------------------------------------


def test_query_answer_flow(store: PreferenceStore, rng: np.random.Generator) -> None:
    pairs = [(make_clip(rng), make_clip(rng)) for _ in range(6)]
    t0 = time.time()
    ids = [
        store.add_query(
            left, right, agent_step=10 * i, oracle="human", selection="disagreement", score=0.1 * i
        )
        for i, (left, right) in enumerate(pairs)
    ]
    assert ids == sorted(ids) and len(set(ids)) == 6
    pending = store.pending_queries()
    assert [q.query_id for q in pending] == ids
    q = pending[2]
    assert q == Query(
        ids[2], pairs[2][0].clip_id, pairs[2][1].clip_id, q.created_at, 20, "human", "disagreement", 0.2
    )
    assert t0 - 1 <= q.created_at <= time.time() + 1
    assert_same_clip(store.get_clip(q.left_clip_id), pairs[2][0])
    assert store.num_answered() == 0
    assert store.answer_counts() == dict.fromkeys(Answer, 0)

    answers = [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.CANT_TELL, Answer.SKIPPED]
    for qid, answer in zip(ids, answers, strict=False):
        store.record_answer(qid, answer, oracle="human", response_time=2.0)
    assert [q.query_id for q in store.pending_queries()] == [ids[5]]

    with pytest.raises(StoreError, match="already answered 'left'"):
        store.record_answer(ids[0], Answer.RIGHT, oracle="human")
    with pytest.raises(StoreError, match="no query 999"):
        store.record_answer(999, Answer.LEFT, oracle="human")
    with pytest.raises(ValueError):
        store.record_answer(ids[5], "better", oracle="human")  # type: ignore[arg-type]
    assert store._conn.execute("SELECT answer FROM answers WHERE query_id = ?", (ids[0],)).fetchone() == (
        "left",
    )

    assert store.num_answered() == 5  # cant_tell and skipped count toward the budget
    assert store.answer_counts() == {a: 1 for a in answers}

    labels = store.labels()
    assert [lab.query_id for lab in labels] == ids[:5]
    assert labels[1] == Label(ids[1], pairs[1][0].clip_id, pairs[1][1].clip_id, Answer.RIGHT, 10)
    assert [lab.mu for lab in labels] == [1.0, 0.0, 0.5, None, None]
    assert [lab.query_id for lab in store.labels(after_query_id=ids[1])] == ids[2:5]
    trainable = store.trainable_labels()
    assert [(lab.query_id, lab.mu) for lab in trainable] == [(ids[0], 1.0), (ids[1], 0.0), (ids[2], 0.5)]
    assert [lab.query_id for lab in store.trainable_labels(after_query_id=ids[0])] == ids[1:3]
    assert store.labels(after_query_id=ids[-1]) == []


def test_two_objects_on_one_file_see_each_others_commits(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as labeler, PreferenceStore(path, ENV) as trainer:
        left, right = make_clip(rng), make_clip(rng)
        qid = labeler.add_query(left, right, agent_step=5, oracle="human", selection="random")
        assert [q.query_id for q in trainer.pending_queries()] == [qid]
        assert_same_clip(trainer.get_clip(right.clip_id), right)
        trainer.record_answer(qid, Answer.EQUAL, oracle="human")
        assert labeler.pending_queries() == []
        assert [(lab.query_id, lab.mu) for lab in labeler.labels()] == [(qid, 0.5)]
        with pytest.raises(StoreError, match="already answered"):
            labeler.record_answer(qid, Answer.LEFT, oracle="human")


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from prefrl.prefs.clips import Answer, Clip
    from prefrl.prefs.store import PreferenceStore

    rng = np.random.default_rng(0)
    store = PreferenceStore(sys.argv[1], "CartPole-v1")

    def clip():
        n = 50
        return Clip(rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 2, n), rng.normal(size=n),
                    rng.normal(size=(n, 4)), "CartPole-v1")

    step = 0
    while True:
        qid = store.add_query(clip(), clip(), agent_step=step, oracle="synthetic", selection="random")
        store.record_answer(qid, Answer.LEFT, oracle="synthetic")
        print(qid, flush=True)
        step += 1
    """
)


def test_answers_survive_sigkill_of_writer(tmp_path: Path) -> None:
    path = tmp_path / "prefs.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    printed: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(printed) < 30 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: it is writing the next query
        rest, err = proc.communicate()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    # A line cut short by the kill was not fully printed, so it promises nothing.
    printed += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert len(printed) >= 30, err
    with PreferenceStore(path, ENV) as store:
        assert store._conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        answered = {lab.query_id: lab.answer for lab in store.labels()}
        assert all(answered.get(qid) == Answer.LEFT for qid in printed)
        # At most the query being written when the kill came is left unanswered; it is offered again.
        assert len(store.pending_queries()) <= 1
        clip_ids = [c for lab in store.labels() for c in (lab.left_clip_id, lab.right_clip_id)]
        assert len(store.get_clips(clip_ids)) == len(clip_ids)


def test_reading_many_labels_and_clips(store: PreferenceStore, rng: np.random.Generator) -> None:
    clips = [make_clip(rng, 50) for _ in range(2000)]
    with store._write() as conn:  # fill quickly: one transaction instead of 1000 synced commits
        conn.executemany(
            "INSERT INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [store._clip_row(c) for c in clips],
        )
        conn.executemany(
            "INSERT INTO queries (left_clip, right_clip, created_at, agent_step, oracle, selection) "
            "VALUES (?, ?, 0, 0, 'synthetic', 'random')",
            [(clips[2 * i].clip_id, clips[2 * i + 1].clip_id) for i in range(1000)],
        )
        conn.executemany(
            "INSERT INTO answers VALUES (?, 'left', 0, 'synthetic', NULL)", [(i + 1,) for i in range(1000)]
        )
    labels = store.trainable_labels()
    got = store.get_clips([c for lab in labels for c in (lab.left_clip_id, lab.right_clip_id)])
    assert [lab.query_id for lab in labels] == list(range(1, 1001))
    assert sorted(got) == sorted(c.clip_id for c in clips)  # over three SELECTs of at most 900 ids
    for i in (0, 899, 900, 1234, 1999):
        assert_same_clip(got[clips[i].clip_id], clips[i])


# -- damaged clips --------------------------------------------------------------------


def blob_of(path: Path, clip_id: str, column: str) -> bytes:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {column} FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()[0]
    finally:
        conn.close()


def write_blob(path: Path, clip_id: str, column: str, blob: bytes, *, keep_checksum: bool = True) -> None:
    """Overwrite a clip's blob behind the store's back (as damage on disk would)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(f"UPDATE clips SET {column} = ? WHERE clip_id = ?", (blob, clip_id))
            if not keep_checksum:  # as a clip damaged before checksums existed
                conn.execute("UPDATE clips SET checksum = NULL WHERE clip_id = ?", (clip_id,))
    finally:
        conn.close()


def flip_byte(path: Path, clip_id: str, column: str, offset: int) -> None:
    blob = bytearray(blob_of(path, clip_id, column))
    blob[offset] ^= 0xFF
    write_blob(path, clip_id, column, bytes(blob))


def npy_header_length(blob: bytes) -> int:
    return 10 + int.from_bytes(blob[8:10], "little")  # .npy format version 1.0


def assert_names_damage(err: DamagedClipError, run_dir: Path, clip_id: str, query_ids: list[int]) -> str:
    message = str(err)
    assert err.clip_ids == (clip_id,) and err.query_ids == tuple(query_ids)
    assert isinstance(err, StoreError) and isinstance(err, PrefrlError) and err.exit_code == EXIT_FAILED
    assert "\n" not in message and "pickle" not in message.lower()
    assert f"damaged clip {clip_id} (" in message
    which = "query" if len(query_ids) == 1 else "queries"
    assert f"used by {which} {', '.join(map(str, query_ids))};" in message
    assert f"`prefrl repair {run_dir}`" in message
    return message


@pytest.mark.parametrize("seed", range(8))
def test_flipped_byte_in_a_clip_blob_is_named(tmp_path: Path, seed: int) -> None:
    """Damage anywhere in a blob (the .npy header on even seeds, the data on odd ones) is
    caught by the checksum, on every read of the clip."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL])
        victim = store.labels()[1].right_clip_id  # used by query 2 only
    column = ("obs", "actions", "true_rewards", "snapshots")[seed % 4]
    blob = blob_of(path, victim, column)
    header = npy_header_length(blob)
    offset = int(rng.integers(0, header)) if seed % 2 == 0 else int(rng.integers(header, len(blob)))
    flip_byte(path, victim, column, offset)
    with PreferenceStore(path) as store:
        with pytest.raises(DamagedClipError) as err:
            store.get_clip(victim)
        message = assert_names_damage(err.value, tmp_path, victim, [2])
        assert "(its arrays do not match their checksum)" in message
        with pytest.raises(DamagedClipError) as err:
            store.get_clips([lab.left_clip_id for lab in store.labels()] + [victim])
        assert err.value.clip_ids == (victim,)
        assert store.verify(deep=True) == [victim]
        assert store.verify() == []  # SQLite's own check cannot see inside blobs


def test_undecodable_or_misshapen_blob_without_checksum_is_named(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Without a checksum (clips stored before checksums existed) the arrays are still checked:
    numpy's words (its advice to load unsafely among them) never reach the message."""
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT])
        (_, a), (b, c) = [(lab.left_clip_id, lab.right_clip_id) for lab in store.labels()]
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}] * 50, dtype=object), allow_pickle=True)
    write_blob(path, a, "obs", pickled.getvalue(), keep_checksum=False)
    magic = bytearray(blob_of(path, b, "actions"))
    magic[1] ^= 0xFF
    write_blob(path, b, "actions", bytes(magic), keep_checksum=False)
    write_blob(path, c, "true_rewards", encode(np.zeros(7)), keep_checksum=False)
    with PreferenceStore(path) as store:
        with pytest.raises(DamagedClipError) as err:
            store.get_clip(a)
        assert "(its obs array cannot be read)" in assert_names_damage(err.value, tmp_path, a, [1])
        with pytest.raises(DamagedClipError) as err:
            store.get_clip(b)
        assert "(its actions array cannot be read)" in assert_names_damage(err.value, tmp_path, b, [2])
        with pytest.raises(DamagedClipError) as err:
            store.get_clip(c)
        assert "(its true_rewards array has shape (7,), not 50 rows)" in assert_names_damage(
            err.value, tmp_path, c, [2]
        )
        with pytest.raises(DamagedClipError) as err:
            store.get_clips([a, b, c])
        assert err.value.clip_ids == (a, b, c) and err.value.query_ids == (1, 2)
        assert "pickle" not in str(err.value).lower()
        assert store.verify(deep=True) == [a, b, c]


def test_damaged_clip_error_survives_pickling() -> None:
    err = DamagedClipError("clip x is damaged", ["x"], [3, 4])
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DamagedClipError and str(back) == "clip x is damaged"
    assert (back.clip_ids, back.query_ids) == (("x",), (3, 4))


def test_store_error_is_a_prefrl_error_and_a_value_error() -> None:
    assert issubclass(StoreError, PrefrlError) and issubclass(StoreError, ValueError)


def test_repair_sets_damaged_queries_aside_and_keeps_everything(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        ids = answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.CANT_TELL])
        labels = store.labels()
        victim = labels[1].left_clip_id
        originals = store.get_clips([c for lab in labels for c in (lab.left_clip_id, lab.right_clip_id)])
        # An unanswered query that also shows the clip that is going to be damaged.
        pending = store.add_query(
            originals[victim], make_clip(rng), agent_step=500, oracle="synthetic", selection="random"
        )
        assert (ids, pending, store.num_answered()) == ([1, 2, 3, 4], 5, 4)
    flip_byte(path, victim, "obs", len(blob_of(path, victim, "obs")) - 3)
    with PreferenceStore(path) as store:
        with pytest.raises(DamagedClipError) as err:
            store.get_clips(originals)
        assert_names_damage(err.value, tmp_path, victim, [2, 5])

    report = repair_store(tmp_path)  # a run directory
    assert json.loads(json.dumps(report)) == report
    assert report == {
        "store": str(path),
        "clips_checked": 9,
        "damaged_clips": [victim],
        "queries_set_aside": 2,
        "answers_set_aside": 1,
        "total_set_aside": 2,
        "answered": 3,
        "then": "an intact copy of the store (a backup of prefs.sqlite, or an export) restores the 2 set-aside "
        f"queries: prefrl import {tmp_path} COPY",
    }
    with PreferenceStore(path) as store:
        assert store.num_answered() == 3
        assert store.answer_counts() == {
            Answer.LEFT: 1,
            Answer.RIGHT: 0,
            Answer.EQUAL: 1,
            Answer.CANT_TELL: 1,
            Answer.SKIPPED: 0,
        }
        assert [lab.query_id for lab in store.labels()] == [1, 3, 4]
        assert [lab.query_id for lab in store.trainable_labels()] == [1, 3]
        assert store.pending_queries() == []
        reason = f"clip {victim} is damaged: its arrays do not match their checksum"
        assert store.set_aside_queries() == {2: reason, 5: reason}
        # Nothing was deleted: the answer and the damaged clip stay for the record.
        assert store._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4
        assert store._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 9
        intact = [c for lab in store.labels() for c in (lab.left_clip_id, lab.right_clip_id)]
        for cid, clip in store.get_clips(intact).items():
            assert_same_clip(clip, originals[cid])
        assert store.verify(deep=True) == [victim]  # still damaged, but no query in use needs it
        with pytest.raises(DamagedClipError, match="no query in use compares it, so nothing needs it"):
            store.get_clip(victim)
        # The label went back to the budget: a new query is pending and counted once answered.
        qid = store.add_query(
            make_clip(rng), make_clip(rng), agent_step=600, oracle="synthetic", selection="random"
        )
        assert [q.query_id for q in store.pending_queries()] == [qid]
        store.record_answer(qid, Answer.RIGHT, oracle="synthetic")
        assert store.num_answered() == 4

    again = repair_store(path)  # the store file itself; a no-op the second time
    assert again == {
        **report,
        "clips_checked": 11,
        "queries_set_aside": 0,
        "answers_set_aside": 0,
        "answered": 4,
        "then": report["then"].replace(str(tmp_path), str(path)),
    }
    with PreferenceStore(path) as store:
        assert store.set_aside_queries() == {2: reason, 5: reason}


def test_repair_of_intact_store_and_missing_store(tmp_path: Path, rng: np.random.Generator) -> None:
    with PreferenceStore(tmp_path / "prefs.sqlite", ENV) as store:
        answer_all(store, rng, [Answer.LEFT])
    assert repair_store(tmp_path)["damaged_clips"] == []
    assert repair_store(tmp_path)["queries_set_aside"] == 0
    with pytest.raises(StoreError, match="no preference store at"):
        repair_store(tmp_path / "elsewhere")


def make_old_schema(path: Path) -> None:
    """Turn a store into one of schema 1 (no checksums, no set_aside and undone tables)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("ALTER TABLE clips DROP COLUMN checksum")
            conn.execute("DROP TABLE set_aside")
            conn.execute("DROP TABLE undone")
            conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    finally:
        conn.close()


def test_old_schema_store_is_migrated_on_open(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL])
        labels = store.labels()
        clip_ids = [c for lab in labels for c in (lab.left_clip_id, lab.right_clip_id)]
        originals = store.get_clips(clip_ids)
        checksums = dict(store._conn.execute("SELECT clip_id, checksum FROM clips"))
    make_old_schema(path)
    # Damage before the migration: the magic of one blob (the decode check catches it) and
    # the data of another (the migrated checksum is computed over the damaged bytes).
    blob = bytearray(blob_of(path, clip_ids[0], "obs"))
    blob[0] ^= 0xFF
    write_blob(path, clip_ids[0], "obs", bytes(blob))
    flip_byte(path, clip_ids[5], "obs", len(blob_of(path, clip_ids[5], "obs")) - 1)
    with PreferenceStore(path) as store:
        conn = store._conn
        assert dict(conn.execute("SELECT key, value FROM meta")) == {
            "env_id": ENV,
            "schema_version": str(SCHEMA_VERSION),
        }
        assert store.undone_answers() == []
        migrated = dict(conn.execute("SELECT clip_id, checksum FROM clips"))
        assert {c: migrated[c] for c in clip_ids[1:5]} == {c: checksums[c] for c in clip_ids[1:5]}
        assert store.set_aside_queries() == {}
        assert store.labels() == labels
        for cid, clip in store.get_clips(clip_ids[1:]).items():
            if cid != clip_ids[5]:
                assert_same_clip(clip, originals[cid])
        assert store.verify(deep=True) == [clip_ids[0]]
        assert store.set_aside_damaged().queries_set_aside == 1
        assert store.num_answered() == 2
    # Damage after the migration is caught by the checksum; reopening migrates nothing again.
    flip_byte(path, clip_ids[3], "snapshots", 200)
    with PreferenceStore(path) as store:
        with pytest.raises(DamagedClipError) as err:
            store.get_clip(clip_ids[3])
        assert_names_damage(err.value, tmp_path, clip_ids[3], [2])
        assert store.verify(deep=True) == [clip_ids[0], clip_ids[3]]


# -- undo ---------------------------------------------------------------------------


def test_an_undone_answer_is_kept_aside_and_its_query_is_pending_again(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    with PreferenceStore(tmp_path / "prefs.sqlite", ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL])
        assert store.num_answered() == 3 and store.pending_queries() == []
        assert store.undo_answer(2) == Answer.RIGHT
        assert [q.query_id for q in store.pending_queries()] == [2]
        assert store.num_answered() == 2
        assert [lab.query_id for lab in store.labels()] == [1, 3]
        assert [lab.query_id for lab in store.trainable_labels()] == [1, 3]
        assert store.answer_counts()[Answer.RIGHT] == 0
        assert store.undone_answers() == [(2, Answer.RIGHT, "synthetic")]
        with pytest.raises(StoreError, match="query 2 has no answer to undo"):
            store.undo_answer(2)
        with pytest.raises(StoreError, match="query 99 has no answer to undo"):
            store.undo_answer(99)
        # answered anew, undone again, answered again: every undo is kept
        store.record_answer(2, Answer.LEFT, oracle="human")
        assert store.undo_answer(2) == Answer.LEFT
        store.record_answer(2, Answer.EQUAL, oracle="human")
        assert store.undone_answers() == [(2, Answer.RIGHT, "synthetic"), (2, Answer.LEFT, "human")]
        assert {lab.query_id: lab.answer for lab in store.labels()} == {
            1: Answer.LEFT,
            2: Answer.EQUAL,
            3: Answer.EQUAL,
        }
        assert store.num_answered() == 3


def test_a_schema_2_store_gets_the_undone_table(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "prefs.sqlite"
    with PreferenceStore(path, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT])
        labels = store.labels()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE undone")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    with PreferenceStore(path) as store:
        assert dict(store._conn.execute("SELECT key, value FROM meta"))["schema_version"] == "3"
        assert store.labels() == labels and store.undone_answers() == []
        assert store.undo_answer(1) == Answer.LEFT
        assert store.num_answered() == 1
