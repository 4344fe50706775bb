"""``prefrl export``: a preference store written out as an export directory, and the
check that an export directory is whole before it is read (:mod:`prefrl.prefs.exchange`
imports it).

An export directory holds ``clips.npz`` (every clip's arrays), three CSV files
(``clips.csv``, ``queries.csv``, ``answers.csv``) and ``manifest.json`` (what each of them
holds, so that import refuses a truncated or altered one); see :func:`export_store`.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefrl import __version__
from prefrl.prefs.blobs import ARRAYS, clip_checksum, to_npy
from prefrl.prefs.errors import StoreError
from prefrl.prefs.schema import CLIP_IN_USE, IN_USE, QUERY_COLUMNS, REUSED_STORE_NAME, STORE_NAME, store_file
from prefrl.prefs.store import PreferenceStore
from prefrl.rundir import mkdir_refusal, run_holding
from prefrl.utils.io import atomic_write, fsync_file

# CSV headers of an export directory.
CLIPS_CSV = (
    "clip_id",
    "env_id",
    "agent_step",
    "episode_step",
    "length",
    "true_return",
    "has_snapshots",
    "created_at",
)
QUERIES_CSV = (
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
ANSWERS_CSV = ("query_id", "answer", "answered_at", "oracle", "response_time")
EXPORT_FILES = ("clips.npz", "clips.csv", "queries.csv", "answers.csv")
MANIFEST = "manifest.json"
"""an export's record of its files: what :func:`_check_manifest` checks them against"""
EXPORT_FORMAT = 1
"""the version of the export's files that manifest.json records (exports without one are older)"""
EXPORT_AGAIN = "export it again from its run (`prefrl export RUN_DIR OUT`)"


def _unchecked(src: Path) -> str:
    """The second way out of a refusal by :func:`_check_manifest` (the run may be gone)."""
    return (
        "or, if it was changed on purpose (a corrected label, its line endings converted), "
        f"delete {src / MANIFEST} to import it unchecked"
    )


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
    parts = run_stores(source) or [store_file(source)]
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


def run_stores(path: Path) -> list[Path]:
    """The stores a run directory passes its labels on in: its own (``prefs.sqlite``) and
    the labels it reused (``reused.sqlite``), those it holds; [] for anything but a run
    directory (a store file, an export directory)."""
    if not path.is_dir() or (path / "clips.csv").exists():
        return []
    return [p for p in (path / STORE_NAME, path / REUSED_STORE_NAME) if p.is_file()]


def _write_export(store: PreferenceStore, out: Path, reused: PreferenceStore | None = None) -> dict[str, int]:
    """Write the export of ``store`` to ``out`` (see :func:`export_store`); return the rows
    written to each CSV file (``clips``, ``queries``, ``answers``).

    ``reused``: the labels the run of ``store`` reused (``reused.sqlite``), written after
    its own rows, less what it holds already, as
    :func:`~prefrl.prefs.exchange.gather_labels` leaves it out (:class:`_ReusedRows`); the
    counts then also say how many rows are reused ones (``reused_clips``,
    ``reused_queries``, ``reused_answers``).
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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        words = mkdir_refusal(err)
        if words is None:
            raise
        raise StoreError(f"cannot export to {out}: {words}; name another directory") from None
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
                sql = (
                    "SELECT clip_id, obs, actions, true_rewards, snapshots, checksum FROM clips "
                    f"WHERE {CLIP_IN_USE} ORDER BY rowid"
                )
                rows = conn.execute(sql)
                for cid, *blobs, checksum in (
                    rows if extra is None else itertools.chain(rows, extra.clips(sql))
                ):
                    if checksum is not None and clip_checksum(blobs) != checksum:
                        # an export carries no checksum of its own: an import would take the
                        # damaged arrays as whole
                        raise StoreError(
                            f"clip {cid} of {extra.path if extra and cid in extra.added else store.path} is damaged "
                            "(its arrays do not match their checksum); run `prefrl repair RUN_DIR`, which sets "
                            "damaged clips' queries aside, then export again"
                        )
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
            fsync_file(npz)
            files: dict[str, dict[str, Any]] = {"clips.npz": {"arrays": arrays}}
            tables = (
                (
                    "clips.csv",
                    CLIPS_CSV,
                    "SELECT clip_id, env_id, agent_step, episode_step, length, true_return, "
                    f"snapshots IS NOT NULL, created_at FROM clips WHERE {CLIP_IN_USE} ORDER BY rowid",
                ),
                (
                    "queries.csv",
                    QUERIES_CSV,
                    f"SELECT {QUERY_COLUMNS}, source FROM queries WHERE {IN_USE} ORDER BY query_id",
                ),
                (
                    "answers.csv",
                    ANSWERS_CSV,
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
                fsync_file(tmp)
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
    to the rows of its own store (read in ``own``): what
    :func:`~prefrl.prefs.exchange.import_into` would add of them, as
    :func:`~prefrl.prefs.exchange.gather_labels` gathers a run's labels. A clip the store
    holds is not written again, nor a query of the same clips made at the same time (the store's own
    stands for it); the other queries are numbered after the store's, and an answer goes
    along unless the store has answered that query already."""

    def __init__(self, reused: PreferenceStore, conn: sqlite3.Connection, own: sqlite3.Connection):
        self.path, self.conn = reused.path, conn
        held = {row[0] for row in own.execute(f"SELECT clip_id FROM clips WHERE {CLIP_IN_USE}")}
        self.added = {row[0] for row in conn.execute(f"SELECT clip_id FROM clips WHERE {CLIP_IN_USE}")} - held
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


def check_export_files(src: Path) -> None:
    """Check that ``src`` is an export directory whose files are as it was written (see
    :func:`_check_manifest`), before anything is read from it.

    Raises:
        StoreError: a file is missing, truncated or altered; the message says to export again.
    """
    missing = [n for n in EXPORT_FILES if not (src / n).is_file()]
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
        expected = {name: (int(files[name]["bytes"]), str(files[name]["sha256"])) for name in EXPORT_FILES}
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError(f"its version is {version!r}, not a whole number")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(
            f"{path} is damaged ({type(e).__name__}: {e}); nothing was imported; {EXPORT_AGAIN}, "
            f"{_unchecked(src)}"
        ) from None
    if version > EXPORT_FORMAT:
        raise StoreError(
            f"{path} is of export format {version!r}, which this prefrl cannot read (it reads "
            f"{EXPORT_FORMAT}); import it with the prefrl that exported it, or a newer one"
        )
    for name in EXPORT_FILES:
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
        raise StoreError(f"{src / name} {what}; nothing was imported; {EXPORT_AGAIN}, {_unchecked(src)}")


def _count(path: Path) -> int:
    """The arrays of an export's .npz file, or the data rows of one of its CSV files."""
    if path.suffix == ".npz":
        with zipfile.ZipFile(path) as zf:
            return len(zf.namelist())
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# -- files ----------------------------------------------------------------------------


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _digest(path: Path) -> dict[str, Any]:
    """A file's size and SHA-256, as manifest.json records them."""
    with open(path, "rb") as f:
        return {"bytes": os.fstat(f.fileno()).st_size, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}
