"""The change feed: every write of the tables a view shows is logged by triggers, read after a cursor, bounded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from remapdsl.store.changes import change_cursor, changes_since
from remapdsl.store.db import CHANGES_KEPT, EpochRow, Store
from remapdsl.store.layouts import LayoutTable, Position
from remapdsl.store.queue import Queue


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "remap.db")
    yield s
    s.close()


def enqueue(store: Store, name: str) -> int:
    store.add_model(f"h-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name, source="f.remap")
    return Queue(store).enqueue(f"h-{name}", name, data_key="digits", data_text="data digits", settings_key="k",
                                settings={"epochs": 2}).job.id


def test_a_training_is_read_back_as_the_changes_it_made_with_their_models_and_runs(store: Store):
    start = change_cursor(store)
    assert start == 0 and changes_since(store, start).changes == ()
    job_id = enqueue(store, "a")
    queue = Queue(store)
    claimed = queue.claim("w")
    assert claimed is not None and claimed.id == job_id
    run_id = claimed.run_id
    batch = changes_since(store, start)
    assert batch.tables() == {"models", "model_names", "runs", "jobs"}
    assert batch.model_hashes() == {"h-a"} and batch.run_ids() == {run_id}
    assert batch.cursor == change_cursor(store) and not batch.reread and not batch.more
    # a heartbeat is not a change; an epoch is, with its run and model
    assert queue.heartbeat(job_id, "w")
    assert changes_since(store, batch.cursor).changes == ()
    store.record_epoch(run_id, EpochRow(run_id, 1, 0.5, 0.8, 0.4, 0.9, 0.1))
    epoch = changes_since(store, batch.cursor)
    (change,) = epoch.of("epochs")
    assert (change.op, change.key, change.model_hash, change.run_id) == ("insert", f"{run_id}:1", "h-a", run_id)
    store.finish_run(run_id, "done", confusion=np.eye(2, dtype=np.int64), predictions=np.zeros(3, dtype=np.int8))
    done = changes_since(store, epoch.cursor)
    assert {"runs", "confusion", "predictions"} <= done.tables()
    LayoutTable(store).write("structural", "emd", [Position("h-a", 0.0, 1.0)])
    LayoutTable(store).write("predictions", "hamming", [Position(str(run_id), 0.0, 1.0)])
    layouts = changes_since(store, done.cursor).of("layouts")
    assert [(c.model_hash, c.run_id) for c in layouts] == [("h-a", None), (None, run_id)]


def test_a_reader_reads_in_batches_up_to_its_limit(store: Store):
    for name in "abc":
        enqueue(store, name)
    everything = changes_since(store, 0).changes
    first = changes_since(store, 0, limit=5)
    assert first.more and len(first.changes) == 5 and first.cursor == first.changes[-1].seq
    rest = changes_since(store, first.cursor, limit=1000)
    assert not rest.more and first.changes + rest.changes == everything


def test_the_log_is_pruned_and_a_reader_left_behind_is_told_to_reread(store: Store):
    with store.transaction() as c:
        c.executemany("INSERT INTO models(hash, text, created) VALUES (?, '', 0)",
                      [(f"h{i}",) for i in range(CHANGES_KEPT + 2000)])
    kept = store.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
    assert CHANGES_KEPT <= kept < CHANGES_KEPT + 1000
    behind = changes_since(store, 5)
    assert behind.reread and behind.changes == () and behind.cursor == change_cursor(store)
    assert not changes_since(store, behind.cursor).reread
    # a cursor from another store (ahead of this one's log) rereads too
    assert changes_since(store, change_cursor(store) + 10).reread


def test_the_feed_works_on_a_read_only_store_while_another_process_writes(tmp_path: Path, store: Store):
    reader = Store.open_read_only(store.path)
    cursor = change_cursor(reader)
    enqueue(store, "a")
    batch = changes_since(reader, cursor)
    assert batch.model_hashes() == {"h-a"}
    with pytest.raises(sqlite3.OperationalError):  # the reader never writes, not even the log
        reader.conn.execute("DELETE FROM changes")
    reader.close()


def test_bad_cursors_and_limits_are_refused(store: Store):
    with pytest.raises(ValueError, match="cursor"):
        changes_since(store, -1)
    with pytest.raises(ValueError, match="limit"):
        changes_since(store, 0, limit=0)


def test_a_store_of_an_older_schema_is_migrated_with_its_data_and_then_logs(tmp_path: Path):
    from remapdsl.store import db

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in db.MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("INSERT INTO models(hash, text, created) VALUES ('old', 'x', 0)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    reader = Store.open_read_only(path)  # an older store read before it is migrated: no log, so reread
    assert changes_since(reader, 0).reread and change_cursor(reader) == 0
    reader.close()
    with Store(path) as s:
        assert s.model("old") is not None and change_cursor(s) == 0
        s.add_model("new", "y")
        assert changes_since(s, 0).model_hashes() == {"new"}
