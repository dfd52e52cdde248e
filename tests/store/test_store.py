"""The experiment store: schema and migrations, models, runs, epochs with checkpoints, results, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from remapdsl.store.db import (
    MIGRATIONS,
    SCHEMA_VERSION,
    EpochRow,
    MissingCheckpoint,
    Store,
    StoreError,
    default_store_path,
    split_sql,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / ".remap" / "remap.db")
    yield s
    s.close()


def add_run(store: Store, hash: str = "h1", name: str = "small") -> int:
    store.add_model(hash, f"model {name}:\n    flatten\n    dense 10\n", name=name, params=650, flops=1300)
    return store.add_run(hash, name, data_key="digits|val=0.2|seed=0", data_text="data digits",
                         settings_key="epochs=2", settings={"epochs": 2})


def epoch(n: int, acc: float = 0.5) -> EpochRow:
    return EpochRow(0, n, 1.0 / n, acc, 1.1 / n, acc, 0.25)


def test_a_new_store_is_in_wal_mode_with_the_current_schema(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"models", "model_names", "runs", "epochs", "predictions", "confusion", "artifacts", "jobs",
            "distances"} <= tables


def test_the_distances_table_has_the_shared_schema(store: Store) -> None:
    columns = store.conn.execute("PRAGMA table_info(distances)").fetchall()
    assert [(c[1], c[2], c[3], c[5]) for c in columns] == [
        ("space", "TEXT", 0, 1), ("a", "TEXT", 0, 2), ("b", "TEXT", 0, 3), ("lp", "REAL", 0, 0),
        ("value", "REAL", 1, 0)]


def test_reopening_keeps_the_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        add_run(s)
    with Store(path) as s:
        assert [r.model_name for r in s.runs()] == ["small"]


def test_an_older_schema_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import remapdsl.store.db as store_module

    path = tmp_path / "s.db"
    with Store(path) as s:
        add_run(s)
    extra = "ALTER TABLE models ADD COLUMN note TEXT NOT NULL DEFAULT '';\nCREATE INDEX models_note ON models(note);"
    monkeypatch.setattr(store_module, "MIGRATIONS", (*MIGRATIONS, extra))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with Store(path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
        assert s.conn.execute("SELECT note FROM models").fetchall() == [("",)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    c = sqlite3.connect(path)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    c.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_a_corrupt_file_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="not a remapdsl store"):
        Store(path)
    assert path.read_bytes() == junk


def test_a_path_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store folder"):
        Store(blocker / "sub" / "remap.db")
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path)


def test_default_path_is_in_the_workspace_of_the_file(tmp_path: Path) -> None:
    assert default_store_path(tmp_path / "a.remap") == tmp_path.resolve() / ".remap" / "remap.db"


def test_split_sql_keeps_statements_whole() -> None:
    assert split_sql("CREATE TABLE a(x TEXT DEFAULT ';');\nCREATE TABLE b(y);\n") == [
        "CREATE TABLE a(x TEXT DEFAULT ';');", "CREATE TABLE b(y);"]


def test_models_are_kept_by_hash_with_every_name(store: Store) -> None:
    first = store.add_model("h1", "text", name="a", source="x.remap", origin="ablation", changes="removed relu at 1",
                            parent="h0", params=10)
    again = store.add_model("h1", "other text", name="b", source="x.remap")
    assert again == first
    assert (first.origin, first.changes, first.parent, first.params) == ("ablation", "removed relu at 1", "h0", 10)
    assert sorted(store.model_names("h1")) == ["a", "b"]
    assert [m.hash for m in store.models()] == ["h1"]
    with pytest.raises(ValueError, match="unknown origin 'magic'"):
        store.add_model("h2", "t", origin="magic")


def test_a_name_follows_its_latest_architecture(store: Store) -> None:
    store.add_model("h1", "t1", name="a", source="x.remap")
    store.add_model("h2", "t2", name="a", source="x.remap")
    assert store.model_names("h1") == []
    assert store.model_names("h2") == ["a"]


def test_epochs_and_checkpoints_are_committed_together(store: Store) -> None:
    run = add_run(store)
    assert store.last_checkpoint(run) is None
    assert store.record_epoch(run, epoch(1), b"state-1")
    assert store.record_epoch(run, epoch(2), b"state-2")
    assert [e.epoch for e in store.epochs(run)] == [1, 2]
    assert store.last_checkpoint(run) == (2, b"state-2")
    # only the latest checkpoint file is kept
    files = list((store.path.parent / "checkpoints").glob("run-*.pt"))
    assert len(files) == 1
    assert [a.epoch for a in store.artifacts(run_id=run, kind="checkpoint")] == [2]


def test_an_epoch_is_never_recorded_twice(store: Store) -> None:
    run = add_run(store)
    assert store.record_epoch(run, epoch(1, 0.5), b"first")
    assert not store.record_epoch(run, epoch(1, 0.9), b"second")
    assert [e.val_acc for e in store.epochs(run)] == [0.5]
    assert store.last_checkpoint(run) == (1, b"first")
    assert len(list((store.path.parent / "checkpoints").glob("*.pt"))) == 1


def test_finishing_a_run_keeps_results(store: Store) -> None:
    run = add_run(store)
    store.start_run(run, n_train=1000, params=650, flops=1300)
    store.record_epoch(run, EpochRow(run, 1, 1.0, 0.5, 1.0, 0.6, 0.5))
    store.record_epoch(run, EpochRow(run, 2, 0.5, 0.8, 0.6, 0.85, 0.5))
    confusion = np.array([[3, 1], [0, 4]])
    store.finish_run(run, "done", used_device="cpu", predictions=np.array([0, 1, 1, 1], dtype=np.int16),
                     confusion=confusion, per_class=np.array([0.75, 1.0]))
    row = store.run(run)
    assert row is not None
    assert (row.status, row.val_acc, row.val_loss, row.seconds, row.used_device) == ("done", 0.85, 0.6, 1.0, "cpu")
    assert row.settings == {"epochs": 2}
    np.testing.assert_array_equal(store.predictions(run), [0, 1, 1, 1])
    saved = store.confusion(run)
    assert saved is not None
    np.testing.assert_array_equal(saved.matrix, confusion)
    np.testing.assert_allclose(saved.per_class, [0.75, 1.0])


def test_find_runs_matches_architecture_data_and_settings(store: Store) -> None:
    run = add_run(store)
    assert [r.id for r in store.find_runs("h1", "digits|val=0.2|seed=0", "epochs=2")] == [run]
    assert store.find_runs("h1", "digits|val=0.2|seed=0", "epochs=3") == []


def test_artifacts_reference_files_on_disk(store: Store, tmp_path: Path) -> None:
    run = add_run(store)
    onnx = tmp_path / "small.onnx"
    onnx.write_bytes(b"onnx")
    store.add_artifact("onnx", onnx, run_id=run, model_hash="h1", meta={"latency_ms": 0.1})
    [art] = store.artifacts(kind="onnx")
    assert (art.path, art.run_id, art.model_hash, art.meta) == (str(onnx), run, "h1", {"latency_ms": 0.1})


def stored_checkpoint_path(store: Store, run: int) -> str:
    return store.conn.execute("SELECT path FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'",
                              (run,)).fetchone()[0]


def test_a_store_opened_by_a_relative_path_finds_its_files_from_anywhere(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "ws")
    with Store(Path(".remap") / "remap.db") as s:
        assert s.path == tmp_path / "ws" / ".remap" / "remap.db"
        run = add_run(s)
        assert s.record_epoch(run, epoch(1), b"state-1")
        # referenced relative to the store's folder, not to the current one
        assert stored_checkpoint_path(s, run).startswith("checkpoints/run-1-epoch-1-")
        onnx = s.folder("onnx") / "m.onnx"
        onnx.write_bytes(b"onnx")
        s.add_artifact("onnx", Path(".remap") / "onnx" / "m.onnx", run_id=run)
    monkeypatch.chdir(tmp_path / "elsewhere")
    with Store(Path("..") / "ws" / ".remap" / "remap.db") as s:
        assert s.last_checkpoint(run) == (1, b"state-1")
        [art] = s.artifacts(kind="onnx")
        assert art.path == str(onnx)
    # the whole workspace moved: its store still finds its files
    (tmp_path / "ws").rename(tmp_path / "moved")
    with Store(tmp_path / "moved" / ".remap" / "remap.db") as s:
        assert s.last_checkpoint(run) == (1, b"state-1")
        assert s.record_epoch(run, epoch(2), b"state-2")  # and the older file is still cleaned up
        assert [p.name for p in (s.path.parent / "checkpoints").iterdir()] == [Path(
            stored_checkpoint_path(s, run)).name]


def test_paths_stored_by_older_versions_are_still_found(store: Store, tmp_path: Path) -> None:
    run = add_run(store)
    file = store.folder("checkpoints") / "run-1-epoch-3-abcd.pt"
    file.write_bytes(b"old")
    # absolute, as older versions stored them when the store was opened by an absolute path
    store.conn.execute("INSERT INTO artifacts(run_id, kind, path, epoch, created) VALUES (?, 'checkpoint', ?, 3, 0)",
                       (run, str(file)))
    assert store.last_checkpoint(run) == (3, b"old")
    # relative to the current folder of the process that wrote it, as they stored them otherwise
    store.conn.execute("UPDATE artifacts SET path = 'some/where/.remap/checkpoints/run-1-epoch-3-abcd.pt'")
    assert store.last_checkpoint(run) == (3, b"old")


def test_a_checkpoint_whose_file_is_gone_is_reported_not_ignored(store: Store) -> None:
    run = add_run(store)
    store.record_epoch(run, epoch(1), b"state-1")
    [file] = (store.path.parent / "checkpoints").iterdir()
    file.unlink()
    with pytest.raises(MissingCheckpoint, match=f"the checkpoint of run {run} after epoch 1 is missing: {file} does "
                                                "not exist") as e:
        store.last_checkpoint(run)
    assert e.value.path == file and e.value.epoch == 1
    assert [e.epoch for e in store.epochs(run)] == [1]


def test_a_failed_write_leaves_nothing_behind(store: Store) -> None:
    run = add_run(store)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as c:
        c.execute("INSERT INTO epochs(run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, recorded) "
                  "VALUES (?, 1, 0, 0, 0, 0, 0, 0)", (run,))
        c.execute("INSERT INTO epochs(run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, recorded) "
                  "VALUES (9999, 1, 0, 0, 0, 0, 0, 0)")  # no such run: foreign key
    assert store.epochs(run) == []


def _writer(path: str, worker: int, count: int) -> None:
    with Store(path) as s:
        for i in range(count):
            hash = f"w{worker}-{i}"
            s.add_model(hash, "t", name=hash)
            run = s.add_run(hash, hash, data_key="d", data_text="data digits", settings_key="s", settings={})
            s.record_epoch(run, EpochRow(run, 1, 0, 0, 0, 0, 0))
            s.runs()


def test_several_processes_write_at_once_without_lock_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "remap.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store(path) as s:
        assert len(s.models()) == 160
        assert s.conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 160
