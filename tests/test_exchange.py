from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_store import ENV, answer_all, assert_same_clip, flip_byte, make_clip

from prefrl.cli import main
from prefrl.prefs.clips import Answer, Clip
from prefrl.prefs.exchange import ImportReport, export_store, gather_labels, import_into
from prefrl.prefs.store import PreferenceStore, StoreError


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def dump(store: PreferenceStore) -> tuple[list[tuple], list[tuple], dict[str, Clip]]:
    """Queries and answers keyed by content (not query_id), and all clips."""
    conn = store._conn
    queries = conn.execute(
        "SELECT left_clip, right_clip, created_at, agent_step, oracle, selection, score FROM queries ORDER BY query_id"
    ).fetchall()
    answers = conn.execute(
        "SELECT q.left_clip, q.right_clip, q.created_at, a.answer, a.answered_at, a.oracle, a.response_time "
        "FROM answers a JOIN queries q USING (query_id) ORDER BY q.query_id"
    ).fetchall()
    clip_ids = [row[0] for row in conn.execute("SELECT clip_id FROM clips")]
    return queries, answers, store.get_clips(clip_ids)


def filled_store(path: Path, rng: np.random.Generator) -> PreferenceStore:
    store = PreferenceStore(path, ENV)
    answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.CANT_TELL])
    store.add_query(
        make_clip(rng, snapshots=False), make_clip(rng), agent_step=7, oracle="human", selection="random"
    )  # pending, no score, one clip without snapshots
    store.add_clip(make_clip(rng, 10))  # a clip in no query
    return store


def assert_same_dump(a: PreferenceStore, b: PreferenceStore) -> None:
    qa, aa, ca = dump(a)
    qb, ab, cb = dump(b)
    assert qa == qb and aa == ab and set(ca) == set(cb)
    for cid, clip in ca.items():
        assert_same_clip(cb[cid], clip)


def test_export_files(tmp_path: Path, rng: np.random.Generator) -> None:
    with filled_store(tmp_path / "prefs.sqlite", rng) as store:
        out = export_store(store, tmp_path / "export")
        assert out == tmp_path / "export"
        assert sorted(p.name for p in out.iterdir()) == [
            "answers.csv",
            "clips.csv",
            "clips.npz",
            "manifest.json",
            "queries.csv",
        ]
        _, _, clips = dump(store)
        with np.load(out / "clips.npz") as npz:
            assert len(npz.files) == 4 * len(clips) - 1  # one clip has no snapshots
            for cid, clip in clips.items():
                np.testing.assert_array_equal(npz[f"{cid}.obs"], clip.obs)
                assert npz[f"{cid}.obs"].dtype == np.float32
                np.testing.assert_array_equal(npz[f"{cid}.true_rewards"], clip.true_rewards)
        with open(out / "answers.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["answer"] for r in rows] == ["left", "right", "equal", "cant_tell"]
        assert rows[0]["response_time"] == "1.5"
        with open(out / "queries.csv", newline="") as f:
            queries = list(csv.DictReader(f))
        assert list(queries[0]) == [
            "query_id",
            "left_clip_id",
            "right_clip_id",
            "created_at",
            "agent_step",
            "oracle",
            "selection",
            "score",
            "source",
        ]
        assert [q["score"] for q in queries] == ["0.5"] * 4 + [""]
        with open(out / "clips.csv", newline="") as f:
            clip_rows = list(csv.DictReader(f))
        assert len(clip_rows) == len(clips) == 11
        assert sorted(r["has_snapshots"] for r in clip_rows).count("0") == 1
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["format"] == "prefrl-export" and manifest["version"] == 1
        counts = {"clips.npz": ("arrays", 43), "clips.csv": ("rows", 11), "queries.csv": ("rows", 5)}
        for name, (unit, n) in {**counts, "answers.csv": ("rows", 4)}.items():
            data = (out / name).read_bytes()
            digest = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            assert manifest["files"][name] == {unit: n, **digest}


def test_export_import_round_trip_and_twice_adds_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    with filled_store(tmp_path / "a.sqlite", rng) as a:
        export = export_store(a, tmp_path / "export")
        with PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
            report = import_into(b, export)
            assert report == ImportReport(str(export.resolve()), 11, 5, 4, 0)
            assert_same_dump(a, b)
            sources = [row[0] for row in b._conn.execute("SELECT source FROM queries ORDER BY query_id")]
            assert sources == [f"{export.resolve()}#{i}" for i in range(1, 6)]
            assert b.answer_counts() == a.answer_counts() and b.num_answered() == 4
            assert [(lab.mu, lab.agent_step) for lab in b.labels()] == [
                (lab.mu, lab.agent_step) for lab in a.labels()
            ]
            assert len(b.pending_queries()) == 1

            assert import_into(b, export) == ImportReport(str(export.resolve()), 0, 0, 0, 0)
            # The same data reached through the other store's file is recognised too.
            assert import_into(b, a.path) == ImportReport(str(a.path.resolve()), 0, 0, 0, 0)
            assert_same_dump(a, b)


def test_import_from_sqlite_file_and_late_answer(tmp_path: Path, rng: np.random.Generator) -> None:
    with filled_store(tmp_path / "a.sqlite", rng) as a, PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
        assert import_into(b, a.path) == ImportReport(str(a.path.resolve()), 11, 5, 4, 0)
        assert_same_dump(a, b)
        # The query pending in both gets answered in a; importing again brings only that answer.
        (pending,) = a.pending_queries()
        a.record_answer(pending.query_id, Answer.RIGHT, oracle="human")
        assert import_into(b, a.path) == ImportReport(str(a.path.resolve()), 0, 0, 1, 0)
        assert_same_dump(a, b)
        assert b.pending_queries() == []
        with pytest.raises(StoreError, match="into itself"):
            import_into(b, b.path)


def test_import_keeps_own_answer_on_conflict(tmp_path: Path, rng: np.random.Generator) -> None:
    with PreferenceStore(tmp_path / "a.sqlite", ENV) as a, PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
        a.add_query(make_clip(rng), make_clip(rng), agent_step=0, oracle="human", selection="random")
        import_into(b, a.path)
        a.record_answer(1, Answer.LEFT, oracle="alice")
        b.record_answer(1, Answer.RIGHT, oracle="bob")
        assert import_into(b, a.path) == ImportReport(str(a.path.resolve()), 0, 0, 0, 1)
        assert [lab.answer for lab in b.labels()] == [Answer.RIGHT]


def test_import_other_env_is_refused_and_imports_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    with PreferenceStore(tmp_path / "hopper.sqlite", "Hopper-v4") as hopper:
        hopper.add_query(
            make_clip(rng, env_id="Hopper-v4"),
            make_clip(rng, env_id="Hopper-v4"),
            agent_step=0,
            oracle="human",
            selection="random",
        )
        hopper.record_answer(1, Answer.LEFT, oracle="human")
        export = export_store(hopper, tmp_path / "hopper-export")
    with filled_store(tmp_path / "prefs.sqlite", rng) as store:
        before = dump(store)
        for source in (export, tmp_path / "hopper.sqlite"):
            with pytest.raises(StoreError, match=r"'Hopper-v4'.*'CartPole-v1'.*nothing was imported"):
                import_into(store, source)
        after = dump(store)
        assert before[:2] == after[:2] and set(before[2]) == set(after[2])


def test_clips_of_another_shape_than_the_envs_are_refused_and_nothing_is_imported(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    # an export whose env_id was edited: the env's name matches, its arrays do not
    with PreferenceStore(tmp_path / "forged.sqlite", ENV) as forged:
        wide = make_clip(rng)
        wide = dataclasses.replace(wide, obs=np.zeros((wide.length, 3), np.float32))
        forged.add_query(make_clip(rng), wide, agent_step=0, oracle="human", selection="random")
        forged.record_answer(1, Answer.LEFT, oracle="human")
        export = export_store(forged, tmp_path / "forged-export")
    with (
        filled_store(tmp_path / "prefs.sqlite", rng) as store,
        PreferenceStore(tmp_path / "new.sqlite", ENV) as new,
    ):
        for target in (store, new):  # shapes known from the store's clips, or from the import's first
            before = dump(target)
            for source in (export, tmp_path / "forged.sqlite"):
                with pytest.raises(
                    StoreError,
                    match=rf"clip {wide.clip_id} has observations of shape \(3,\) per step, where the other clips "
                    rf"of env {ENV} have \(4,\): it is not a clip of this env \(was its env_id edited\?\); "
                    "nothing was imported",
                ):
                    import_into(target, source)
            after = dump(target)
            assert before[:2] == after[:2] and set(before[2]) == set(after[2])


def test_import_of_incomplete_export_imports_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    with filled_store(tmp_path / "a.sqlite", rng) as a:
        export = export_store(a, tmp_path / "export")
    lines = (export / "clips.csv").read_text().splitlines(keepends=True)
    (export / "clips.csv").write_text("".join(lines[:3]))  # header and two clips: most queries lose clips
    (export / "manifest.json").unlink()  # as an older prefrl's export: no sizes and checksums to compare
    with PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
        with pytest.raises(StoreError, match="neither it nor"):
            import_into(b, export)
        assert b._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0
        with pytest.raises(StoreError, match="not a preference-store export"):
            import_into(b, tmp_path)
        with pytest.raises(StoreError, match="no such file"):
            import_into(b, tmp_path / "missing")


def test_import_refuses_a_damaged_source_clip(tmp_path: Path, rng: np.random.Generator) -> None:
    src = tmp_path / "src.sqlite"
    with PreferenceStore(src, ENV) as store:
        answer_all(store, rng, [Answer.LEFT])
        victim = store.labels()[0].left_clip_id
    flip_byte(src, victim, "true_rewards", 130)
    with PreferenceStore(tmp_path / "dst.sqlite", ENV) as dst:
        with pytest.raises(StoreError, match=f"clip {victim} is damaged .*; nothing was imported"):
            import_into(dst, src)
        assert dst.num_answered() == 0 and dst._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0
    # nor does it pass through an export, which carries no checksum per clip: export refuses it
    with PreferenceStore(src) as store, pytest.raises(StoreError) as err:
        export_store(store, tmp_path / "export")
    assert str(err.value) == (
        f"clip {victim} of {src} is damaged (its arrays do not match their checksum); run `prefrl repair "
        "RUN_DIR`, which sets damaged clips' queries aside, then export again"
    )
    assert not (tmp_path / "export" / "manifest.json").exists()


@pytest.mark.parametrize("via", ["export", "store"])
def test_what_repair_set_aside_stays_behind(tmp_path: Path, rng: np.random.Generator, via: str) -> None:
    src = tmp_path / "src.sqlite"
    with PreferenceStore(src, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL])
        damaged = store.labels()[1]
    flip_byte(src, damaged.left_clip_id, "obs", 140)
    with PreferenceStore(src) as store:
        store.set_aside_damaged()
        kept = [(lbl.query_id, lbl.answer) for lbl in store.labels()]
        source = export_store(store, tmp_path / "export") if via == "export" else src
    with PreferenceStore(tmp_path / "dst.sqlite", ENV) as dst:
        import_into(dst, source)
        assert [lbl.answer for lbl in dst.labels()] == [answer for _, answer in kept]
        assert dst.num_answered() == 2 and dst.pending_queries() == []
        clip_ids = {row[0] for row in dst._conn.execute("SELECT clip_id FROM clips")}
        assert damaged.left_clip_id not in clip_ids


@pytest.mark.parametrize("via", ["export", "store"])
def test_an_intact_copy_restores_what_repair_set_aside(
    tmp_path: Path, rng: np.random.Generator, via: str
) -> None:
    src = tmp_path / "prefs.sqlite"
    with PreferenceStore(src, ENV) as store:
        answer_all(store, rng, [Answer.LEFT, Answer.RIGHT, Answer.EQUAL, Answer.LEFT])
        labels = store.labels()
        copy = export_store(store, tmp_path / "export") if via == "export" else tmp_path / "copy.sqlite"
        if via == "store":
            store._conn.execute(f"VACUUM INTO '{copy}'")
    one, both = labels[1], labels[3]
    flip_byte(src, one.left_clip_id, "obs", 140)
    flip_byte(src, both.left_clip_id, "actions", 140)
    flip_byte(src, both.right_clip_id, "actions", 140)
    with PreferenceStore(src) as store:
        assert store.set_aside_damaged().answers_set_aside == 2
        assert store.num_answered() == 2
    # a copy in which query 4 is set aside too brings query 2 back, not query 4
    with PreferenceStore(tmp_path / "partial.sqlite", ENV) as partial:
        import_into(partial, copy)
        flip_byte(partial.path, both.right_clip_id, "actions", 140)
        partial.set_aside_damaged()
    with PreferenceStore(src) as store:
        report = import_into(store, tmp_path / "partial.sqlite")
        assert (report.clips_restored, report.answers_restored, report.answers_added) == (1, 1, 0)
        assert store.num_answered() == 3
        assert set(store.set_aside_queries()) == {both.query_id}
        report = import_into(store, copy)  # both of query 4's clips damaged: one import mends both
        assert (report.clips_restored, report.answers_restored, report.answers_added) == (2, 1, 0)
        assert store.labels() == labels
        assert store.set_aside_queries() == {} and store.set_aside_damaged().damaged_clips == ()
        with PreferenceStore(tmp_path / "copy-check.sqlite", ENV) as check:
            import_into(check, copy)
            intact = check.get_clips([both.right_clip_id])[both.right_clip_id]
        assert_same_clip(store.get_clips([both.right_clip_id])[both.right_clip_id], intact)
        assert import_into(store, copy).clips_restored == 0
    # the same after repair named only one of them: an export leaves both behind
    flip_byte(src, both.left_clip_id, "actions", 140)
    flip_byte(src, both.right_clip_id, "actions", 140)
    with PreferenceStore(src) as store:
        assert store.set_aside_damaged().answers_set_aside == 1
        export_store(store, tmp_path / "after")  # leaves both damaged clips behind, not only the one named
        report = import_into(store, copy)
        assert (report.clips_restored, report.answers_restored) == (2, 1)
        assert store.labels() == labels and store.set_aside_damaged().damaged_clips == ()


# -- prefrl export / prefrl import ----------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, dict | None, str]:
    """Run ``prefrl ARGV``: (exit code, the JSON it printed or None, what it wrote to stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def run_with_store(path: Path, rng: np.random.Generator) -> Path:
    path.mkdir()
    filled_store(path / "prefs.sqlite", rng).close()
    return path


@pytest.mark.parametrize("fresh_store", ["created by import", "empty, of the same env"])
def test_cli_export_then_import_into_a_fresh_store_matches_exactly(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str], fresh_store: str
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    out = tmp_path / "export"
    code, printed, err = cli(capsys, "export", run, out)
    assert (code, err) == (0, "")
    assert printed == {
        "store": str(run / "prefs.sqlite"),
        "export": str(out),
        "clips": 11,
        "queries": 5,
        "answers": 4,
    }
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    if fresh_store != "created by import":
        PreferenceStore(fresh / "prefs.sqlite", ENV).close()
    code, printed, err = cli(capsys, "import", fresh, out)
    assert (code, err) == (0, "")
    assert printed == {
        "store": str(fresh / "prefs.sqlite"),
        "created": fresh_store == "created by import",
        "source": str(out.resolve()),
        "clips_added": 11,
        "queries_added": 5,
        "answers_added": 4,
        "answers_conflicting": 0,
        "answers_already_reused": 0,
        "clips_restored": 0,
        "answers_restored": 0,
        "answered": 4,
    }
    with PreferenceStore(run / "prefs.sqlite") as a, PreferenceStore(fresh / "prefs.sqlite") as b:
        assert b.env_id == ENV
        assert_same_dump(a, b)  # every query, answer and clip, arrays bit for bit
        assert b.labels() == a.labels() and b.pending_queries() == a.pending_queries()

    # Importing again, from the export, the store it came from or its run, adds nothing.
    for source in (out, run / "prefs.sqlite", run):
        code, printed, err = cli(capsys, "import", fresh, source)
        assert (code, err) == (0, "")
        assert printed is not None and printed["created"] is False
        added = [printed[k] for k in ("clips_added", "queries_added", "answers_added")]
        assert added == [0, 0, 0] and printed["answered"] == 4


def test_cli_import_of_another_env_is_refused_in_one_line(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    hopper = tmp_path / "hopper"
    hopper.mkdir()
    with PreferenceStore(hopper / "prefs.sqlite", "Hopper-v4") as store:
        store.add_query(
            make_clip(rng, env_id="Hopper-v4"),
            make_clip(rng, env_id="Hopper-v4"),
            agent_step=0,
            oracle="human",
            selection="random",
        )
    assert cli(capsys, "export", hopper, tmp_path / "hopper-export")[0] == 0
    run = run_with_store(tmp_path / "run", rng)
    with PreferenceStore(run / "prefs.sqlite") as store:
        before = dump(store)
    for source in (tmp_path / "hopper-export", hopper / "prefs.sqlite"):
        code, printed, err = cli(capsys, "import", run, source)
        assert (code, printed) == (2, None)
        assert err.count("\n") == 1 and err.startswith("prefrl import: error: ")
        assert "'Hopper-v4'" in err and "'CartPole-v1'" in err and "nothing was imported" in err
    with PreferenceStore(run / "prefs.sqlite") as store:
        after = dump(store)
    assert before[:2] == after[:2] and set(before[2]) == set(after[2])

    # A run directory without a store takes the env its config.json names.
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"env_id": ENV}))
    code, _, err = cli(capsys, "import", other, hopper / "prefs.sqlite")
    assert code == 2 and err.count("\n") == 1 and "nothing was imported" in err


def test_cli_export_and_import_errors_are_one_line(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    (run / "config.json").write_text(json.dumps({"kind": "train", "env_id": ENV}))
    (tmp_path / "empty").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "baseline" / "checkpoints").mkdir(parents=True)
    (tmp_path / "baseline" / "config.json").write_text(
        json.dumps({"kind": "baseline", "prefrl_version": "0.1.0"})
    )
    exported = tmp_path / "exported"
    assert cli(capsys, "export", run, exported)[0] == 0
    shared = sorted(p.name for p in exported.iterdir())
    cases = [
        (("export", tmp_path / "empty", tmp_path / "out"), "there is no preference store at"),
        (("export", run, tmp_path / "a-file"), "is a file; name a directory"),
        (
            ("export", run, run),
            f"cannot export to {run}: it is a run directory; name a directory outside any run, "
            f"e.g. {tmp_path / 'run-export'}",
        ),
        (("export", run / "prefs.sqlite", run / "backup"), f"it is inside the run directory {run};"),
        (
            ("export", run, tmp_path / "baseline" / "labels"),
            f"inside the run directory {tmp_path / 'baseline'};",
        ),
        (("import", run, tmp_path / "missing"), "no such file or directory"),
        (("import", tmp_path / "missing", run / "prefs.sqlite"), "no run directory or preference store"),
        (("import", run, tmp_path / "empty"), "not a preference-store export"),
        (("import", tmp_path / "new", tmp_path / "empty"), "not a preference-store export"),
        (("import", run, run / "prefs.sqlite"), "into itself"),
        (
            ("import", run / "config.json", run),
            f"cannot import into {run / 'config.json'}: it is no preference store (not an SQLite database); "
            "name the run directory, or its prefs.sqlite",
        ),
        (
            ("import", tmp_path / "baseline", run),
            f"{tmp_path / 'baseline'} is a baseline run, which trains on no labels of its own; import into "
            "a preference run (prefrl train) or into a store file (a path ending in .sqlite)",
        ),
        (("export", run, Path("/proc/prefrl-export")), "does not allow creating directories"),
        (  # the two arguments swapped
            ("import", exported, run),
            f"{exported} is an export (prefrl export), not a run: import it into a run, prefrl import "
            f"RUN_DIR {exported}, or into a store file (a path ending in .sqlite)",
        ),
    ]
    for argv, words in cases:
        code, printed, err = cli(capsys, *argv)
        assert (code, printed) == (2, None), argv
        assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "missing").exists() and not (tmp_path / "out").exists()
    assert list((tmp_path / "new").iterdir()) == []  # no store is created for a source that is none
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "prefs.sqlite",
        "run.lock",
    ]  # held, let go
    assert not (tmp_path / "baseline" / "labels").exists()
    assert sorted(p.name for p in exported.iterdir()) == shared  # no store made among its files
    assert cli(capsys, "import", exported / "back.sqlite", exported)[0] == 0  # a store file, named
    mine = tmp_path / "mine"  # a directory with another tool's answers.csv is no export
    mine.mkdir()
    (mine / "answers.csv").write_text("id,answer\n")
    assert cli(capsys, "import", mine, exported)[0] == 0
    other = tmp_path / "ml-project"  # another tool's config.json and checkpoints/: no run
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"lr": 0.1}))
    assert cli(capsys, "export", run, other / "labels")[0] == 0


def test_a_damaged_store_names_the_commands_that_restore_it(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    store_path = run / "prefs.sqlite"
    assert cli(capsys, "export", run, tmp_path / "backup")[0] == 0
    with PreferenceStore(store_path) as store:
        labels = store.labels()
    data = store_path.read_bytes()
    store_path.write_bytes(data[: len(data) // 2])  # truncated: SQLite's own check fails
    code, printed, err = cli(capsys, "export", run, tmp_path / "again")
    assert (code, printed) == (2, None) and err.count("\n") == 1
    assert "damaged" in err and f"`prefrl import {run} EXPORT_DIR|COPY.sqlite`" in err
    # Doing what it says: move the store aside, import the export into a new one.
    store_path.rename(tmp_path / "damaged.sqlite")
    code, printed, err = cli(capsys, "import", run, tmp_path / "backup")
    assert (code, err) == (0, "") and printed is not None
    assert printed["created"] is True and printed["answered"] == 4
    with PreferenceStore(store_path) as store:
        assert store.env_id == ENV and store.labels() == labels


def test_a_source_that_is_no_intact_store_is_refused_as_a_source_not_as_a_store_to_mend(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    notes = tmp_path / "notes.sqlite"
    notes.write_text("hi\n")
    damaged = tmp_path / "copy.sqlite"
    data = (run / "prefs.sqlite").read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    for source, words in (
        (notes, f"{notes} is not a preference store or an export (it is not an SQLite database)"),
        (damaged, f"the preference store {damaged} is damaged"),
    ):
        code, printed, err = cli(capsys, "import", run, source)
        assert (code, printed) == (2, None) and err.count("\n") == 1
        assert words in err and "a run's prefs.sqlite" in err and "`prefrl export`" in err
        assert "aside" not in err and "`prefrl import" not in err, err
    with pytest.raises(StoreError, match="is not a preference store or an export") as info:
        gather_labels(notes, tmp_path / "gathered.sqlite")  # what --labels-from does
    assert "aside" not in str(info.value)
    assert notes.read_text() == "hi\n"


def flip_npz_byte(export: Path, member: str) -> None:
    """Flip the last byte of ``member``'s data in the export's clips.npz (small arrays are
    stored, not deflated, so their bytes stand in the file as they are)."""
    npz = export / "clips.npz"
    with np.load(npz) as arrays:
        assert member in arrays.files
    with zipfile.ZipFile(npz) as zf:
        stored = zf.read(f"{member}.npy")
    data = bytearray(npz.read_bytes())
    at = data.find(stored) + len(stored) - 1
    assert data.count(stored) == 1 and at > 0
    data[at] ^= 0xFF
    npz.write_bytes(bytes(data))


EXPORT_AGAIN = "; nothing was imported; export it again from its run (`prefrl export RUN_DIR OUT`)"


def or_unchecked(export: Path) -> str:
    """The end of a refusal by manifest.json: export again, or import it unchecked."""
    return (
        f"{EXPORT_AGAIN}, or, if it was changed on purpose (a corrected label, its line endings "
        f"converted), delete {export / 'manifest.json'} to import it unchecked"
    )


@pytest.mark.parametrize("manifest", [True, False], ids=["export", "older prefrl's export"])
def test_a_flipped_byte_in_an_exports_clips_npz_is_refused_in_one_line(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str], manifest: bool
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    export = tmp_path / "export"
    assert cli(capsys, "export", run, export)[0] == 0
    if not manifest:
        (export / "manifest.json").unlink()
    with PreferenceStore(run / "prefs.sqlite") as store:
        victim = store.labels()[1].right_clip_id
    flip_npz_byte(export, f"{victim}.obs")
    npz = export / "clips.npz"
    with PreferenceStore(tmp_path / "dst.sqlite", ENV) as dst:
        with pytest.raises(StoreError) as info:
            import_into(dst, export)
        assert dst._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0
    message = str(info.value)
    assert "\n" not in message and message.endswith(or_unchecked(export) if manifest else EXPORT_AGAIN)
    if manifest:  # checked against manifest.json before anything is read
        assert message.startswith(f"{npz} was altered since it was exported (its SHA-256 ")
    else:
        assert message.startswith(f"{npz} is damaged: its array {victim}.obs cannot be read (Bad CRC-32 ")
    with pytest.raises(StoreError, match=f"{npz} "):  # what --labels-from and fit-reward do
        gather_labels(export, tmp_path / "gathered.sqlite")
    assert not (tmp_path / "gathered.sqlite").exists()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, printed, err = cli(capsys, "import", fresh, export)
    assert (code, printed) == (2, None) and err == f"prefrl import: error: {message}\n"
    # refused before a store was made for it (manifest), or the store made for it removed
    assert list(fresh.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "cut"),
    [
        ("answers.csv", lambda data: data[:-3]),  # the last response time 1.5 read as 1.0
        ("answers.csv", lambda data: data[: data.rstrip().rfind(b"\n") + 1]),  # 3 answers of 4, whole rows
        ("queries.csv", lambda data: data[:-1]),
        ("clips.npz", lambda data: data[:-1]),
    ],
    ids=["mid-number", "a whole row", "queries.csv", "clips.npz"],
)
def test_an_export_cut_short_is_refused_in_one_line(
    tmp_path: Path,
    rng: np.random.Generator,
    capsys: pytest.CaptureFixture[str],
    name: str,
    cut: Callable[[bytes], bytes],
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    export = tmp_path / "export"
    assert cli(capsys, "export", run, export)[0] == 0
    data = (export / name).read_bytes()
    (export / name).write_bytes(cut(data))
    with PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
        with pytest.raises(StoreError) as info:
            import_into(b, export)
        assert b._conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0
    size = len(cut(data))
    assert str(info.value).startswith(
        f"{export / name} is truncated ({size} bytes; manifest.json records {len(data)})"
    )
    assert str(info.value).endswith(or_unchecked(export))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, printed, err = cli(capsys, "import", fresh, export)
    assert (code, printed, err) == (2, None, f"prefrl import: error: {info.value}\n")
    assert list(fresh.iterdir()) == []


def test_an_export_altered_or_with_a_damaged_manifest_is_refused_and_an_older_one_imports(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    with filled_store(tmp_path / "a.sqlite", rng) as a:
        export = export_store(a, tmp_path / "export")
        manifest = json.loads((export / "manifest.json").read_text())

        def refused(words: str) -> None:
            with PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
                with pytest.raises(StoreError) as info:
                    import_into(b, export)
                assert b.num_answered() == 0
            assert words in str(info.value) and "\n" not in str(info.value)
            (tmp_path / "b.sqlite").unlink()

        answers = (export / "answers.csv").read_bytes()
        (export / "answers.csv").write_bytes(answers.replace(b"cant_tell", b"cant_tel2"))  # same size
        refused(f"{export / 'answers.csv'} was altered since it was exported (its SHA-256 is not the one")
        (export / "answers.csv").write_bytes(answers + b"9,left,1.0,human,\r\n")
        refused(f"{export / 'answers.csv'} was altered since it was exported")
        (export / "answers.csv").write_bytes(answers)
        (export / "manifest.json").write_text(json.dumps(manifest)[:-20])
        refused(f"{export / 'manifest.json'} is damaged (")
        (export / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
        refused("is of export format 2, which this prefrl cannot read (it reads 1)")
        (export / "manifest.json").write_text(json.dumps({**manifest, "version": "1"}))
        refused(f"{export / 'manifest.json'} is damaged (TypeError: its version is '1', not a whole number)")
        manifest["files"]["answers.csv"]["rows"] = 5
        (export / "manifest.json").write_text(json.dumps(manifest))
        refused(
            f"{export / 'answers.csv'} holds 4 rows, manifest.json records 5: it was truncated or altered"
        )

        # An export written before prefrl wrote manifest.json imports as it always did.
        (export / "manifest.json").unlink()
        first = answers.splitlines(keepends=True)[1]  # the first answer's row, given again, changed
        (export / "answers.csv").write_bytes(answers + first.replace(b",left,", b",right,"))
        refused(
            f"{export / 'answers.csv'}, data row 5: query 1 is answered a second time; keep one of its rows"
        )
        for cut in (answers[:-7], answers[:-2] + b",human\r\n"):  # a row cut short; one with a cell too many
            (export / "answers.csv").write_bytes(cut)
            cells = 4 if cut == answers[:-7] else 6
            refused(
                f"{export / 'answers.csv'}, data row 4 has {cells} cells where its header names 5: the file "
                "was cut short or edited; export it again"
            )
        (export / "answers.csv").write_bytes(answers)
        with PreferenceStore(tmp_path / "b.sqlite", ENV) as b:
            assert import_into(b, export) == ImportReport(str(export.resolve()), 11, 5, 4, 0)
            assert_same_dump(a, b)


@pytest.mark.parametrize("change", ["a corrected label", "line endings converted"])
def test_an_export_changed_on_purpose_is_refused_with_both_ways_out_and_imports_unchecked(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    run = run_with_store(tmp_path / "run", rng)
    export = tmp_path / "export"
    assert cli(capsys, "export", run, export)[0] == 0
    answers = export / "answers.csv"
    data = answers.read_bytes()
    if change == "a corrected label":
        data = data.replace(b",equal,", b",right,", 1)  # the same size: only its hash tells
        what = "was altered since it was exported (its SHA-256 is not the one manifest.json records)"
    else:  # git's autocrlf on a checkout: csv's CRLF as LF
        data = data.replace(b"\r\n", b"\n")
        what = f"is truncated ({len(data)} bytes; manifest.json records {answers.stat().st_size})"
    answers.write_bytes(data)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, printed, err = cli(capsys, "import", fresh, export)
    assert (code, printed) == (2, None)
    assert err == f"prefrl import: error: {answers} {what}{or_unchecked(export)}\n"
    (export / "manifest.json").unlink()  # the way out the message names
    code, printed, err = cli(capsys, "import", fresh, export)
    assert (code, err) == (0, "") and printed is not None and printed["answers_added"] == 4
    with PreferenceStore(fresh / "prefs.sqlite") as store:
        counts = store.answer_counts()
    if change == "a corrected label":
        assert (counts[Answer.EQUAL], counts[Answer.RIGHT]) == (0, 2)


def test_an_export_is_hashed_once_per_import(
    tmp_path: Path,
    rng: np.random.Generator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefrl.prefs import export as export_module

    run = run_with_store(tmp_path / "run", rng)
    export = tmp_path / "export"
    assert cli(capsys, "export", run, export)[0] == 0
    hashed: list[str] = []
    digest = export_module._digest

    def recorded(path: Path) -> dict:
        hashed.append(path.name)
        return digest(path)

    monkeypatch.setattr(export_module, "_digest", recorded)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert cli(capsys, "import", fresh, export)[0] == 0  # a new store: its env read from the export first
    assert sorted(hashed) == ["answers.csv", "clips.csv", "clips.npz", "queries.csv"]
    hashed.clear()
    gather_labels(export, tmp_path / "gathered.sqlite")  # --labels-from, fit-reward
    assert sorted(hashed) == ["answers.csv", "clips.csv", "clips.npz", "queries.csv"]
    hashed.clear()
    assert cli(capsys, "import", fresh, export)[0] == 0  # into the store it holds now
    assert sorted(hashed) == ["answers.csv", "clips.csv", "clips.npz", "queries.csv"]
