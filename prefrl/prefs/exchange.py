"""Import into a preference store: how labels move between runs, and how a damaged store
is replaced (``prefrl import RUN_DIR SOURCE``; ``prefrl train --labels-from`` and
``prefrl fit-reward`` gather labels with :func:`gather_labels`).

:func:`import_into` merges an export directory (written by :mod:`prefrl.prefs.export`, whose
:func:`export_store` and :func:`export_run` are importable from here too), or another
store's ``.sqlite`` file, into a store: what the store already holds is recognised and not
copied again, and an answer it holds is never replaced; a clip the store set aside as
damaged (``prefrl repair``) is mended from the source's intact copy of it, and its
answers count again.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import zipfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prefrl.prefs.blobs import ARRAYS, Damaged, clip_checksum, load_clip, pack
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.errors import StoreError
from prefrl.prefs.export import (
    ANSWERS_CSV,
    CLIPS_CSV,
    EXPORT_AGAIN,
    EXPORT_FILES,
    MANIFEST,
    QUERIES_CSV,
    check_export_files,
    export_run,
    export_store,
    run_stores,
)
from prefrl.prefs.repair import clips_of_set_aside_queries, restore_clip
from prefrl.prefs.schema import (
    CLIP_COLUMNS,
    CLIP_IN_USE,
    IN_USE,
    INSERT_CLIP,
    QUERY_COLUMNS,
    REUSED_STORE_NAME,
    STORE_NAME,
    check_file,
    is_sqlite_file,
    remove_store,
)
from prefrl.prefs.store import DamagedClipError, PreferenceStore, Query
from prefrl.rundir import RunDir, mark_stopped_if_dead
from prefrl.utils.io import ZIP_DAMAGE

__all__ = [
    "GatheredLabels",
    "ImportReport",
    "export_run",
    "export_store",
    "gather_labels",
    "import_into",
    "import_run",
]

_ANSWER_SET = frozenset(a.value for a in Answer)


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_into` added.

    Attributes:
        source: the export directory or ``.sqlite`` file imported (absolute path).
        clips_added, queries_added, answers_added: rows added to the store.
        answers_conflicting: source answers to queries this store had already answered
            differently; the store's answer was kept.
        answers_already_reused: source queries left out because the run already reuses
            them (its ``reused.sqlite``): trained on once, not twice.
        clips_restored: clips the store had set aside as damaged that the source held
            intact (the same clip id, env, length and creation time), mended from it.
        answers_restored: answers counted again because their queries' clips were restored.
    """

    source: str
    clips_added: int
    queries_added: int
    answers_added: int
    answers_conflicting: int = 0
    answers_already_reused: int = 0
    clips_restored: int = 0
    answers_restored: int = 0


def import_run(path: str | os.PathLike[str], source: str | os.PathLike[str]) -> dict[str, Any]:
    """``prefrl import``: merge ``source`` (an export directory, a store file or another run
    directory) into the store of a run directory (or a store file); see :func:`import_into`.

    A run directory without a store (one set aside because it was damaged) gets a new one,
    of the env its ``config.json`` names, else of the env of ``source``. Another run
    directory as ``source`` gives its store and the labels it reused (``reused.sqlite``).

    Returns:
        A JSON-serialisable dict: ``store`` (its path), ``created`` (whether the store was
        new), the fields of :class:`ImportReport` (summed over a source run's two stores),
        ``reused_answers_added`` (of those, a source run's reused labels; only for such a
        source), and ``answered`` (answers the store now counts toward the label budget).

    Raises:
        RunBusyError: a live process runs the run (its budget would be counted wrong).
        StoreError: as :func:`import_into`.
    """
    target, source = Path(path), Path(source)
    run = target if target.is_dir() else target.parent
    with RunDir(run).claim_if_run(then=f"prefrl import {path} {source}"):  # no resume starts meanwhile
        mark_stopped_if_dead(run)  # killed: its status.json said running
        return _import_run(target, source)


def _import_run(target: Path, source: Path) -> dict[str, Any]:
    """:func:`import_run`, in the process that holds the run's lock."""
    run_parts = run_stores(source)
    parts = run_parts or [source]  # another run directory: its stores
    store_path = target / STORE_NAME if target.is_dir() else target
    if target.is_file() and not is_sqlite_file(target):
        raise StoreError(
            f"cannot import into {target}: it is no preference store (not an SQLite database); name the "
            "run directory, or its prefs.sqlite"
        )
    config = store_path.parent / "config.json"
    kind = RunDir(store_path.parent).read_config().get("kind") if config.is_file() else None
    if kind not in (None, "train"):  # nothing would read the labels: refused, not added in silence
        raise StoreError(
            f"{store_path.parent} is a {kind} run, which trains on no labels of its own; import into a "
            "preference run (prefrl train) or into a store file (a path ending in .sqlite)"
        )
    env_id = None
    created = not store_path.exists()
    if created:
        if not target.is_dir() and target.suffix != ".sqlite":
            raise StoreError(f"there is no run directory or preference store at {target}")
        if target.is_dir() and (
            (target / MANIFEST).is_file() or all((target / name).is_file() for name in EXPORT_FILES)
        ):
            raise StoreError(  # a store made here would not travel with the export's files
                f"{target} is an export (prefrl export), not a run: import it into a run, "
                f"prefrl import RUN_DIR {target}, or into a store file (a path ending in .sqlite)"
            )
        if not source.exists():
            raise StoreError(f"cannot import {source}: no such file or directory")
        env_id = _run_env_id(store_path.parent) or _source_env_id(parts[0])
    reused: set[tuple[str, str, float]] = set()
    if (store_path.parent / REUSED_STORE_NAME).exists():
        with PreferenceStore(store_path.parent / REUSED_STORE_NAME) as known:
            reused = known.query_keys(answered=True)  # a pair still open there may be answered here
    try:
        with PreferenceStore(store_path, env_id) as store:
            reports = [import_into(store, part, reused=reused) for part in parts]
            answered = store.num_answered()
    except BaseException:
        # nothing was imported: no empty store left behind (only the file: a -wal file beside
        # a store that was missing may be that store's, which the user can still put back)
        if created:
            store_path.unlink(missing_ok=True)
        raise
    result = asdict(reports[0])
    if source / REUSED_STORE_NAME in run_parts:  # a run that reused labels: what came of each store
        totals = {key: sum(asdict(r)[key] for r in reports) for key in result if key != "source"}
        result = {
            "source": str(source.resolve()),
            **totals,
            "reused_answers_added": reports[-1].answers_added,
        }
    return {"store": str(store_path), "created": created, **result, "answered": answered}


@dataclass(frozen=True)
class GatheredLabels:
    """What :func:`gather_labels` copied.

    Attributes:
        env_id: the env of the labels.
        sources: the stores or export directories they came from (absolute paths).
        answered: answered pairs (of every kind of answer).
        trainable: answered pairs a reward model can train on (left, right or equally good).
    """

    env_id: str
    sources: tuple[str, ...]
    answered: int
    trainable: int


def gather_labels(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> GatheredLabels:
    """Copy every labelled pair of ``source`` into a new store file ``target``.

    This is how labels outlive their run: ``prefrl train --labels-from`` trains a new run's
    reward model on them too, ``prefrl fit-reward`` fits a reward model on them alone.
    ``source`` is a run directory of a preference run (its store, and the labels that run
    reused itself), a store file or an export directory (``prefrl export``). Set-aside
    queries stay behind, as in any import.

    Raises:
        StoreError: ``target`` exists, or ``source`` holds no store or export, or cannot be read.
    """
    src, out = Path(source), Path(target)
    if out.exists():
        raise StoreError(f"cannot gather labels into {out}: it exists")
    if not src.exists():
        raise StoreError(f"{src}: no such file or directory")
    parts = [src]
    if src.is_dir() and not (src / "clips.csv").exists():
        parts = run_stores(src)
        if not parts:
            raise StoreError(
                f"{src} holds no labels: pass the run directory of a preference run, a store "
                "file (.sqlite) or a directory written by `prefrl export`"
            )
    env_id = _source_env_id(parts[0], gathering=True)
    try:
        with PreferenceStore(out, env_id) as store:
            for part in parts:
                import_into(store, part)
            answered, trainable = store.num_answered(), store.num_trainable()
    except BaseException:
        remove_store(out)
        raise
    return GatheredLabels(
        env_id,
        tuple(str(p.resolve()) for p in parts),
        answered,
        trainable,
    )


def import_into(
    store: PreferenceStore,
    source: str | os.PathLike[str],
    *,
    reused: Collection[tuple[str, str, float]] = (),
) -> ImportReport:
    """Copy the clips, queries and answers of ``source`` into ``store``, in one transaction.

    ``source`` is an export directory (see :func:`export_store`) or another store's ``.sqlite``
    file. Clips are matched by clip_id; queries get new ids in ``store``, their ``source`` column
    records ``"<source path>#<query_id there>"``, and a query ``store`` already holds
    (same clips, same creation time) is not copied again, so importing a source twice
    adds nothing the second time. An answer the source has for a query ``store`` holds
    unanswered is added; an answer there is never replaced. A query in ``reused`` (the
    :meth:`~PreferenceStore.query_keys` of the answered labels the run reuses) is left out.

    Raises:
        StoreError: ``source`` is missing, not an export or a preference store, holds
            clips of another env (nothing is imported then), refers to clips or queries it
            does not contain, or is ``store`` itself.
    """
    src = Path(source)
    if not src.exists():
        raise StoreError(f"cannot import {src}: no such file or directory")
    if src.is_file() and store.path.exists() and os.path.samefile(src, store.path):
        raise StoreError(f"cannot import the store {store.path} into itself")
    label = str(src.resolve())
    if src.is_dir():
        return _import_export_dir(store, src, label, reused)
    with _open_source(src) as other, other._snapshot() as conn:
        env_ids = {row[0] for row in conn.execute("SELECT DISTINCT env_id FROM clips")}
        _check_env_ids(store, env_ids, src)
        queries = [
            Query(*row)
            for row in conn.execute(f"SELECT {QUERY_COLUMNS} FROM queries WHERE {IN_USE} ORDER BY query_id")
        ]
        answers = {
            row[0]: row[1:]
            for row in conn.execute(
                f"SELECT query_id, answer, answered_at, oracle, response_time FROM answers WHERE {IN_USE}"
            )
        }
        clip_rows = conn.execute(
            f"SELECT {CLIP_COLUMNS}, checksum FROM clips WHERE {CLIP_IN_USE} ORDER BY rowid"
        )
        return _import(store, label, clip_rows, queries, answers, reused)


def _import_export_dir(
    store: PreferenceStore, src: Path, label: str, reused: Collection[tuple[str, str, float]]
) -> ImportReport:
    checked = _VERIFIED.pop(src.resolve(), None)
    if checked is None or checked != _file_stats(src):  # not checked just before, as it is now
        check_export_files(src)
    clips_meta = _read_csv(src / "clips.csv", CLIPS_CSV)
    _check_env_ids(store, {row["env_id"] for row in clips_meta}, src)
    queries = []
    for i, row in enumerate(_read_csv(src / "queries.csv", QUERIES_CSV), start=1):
        with _csv_row(src / "queries.csv", i):
            queries.append(
                Query(
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
    for i, row in enumerate(_read_csv(src / "answers.csv", ANSWERS_CSV), start=1):
        with _csv_row(src / "answers.csv", i):
            if int(row["query_id"]) in answers:  # which one is meant cannot be told: neither is taken
                raise ValueError(f"query {row['query_id']} is answered a second time; keep one of its rows")
            answers[int(row["query_id"])] = (
                row["answer"],
                float(row["answered_at"]),
                row["oracle"],
                _opt_float(row["response_time"]),
            )
    npz = src / "clips.npz"
    try:
        zf = zipfile.ZipFile(npz)
    except ZIP_DAMAGE as e:
        raise StoreError(f"{npz} is not a readable .npz file ({_reason(e)}); {EXPORT_AGAIN}") from None
    with zf:
        members = set(zf.namelist())

        def clip_rows() -> Iterator[tuple[Any, ...]]:
            for i, row in enumerate(clips_meta, start=1):
                cid = row["clip_id"]
                blobs: list[bytes | None] = []
                for name in ARRAYS:
                    member = f"{cid}.{name}.npy"
                    if member in members:
                        try:
                            npy = zf.read(member)
                        except ZIP_DAMAGE as e:
                            raise StoreError(
                                f"{npz} is damaged: its array {cid}.{name} cannot be read ({_reason(e)}); "
                                f"nothing was imported; {EXPORT_AGAIN}"
                            ) from None
                        blobs.append(pack(npy))
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

        return _import(store, label, clip_rows(), queries, answers, reused)


def _check_env_ids(store: PreferenceStore, env_ids: set[str], src: Path) -> None:
    other = sorted(env_ids - {store.env_id})
    if other:
        raise StoreError(
            f"{src} holds clips of env {', '.join(map(repr, other))}, but the store {store.path} "
            f"holds env {store.env_id!r}; nothing was imported"
        )


def _import(
    store: PreferenceStore,
    label: str,
    clip_rows: Iterable[tuple[Any, ...]],
    queries: list[Query],
    answers: dict[int, tuple[Any, ...]],
    reused: Collection[tuple[str, str, float]],
) -> ImportReport:
    query_ids = {q.query_id for q in queries}
    orphans = sorted(set(answers) - query_ids)
    if orphans:
        raise StoreError(f"{label} has answers to queries it does not contain: {orphans[:5]}")
    for qid, (answer, *_) in answers.items():
        if answer not in _ANSWER_SET:
            raise StoreError(f"{label}: query {qid} has the answer {answer!r}, which is not an Answer value")
    clips_added = queries_added = answers_added = conflicting = already_reused = restored = 0
    try:
        known = store.recent_clips(1)
    except DamagedClipError:  # a damaged store being mended by this import: the import's clips decide
        known = []
    shapes = {name: shape for clip in known for name, shape in _step_shapes(clip).items()}
    skipped = {(q.left_clip_id, q.right_clip_id, q.created_at) for q in queries} & set(reused)
    kept = {
        c
        for q in queries
        if (q.left_clip_id, q.right_clip_id, q.created_at) not in skipped
        for c in (q.left_clip_id, q.right_clip_id)
    }
    # the clips of pairs the run already reuses, and of no other: the labeler would pair them again
    reused_only = {c for left, right, _ in skipped for c in (left, right)} - kept
    with store._write() as conn:
        aside = clips_of_set_aside_queries(conn)
        answered_before = _answered_in_use(conn)
        for source_row in clip_rows:
            row, expected = tuple(source_row[:11]), source_row[11]
            checksum = clip_checksum(row[6:10])
            if expected is not None and expected != checksum:
                raise StoreError(
                    f"{label}: clip {row[0]} is damaged (its arrays do not match their "
                    "checksum); nothing was imported"
                )
            _check_clip_row(row, label, shapes)
            if row[1] != store.env_id:  # the caller checked; this guards the stream itself
                _check_env_ids(store, {row[1]}, Path(label))
            if row[0] in reused_only:
                continue
            clips_added += conn.execute(INSERT_CLIP, (*row, checksum)).rowcount
            if row[0] in aside:
                restored += restore_clip(conn, row, checksum)
        answers_restored = _answered_in_use(conn) - answered_before
        for q in queries:
            if (q.left_clip_id, q.right_clip_id, q.created_at) in reused:
                already_reused += int(q.query_id in answers)
                continue
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
                        (
                            q.left_clip_id,
                            q.right_clip_id,
                            q.created_at,
                            q.agent_step,
                            q.oracle,
                            q.selection,
                            q.score,
                            f"{label}#{q.query_id}",
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise StoreError(
                        f"{label}: query {q.query_id} compares clips {q.left_clip_id} and "
                        f"{q.right_clip_id}, which neither it nor {store.path} holds; nothing was imported"
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
                    ours = conn.execute("SELECT answer FROM answers WHERE query_id = ?", (qid,)).fetchone()
                    conflicting += int(ours[0] != answers[q.query_id][0])
    report = ImportReport(label, clips_added, queries_added, answers_added, conflicting, already_reused)
    return replace(report, clips_restored=restored, answers_restored=answers_restored)


def _answered_in_use(conn: sqlite3.Connection) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM answers WHERE {IN_USE}").fetchone()[0])


def _check_clip_row(row: tuple[Any, ...], label: str, shapes: dict[str, tuple[int, ...]]) -> None:
    """Check that an imported clip's arrays decode and have ``length`` rows (a row of
    ``CLIP_COLUMNS``), as the store checks what it reads, and that each step of them has
    the shape in ``shapes`` (the env's, from a clip the store or the import had before;
    set from this one where none had)."""
    try:
        clip = load_clip((*row[:5], *row[6:10], None))
    except Damaged as reason:
        raise StoreError(f"{label}: clip {row[0]} is damaged ({reason}); nothing was imported") from None
    for name, shape in _step_shapes(clip).items():
        expected = shapes.setdefault(name, shape)
        if shape != expected:
            raise StoreError(
                f"{label}: clip {row[0]} has {name} of shape {shape} per step, where the other clips of "
                f"env {row[1]} have {expected}: it is not a clip of this env (was its env_id edited?); "
                "nothing was imported"
            )


def _step_shapes(clip: Clip) -> dict[str, tuple[int, ...]]:
    # what the reward model reads; not the snapshots, whose width may differ between runs
    # of one env (an Atari state's bytes, padded as each run first saw them)
    return {"observations": tuple(clip.obs.shape[1:]), "actions": tuple(clip.actions.shape[1:])}


# -- files ----------------------------------------------------------------------------


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise StoreError(
                f"{path} lacks the columns {', '.join(missing)}; is it a preference-store export?"
            )
        rows = list(reader)
    for i, row in enumerate(rows, start=1):
        extra = row.pop(None, [])  # DictReader's cells past the header's; None for cells short of it
        if extra or None in row.values():
            cells = sum(v is not None for v in row.values()) + len(extra)
            raise StoreError(
                f"{path}, data row {i} has {cells} cell{'s' * (cells != 1)} where its header names {len(reader.fieldnames or ())}: "
                f"the file was cut short or edited; {EXPORT_AGAIN}"
            )
    return rows


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


def _reason(err: BaseException) -> str:
    return str(err) or type(err).__name__


# -- paths ----------------------------------------------------------------------------


def _run_env_id(run_dir: Path) -> str | None:
    """The env id a run directory's ``config.json`` names, if it has one."""
    config = run_dir / "config.json"
    if not config.is_file():
        return None
    env_id = RunDir(run_dir).read_config().get("env_id")
    return str(env_id) if env_id else None


def _open_source(src: Path) -> PreferenceStore:
    """The store file ``src``, given as a source of labels, opened. A file that is no
    intact SQLite database is refused in words for a source (what a source is), not with
    the advice for mending a run's own store."""
    try:
        return PreferenceStore(src)
    except StoreError:
        check_file(src, source=True)
        raise


_VERIFIED: dict[Path, tuple[tuple[int, ...], ...] | None] = {}
"""export directories :func:`_source_env_id` checked, with their files' stats then: the
import of one that follows, its files unchanged, does not read them all again to hash them"""


def _file_stats(src: Path) -> tuple[tuple[int, ...], ...] | None:
    """Device, inode, size and modification time of the files of the export ``src``."""
    try:
        stats = [os.stat(src / name) for name in (*EXPORT_FILES, MANIFEST)]
    except OSError:
        return None
    return tuple((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) for st in stats)


def _source_env_id(src: Path, gathering: bool = False) -> str:
    """The env of an import source (an export directory or a store file); ``gathering``:
    for :func:`gather_labels`, which an export without clips has no labels for."""
    if src.is_file():
        with _open_source(src) as other:
            return other.env_id
    stats = _file_stats(src)  # before the check: a change while it reads is a change
    check_export_files(src)
    env_ids = {row["env_id"] for row in _read_csv(src / "clips.csv", CLIPS_CSV)}
    if gathering and not env_ids:
        raise StoreError(f"{src} holds no labels: it is the export of a store without clips")
    if len(env_ids) != 1:
        raise StoreError(
            f"cannot tell which env a new store for {src} would hold "
            f"({'it holds no clips' if not env_ids else 'it holds clips of several envs'}); "
            "import into a run directory whose config.json names it"
        )
    _VERIFIED[src.resolve()] = stats  # the import that follows hashes it not again
    return env_ids.pop()
