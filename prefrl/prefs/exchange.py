"""Export and import of a preference store: how labels move between runs, and how a
damaged store is replaced (``prefrl export RUN_DIR OUT``, ``prefrl import RUN_DIR SOURCE``).

An export directory holds ``clips.npz`` (every clip's arrays), three CSV files
(``clips.csv``, ``queries.csv``, ``answers.csv``) and ``manifest.json`` (what each of them
holds, so that import refuses a truncated or altered one); see :func:`export_store`.
:func:`import_into` merges an export directory, or another store's ``.sqlite`` file, into
a store: what the store already holds is recognised and not copied again, and an answer
it holds is never replaced.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import os
import sqlite3
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefrl import __version__
from prefrl.prefs.blobs import ARRAYS, Damaged, clip_checksum, load_clip, pack, to_npy
from prefrl.prefs.clips import Answer
from prefrl.prefs.errors import StoreError
from prefrl.prefs.schema import (
    CLIP_COLUMNS,
    IN_USE,
    INSERT_CLIP,
    QUERY_COLUMNS,
    REUSED_STORE_NAME,
    STORE_NAME,
    check_file,
    store_file,
)
from prefrl.prefs.store import PreferenceStore, Query
from prefrl.rundir import RunDir, mark_stopped_if_dead, run_holding
from prefrl.utils.io import atomic_write

_ANSWER_SET = frozenset(a.value for a in Answer)
# What leaves a store (export, or import from it): neither the queries set aside by
# `prefrl repair` nor the damaged clips they show; they stay in their store, for the record.
_INTACT = "clip_id NOT IN (SELECT clip_id FROM set_aside)"

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
_EXPORT_FILES = ("clips.npz", "clips.csv", "queries.csv", "answers.csv")
MANIFEST = "manifest.json"
"""an export's record of its files: what :func:`_check_manifest` checks them against"""
EXPORT_FORMAT = 1
"""the version of the export's files that manifest.json records (exports without one are older)"""

# What reading a damaged .npz file (a zip archive) raises: a member whose CRC-32 or header
# does not match (BadZipFile), a deflated member that does not inflate (zlib.error,
# EOFError), header fields no zip writer sets (NotImplementedError), offsets past the end
# (OSError, ValueError).
_ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError)
_EXPORT_AGAIN = "export it again from its run (`prefrl export RUN_DIR OUT`)"


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_into` added.

    Attributes:
        source: the export directory or ``.sqlite`` file imported (absolute path).
        clips_added, queries_added, answers_added: rows added to the store.
        answers_conflicting: source answers to queries this store had already answered
            differently; the store's answer was kept.
    """

    source: str
    clips_added: int
    queries_added: int
    answers_added: int
    answers_conflicting: int = 0


def export_store(
    store_or_path: PreferenceStore | str | os.PathLike[str], directory: str | os.PathLike[str]
) -> Path:
    """Write the whole store to ``directory`` (created if needed) and return its path.

    ``store_or_path`` is an open store, a run directory (its ``prefs.sqlite``, and the
    labels it reused: see :func:`export_run`) or a store file. Files (existing ones are
    replaced)::

        clips.npz     arrays keyed "<clip_id>.obs", "<clip_id>.actions",
                      "<clip_id>.true_rewards", "<clip_id>.snapshots" (when captured)
        clips.csv     clip_id, env_id, agent_step, episode_step, length, true_return,
                      has_snapshots (0/1), created_at
        queries.csv   query_id, left_clip_id, right_clip_id, created_at, agent_step,
                      oracle, selection, score, source
        answers.csv   query_id, answer, answered_at, oracle, response_time
        manifest.json {"format": "prefrl-export", "version": 1, "prefrl_version": ...,
                       "files": {NAME: {"rows": data rows (clips.npz: "arrays"),
                                        "bytes": size, "sha256": hex digest}, ...}}

    Times are Unix times in seconds, response_time is in seconds, empty cells are
    missing values. The export is one consistent state of the store, even while other
    processes write to it. ``manifest.json`` is written last: an export cut short has
    none, and is read as an export of a prefrl that wrote none (unchecked).

    Raises:
        StoreError: there is no store at ``store_or_path``, or it is damaged.
    """
    out = Path(directory)
    if isinstance(store_or_path, PreferenceStore):
        _write_export(store_or_path, out)
    else:
        export_run(store_or_path, out)
    return out


def export_run(path: str | os.PathLike[str], directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``prefrl export``: export the store of a run directory (or a store file) to ``directory``.

    A run that reused labels (``prefrl train --labels-from``) passes them on with its own,
    as ``--labels-from RUN`` does: the export holds the pairs of its ``reused.sqlite`` too,
    but none twice (see :func:`_write_export`).

    Returns:
        A JSON-serialisable dict: ``store`` (None for a run with no labels of its own),
        ``reused_store`` (a run that reused labels), ``export`` (paths), and the rows
        written: ``clips``, ``queries`` (answered or not) and ``answers``, and, with
        reused labels, how many of them are reused ones: ``reused_clips``,
        ``reused_queries`` and ``reused_answers``.
    """
    source, out = Path(path), Path(directory)
    parts = _run_parts(source) or [store_file(source)]
    reused = source / REUSED_STORE_NAME if source / REUSED_STORE_NAME in parts else None
    own = parts[0] if parts[0] != reused else None
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(PreferenceStore(p)) for p in parts]
        counts = _write_export(stores[0], out, *stores[1:])
    if own is None:  # nothing but reused labels
        counts.update({f"reused_{name}": n for name, n in list(counts.items())})
    where = {"store": None if own is None else str(own)}
    if reused is not None:
        where["reused_store"] = str(reused)
    return {**where, "export": str(out), **counts}


def _run_parts(path: Path) -> list[Path]:
    """The stores a run directory passes its labels on in: its own (``prefs.sqlite``) and
    the labels it reused (``reused.sqlite``), those it holds; [] for anything but a run
    directory (a store file, an export directory)."""
    if not path.is_dir() or (path / "clips.csv").exists():
        return []
    return [p for p in (path / STORE_NAME, path / REUSED_STORE_NAME) if p.is_file()]


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
    mark_stopped_if_dead(run)  # killed: its status.json said running
    RunDir(run).check_not_running(then=f"prefrl import {path} {source}")
    run_parts = _run_parts(source)
    parts = run_parts or [source]  # another run directory: its stores
    store_path = target / STORE_NAME if target.is_dir() else target
    env_id = None
    created = not store_path.exists()
    if created:
        if not target.is_dir() and target.suffix != ".sqlite":
            raise StoreError(f"there is no run directory or preference store at {target}")
        if not source.exists():
            raise StoreError(f"cannot import {source}: no such file or directory")
        env_id = _run_env_id(store_path.parent) or _source_env_id(parts[0])
    with PreferenceStore(store_path, env_id) as store:
        reports = [import_into(store, part) for part in parts]
        answered = store.num_answered()
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
        parts = _run_parts(src)
        if not parts:
            raise StoreError(
                f"{src} holds no labels: pass the run directory of a preference run, a store "
                "file (.sqlite) or a directory written by `prefrl export`"
            )
    env_id = _source_env_id(parts[0])
    try:
        with PreferenceStore(out, env_id) as store:
            for part in parts:
                import_into(store, part)
            answered, trainable = store.num_answered(), store.num_trainable()
    except BaseException:
        for leftover in (out, Path(f"{out}-wal"), Path(f"{out}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    return GatheredLabels(
        env_id,
        tuple(str(p.resolve()) for p in parts),
        answered,
        trainable,
    )


def _write_export(store: PreferenceStore, out: Path, reused: PreferenceStore | None = None) -> dict[str, int]:
    """Write the export of ``store`` to ``out`` (see :func:`export_store`); return the rows
    written to each CSV file (``clips``, ``queries``, ``answers``).

    ``reused``: the labels the run of ``store`` reused (``reused.sqlite``), written after
    its own rows, less what it holds already, as :func:`gather_labels` leaves it out
    (:class:`_ReusedRows`); the counts then also say how many rows are reused ones
    (``reused_clips``, ``reused_queries``, ``reused_answers``).
    """
    if out.exists() and not out.is_dir():
        raise StoreError(f"cannot export to {out}: it is a file; name a directory")
    run = run_holding(out)
    if run is not None:
        where = "it is a run directory" if run == out.resolve() else f"it is inside the run directory {run}"
        raise StoreError(
            f"cannot export to {out}: {where}; name a directory outside any run, "
            f"e.g. {run.parent / (run.name + '-export')}"
        )
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, Path]] = []
    counts: dict[str, int] = {}
    try:
        with contextlib.ExitStack() as snapshots:
            conn = snapshots.enter_context(store._snapshot())
            extra = (
                None
                if reused is None
                else _ReusedRows(reused, snapshots.enter_context(reused._snapshot()), conn)
            )
            npz = _partial(out / "clips.npz")
            written.append((npz, out / "clips.npz"))
            arrays = 0
            with zipfile.ZipFile(npz, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                sql = f"SELECT clip_id, obs, actions, true_rewards, snapshots FROM clips WHERE {_INTACT} ORDER BY rowid"
                rows = conn.execute(sql)
                for cid, *blobs in rows if extra is None else itertools.chain(rows, extra.clips(sql)):
                    for name, blob in zip(ARRAYS, blobs, strict=True):
                        if blob is not None:
                            # .npy files, which is what np.savez stores; large ones deflated
                            try:
                                npy = to_npy(blob)
                            except zlib.error:
                                raise StoreError(
                                    f"clip {cid} of {extra.path if extra and cid in extra.added else store.path} is damaged (its {name} array does not "
                                    "decompress); run `prefrl repair RUN_DIR`, which sets damaged clips' "
                                    "queries aside, then export again"
                                ) from None
                            method = zipfile.ZIP_STORED if npy is blob else zipfile.ZIP_DEFLATED
                            zf.writestr(f"{cid}.{name}.npy", npy, compress_type=method, compresslevel=1)
                            arrays += 1
            _sync(npz)
            files: dict[str, dict[str, Any]] = {"clips.npz": {"arrays": arrays}}
            tables = (
                (
                    "clips.csv",
                    _CLIPS_CSV,
                    "SELECT clip_id, env_id, agent_step, episode_step, length, true_return, "
                    f"snapshots IS NOT NULL, created_at FROM clips WHERE {_INTACT} ORDER BY rowid",
                ),
                (
                    "queries.csv",
                    _QUERIES_CSV,
                    f"SELECT {QUERY_COLUMNS}, source FROM queries WHERE {IN_USE} ORDER BY query_id",
                ),
                (
                    "answers.csv",
                    _ANSWERS_CSV,
                    "SELECT query_id, answer, answered_at, oracle, response_time FROM answers "
                    f"WHERE {IN_USE} ORDER BY query_id",
                ),
            )
            for name, header, sql in tables:
                tmp = _partial(out / name)
                written.append((tmp, out / name))
                with open(tmp, "w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f)
                    writer.writerow(header)
                    table = conn.execute(sql).fetchall()
                    added = [] if extra is None else extra.rows(name, sql)
                    writer.writerows(["" if v is None else v for v in row] for row in table + added)
                counts[name.removesuffix(".csv")] = len(table) + len(added)
                files[name] = {"rows": len(table) + len(added)}
                if extra is not None:
                    counts[f"reused_{name.removesuffix('.csv')}"] = len(added)
                _sync(tmp)
        for tmp, final in written:
            files[final.name].update(_digest(tmp))
        # The store only grows, so replacing the files in this order (clips before the
        # queries that use them, queries before their answers) leaves a consistent export
        # even if the process dies between two replacements; without its manifest then,
        # as an older prefrl's export, unchecked.
        (out / MANIFEST).unlink(missing_ok=True)
        for tmp, final in written:
            os.replace(tmp, final)
        manifest = {"format": "prefrl-export", "version": EXPORT_FORMAT, "prefrl_version": __version__}
        atomic_write(out / MANIFEST, json.dumps({**manifest, "files": files}, indent=2) + "\n")
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
    return counts


class _ReusedRows:
    """What an export of a run adds of the labels it reused (``reused``, read in ``conn``)
    to the rows of its own store (read in ``own``): what :func:`import_into` would add of
    them, as :func:`gather_labels` gathers a run's labels. A clip the store holds is not
    written again, nor a query of the same clips made at the same time (the store's own
    stands for it); the other queries are numbered after the store's, and an answer goes
    along unless the store has answered that query already."""

    def __init__(self, reused: PreferenceStore, conn: sqlite3.Connection, own: sqlite3.Connection):
        self.path, self.conn = reused.path, conn
        held = {row[0] for row in own.execute(f"SELECT clip_id FROM clips WHERE {_INTACT}")}
        self.added = {row[0] for row in conn.execute(f"SELECT clip_id FROM clips WHERE {_INTACT}")} - held
        ids = {
            tuple(key): qid
            for qid, *key in own.execute(
                f"SELECT query_id, left_clip, right_clip, created_at FROM queries WHERE {IN_USE}"
            )
        }
        answered = {row[0] for row in own.execute(f"SELECT query_id FROM answers WHERE {IN_USE}")}
        next_id = max(ids.values(), default=0) + 1
        self.queries: list[tuple[Any, ...]] = []
        to: dict[int, int] = {}  # query id in reused.sqlite -> in the export
        for qid, *row in conn.execute(
            f"SELECT {QUERY_COLUMNS}, source FROM queries WHERE {IN_USE} ORDER BY query_id"
        ):
            key = tuple(row[:3])
            if key not in ids:
                ids[key], next_id = next_id, next_id + 1
                self.queries.append((ids[key], *row))
            to[qid] = ids[key]
        self.answers: list[tuple[Any, ...]] = []
        for qid, *row in conn.execute(
            f"SELECT query_id, answer, answered_at, oracle, response_time FROM answers WHERE {IN_USE} ORDER BY query_id"
        ):
            if to[qid] not in answered:
                answered.add(to[qid])
                self.answers.append((to[qid], *row))

    def clips(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """The rows of the clips to add, of those ``sql`` reads (clip_id first)."""
        return (row for row in self.conn.execute(sql) if row[0] in self.added)

    def rows(self, name: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows to add to the export's CSV file ``name``, which ``sql`` reads from a store."""
        if name == "clips.csv":
            return list(self.clips(sql))
        return self.queries if name == "queries.csv" else self.answers


def import_into(store: PreferenceStore, source: str | os.PathLike[str]) -> ImportReport:
    """Copy the clips, queries and answers of ``source`` into ``store``, in one transaction.

    ``source`` is an export directory (see :func:`export_store`) or another store's ``.sqlite``
    file. Clips are matched by clip_id; queries get new ids in ``store``, their ``source`` column
    records ``"<source path>#<query_id there>"``, and a query ``store`` already holds
    (same clips, same creation time) is not copied again, so importing a source twice
    adds nothing the second time. An answer the source has for a query ``store`` holds
    unanswered is added; an answer there is never replaced.

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
        return _import_export_dir(store, src, label)
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
        clip_rows = conn.execute(f"SELECT {CLIP_COLUMNS}, checksum FROM clips WHERE {_INTACT} ORDER BY rowid")
        return _import(store, label, clip_rows, queries, answers)


def _import_export_dir(store: PreferenceStore, src: Path, label: str) -> ImportReport:
    _check_export_files(src)
    clips_meta = _read_csv(src / "clips.csv", _CLIPS_CSV)
    _check_env_ids(store, {row["env_id"] for row in clips_meta}, src)
    queries = []
    for i, row in enumerate(_read_csv(src / "queries.csv", _QUERIES_CSV), start=1):
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
    for i, row in enumerate(_read_csv(src / "answers.csv", _ANSWERS_CSV), start=1):
        with _csv_row(src / "answers.csv", i):
            answers[int(row["query_id"])] = (
                row["answer"],
                float(row["answered_at"]),
                row["oracle"],
                _opt_float(row["response_time"]),
            )
    npz = src / "clips.npz"
    try:
        zf = zipfile.ZipFile(npz)
    except _ZIP_DAMAGE as e:
        raise StoreError(f"{npz} is not a readable .npz file ({_reason(e)}); {_EXPORT_AGAIN}") from None
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
                        except _ZIP_DAMAGE as e:
                            raise StoreError(
                                f"{npz} is damaged: its array {cid}.{name} cannot be read ({_reason(e)}); "
                                f"nothing was imported; {_EXPORT_AGAIN}"
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

        return _import(store, label, clip_rows(), queries, answers)


def _check_export_files(src: Path) -> None:
    missing = [n for n in _EXPORT_FILES if not (src / n).is_file()]
    if missing:
        raise StoreError(
            f"{src} is not a preference-store export (missing {', '.join(missing)}); "
            "pass a directory written by `prefrl export` or a .sqlite store"
        )
    _check_manifest(src)


def _check_manifest(src: Path) -> None:
    """Check the files of the export ``src`` against its manifest.json: their size, SHA-256
    and rows. An export without one (written by an older prefrl) is read unchecked."""
    path = src / MANIFEST
    if not path.exists():
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version, files = manifest["version"], manifest["files"]
        expected = {name: (int(files[name]["bytes"]), str(files[name]["sha256"])) for name in _EXPORT_FILES}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{path} is damaged ({_reason(e)}); nothing was imported; {_EXPORT_AGAIN}") from None
    if not isinstance(version, int) or version > EXPORT_FORMAT:
        raise StoreError(
            f"{path} is of export format {version!r}, which this prefrl cannot read (it reads "
            f"{EXPORT_FORMAT}); import it with the prefrl that exported it, or a newer one"
        )
    for name in _EXPORT_FILES:
        size, sha256 = expected[name]
        found = _digest(src / name)
        if found["bytes"] < size:
            what = f"is truncated ({found['bytes']} bytes; {MANIFEST} records {size})"
        elif found["sha256"] != sha256:
            what = f"was altered since it was exported (its SHA-256 is not the one {MANIFEST} records)"
        else:
            rows, unit = _count(src / name), "arrays" if name == "clips.npz" else "rows"
            if rows == files[name].get(unit, rows):
                continue
            what = f"holds {rows} {unit}, {MANIFEST} records {files[name][unit]}: it was truncated or altered"
        raise StoreError(f"{src / name} {what}; nothing was imported; {_EXPORT_AGAIN}")


def _count(path: Path) -> int:
    """The arrays of an export's .npz file, or the data rows of one of its CSV files."""
    if path.suffix == ".npz":
        with zipfile.ZipFile(path) as zf:
            return len(zf.namelist())
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


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
) -> ImportReport:
    query_ids = {q.query_id for q in queries}
    orphans = sorted(set(answers) - query_ids)
    if orphans:
        raise StoreError(f"{label} has answers to queries it does not contain: {orphans[:5]}")
    for qid, (answer, *_) in answers.items():
        if answer not in _ANSWER_SET:
            raise StoreError(f"{label}: query {qid} has the answer {answer!r}, which is not an Answer value")
    clips_added = queries_added = answers_added = conflicting = 0
    with store._write() as conn:
        for source_row in clip_rows:
            row, expected = tuple(source_row[:11]), source_row[11]
            checksum = clip_checksum(row[6:10])
            if expected is not None and expected != checksum:
                raise StoreError(
                    f"{label}: clip {row[0]} is damaged (its arrays do not match their "
                    "checksum); nothing was imported"
                )
            _check_clip_row(row, label)
            if row[1] != store.env_id:  # the caller checked; this guards the stream itself
                _check_env_ids(store, {row[1]}, Path(label))
            clips_added += conn.execute(INSERT_CLIP, (*row, checksum)).rowcount
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
    return ImportReport(label, clips_added, queries_added, answers_added, conflicting)


def _check_clip_row(row: tuple[Any, ...], label: str) -> None:
    """Check that an imported clip's arrays decode and have ``length`` rows (a row of
    ``CLIP_COLUMNS``), as the store checks what it reads."""
    try:
        load_clip((*row[:5], *row[6:10], None))
    except Damaged as reason:
        raise StoreError(f"{label}: clip {row[0]} is damaged ({reason}); nothing was imported") from None


# -- files ----------------------------------------------------------------------------


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(path: Path) -> dict[str, Any]:
    """A file's size and SHA-256, as manifest.json records them."""
    with open(path, "rb") as f:
        return {"bytes": os.fstat(f.fileno()).st_size, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


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


def _source_env_id(src: Path) -> str:
    """The env of an import source (an export directory or a store file)."""
    if src.is_file():
        with _open_source(src) as other:
            return other.env_id
    _check_export_files(src)
    env_ids = {row["env_id"] for row in _read_csv(src / "clips.csv", _CLIPS_CSV)}
    if len(env_ids) != 1:
        raise StoreError(
            f"cannot tell which env a new store for {src} would hold "
            f"({'it holds no clips' if not env_ids else 'it holds clips of several envs'}); "
            "import into a run directory whose config.json names it"
        )
    return env_ids.pop()
