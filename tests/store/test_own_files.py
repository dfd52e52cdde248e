"""The store deletes only files it wrote in its own folder, refuses databases that are not its own, and sweeps
what crashed writers left behind."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from remapdsl.store.db import EpochRow, Store, StoreError


def epoch(run_id: int, n: int) -> EpochRow:
    return EpochRow(run_id, n, 1.0, 0.5, 1.0, 0.5, 0.1)


def add_run(store: Store) -> int:
    store.add_model("h1", "model a:\n    flatten\n    dense 10\n", name="a")
    return store.add_run("h1", "a", data_key="d", data_text="data digits", settings_key="s", settings={})


def test_a_checkpoint_row_naming_an_outside_file_never_deletes_it(tmp_path: Path) -> None:
    outside = tmp_path / "precious.pt"
    outside.write_bytes(b"the user's own file")
    store = Store(tmp_path / "ws" / ".remap" / "remap.db")
    run_id = add_run(store)
    store.add_artifact("checkpoint", outside, run_id=run_id, epoch=1)
    # a file of the store's naming, in the store's folder but referenced through a link from outside: kept too
    assert store.record_epoch(run_id, epoch(run_id, 1), b"new weights")
    assert outside.read_bytes() == b"the user's own file"
    assert store.last_checkpoint(run_id) == (1, b"new weights")
    # the store's own previous checkpoint is replaced as before
    own = store.resolve_path(store.artifacts(run_id=run_id, kind="checkpoint")[0].path)
    assert store.record_epoch(run_id, epoch(run_id, 2), b"newer")
    assert not own.exists()
    store.close()


def test_only_the_stores_own_checkpoint_names_in_its_folder_are_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / ".remap" / "remap.db")
    folder = store.folder("checkpoints")
    assert store.owns(folder / "run-1-epoch-2-0123abcd.pt")
    assert not store.owns(folder / "notes.pt")
    assert not store.owns(tmp_path / "run-1-epoch-2-0123abcd.pt")
    assert not store.owns(folder / "sub" / "run-1-epoch-2-0123abcd.pt")
    store.close()


def foreign_database(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices(total) VALUES (12.5)")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_the_writable_opener_refuses_another_applications_database_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = foreign_database(path)
    with pytest.raises(StoreError, match=r"app\.db is not a remapdsl store .*left untouched"):
        Store(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal or -shm either


def test_an_empty_file_and_an_existing_store_still_open(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    Store(empty).close()
    Store(empty).close()  # now ours, opened again


def old_file(path: Path, data: bytes, age: float) -> Path:
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_sweep_removes_only_leftovers_of_the_stores_own_naming(tmp_path: Path) -> None:
    store = Store(tmp_path / ".remap" / "remap.db")
    run_id = add_run(store)
    assert store.record_epoch(run_id, epoch(run_id, 1), b"kept")
    folder = store.folder("checkpoints")
    referenced = store.resolve_path(store.artifacts(run_id=run_id, kind="checkpoint")[0].path)
    os.utime(referenced, (time.time() - 3600, time.time() - 3600))
    orphan = old_file(folder / "run-7-epoch-3-0123abcd.pt", b"orphan", 3600)
    new_orphan = old_file(folder / "run-7-epoch-4-0123abce.pt", b"being committed", 0)
    dead_tmp = old_file(folder / f".run-7-epoch-5-0123abcf.pt.{dead_pid()}.tmp", b"partial", 0)
    old_tmp = old_file(folder / f".run-7-epoch-6-0123abc0.pt.{os.getpid()}.tmp", b"partial", 3600)
    live_tmp = old_file(folder / f".run-7-epoch-7-0123abc1.pt.{os.getpid()}.tmp", b"partial", 0)
    unrelated = [old_file(folder / "notes.txt", b"mine", 3600), old_file(folder / "model.pt", b"mine", 3600),
                 old_file(folder / f".notes.{dead_pid()}.tmp", b"mine", 3600)]
    outside = old_file(tmp_path / "run-1-epoch-1-0123abcd.pt", b"outside", 3600)
    removed = store.sweep_leftovers(older_than=60)
    assert sorted(removed) == sorted([orphan, dead_tmp, old_tmp])
    for kept in [referenced, new_orphan, live_tmp, *unrelated, outside]:
        assert kept.exists(), kept
    assert store.last_checkpoint(run_id) == (1, b"kept")
    store.close()


def test_a_failed_checkpoint_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / ".remap" / "remap.db")
    run_id = add_run(store)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        store.record_epoch(run_id, epoch(run_id, 1), b"x" * 10_000)
    assert list(store.folder("checkpoints").iterdir()) == []
    assert store.epochs(run_id) == []
    store.close()


def test_a_starting_worker_sweeps_the_leftovers_of_its_store(tmp_path: Path) -> None:
    from remapdsl.jobs.worker import Worker, WorkerOptions

    path = tmp_path / ".remap" / "remap.db"
    Store(path).close()
    folder = path.parent / "checkpoints"
    folder.mkdir()
    orphan = old_file(folder / "run-1-epoch-1-0123abcd.pt", b"orphan", 3600)
    partial = old_file(folder / f".run-1-epoch-2-0123abce.pt.{dead_pid()}.tmp", b"partial", 0)
    mine = old_file(folder / "notes.txt", b"mine", 3600)
    with Worker(path, options=WorkerOptions(lease_seconds=60, onnx=False)) as worker:
        assert sorted(worker.swept) == sorted([orphan, partial])
    assert mine.exists() and not orphan.exists() and not partial.exists()
