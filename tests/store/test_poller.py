"""The store poller: cheap when idle, woken by another connection's commit; what became of some jobs."""

from __future__ import annotations

from pathlib import Path

from remapdsl.store.db import EpochRow, RunStatus, Store
from remapdsl.store.poller import JobCursor, StorePoller, job_updates
from remapdsl.store.queue import Queue


def add_job(store: Store, name: str = "a") -> int:
    store.add_model(f"h-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name)
    return Queue(store).enqueue(f"h-{name}", name, data_key="digits", data_text="data digits", settings_key="k",
                                settings={"epochs": 2}).job.id


def test_nothing_changes_until_the_store_exists_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / ".remap" / "remap.db"
    with StorePoller(path) as poller:
        assert not poller.changed() and poller.store is None
        assert not path.parent.exists()
        Store(path).close()
        assert poller.changed()
        assert poller.store is not None and poller.store.read_only


def test_changed_is_false_when_idle_and_true_after_another_connections_commit(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as writer, StorePoller(path) as poller:
        assert poller.changed()
        assert not poller.changed() and not poller.changed()
        add_job(writer)
        assert poller.changed()
        assert not poller.changed()
        with writer.transaction():
            writer.add_model("h-b", "model b:", name="b")
            assert not poller.changed()  # not committed yet
        assert poller.changed()


def test_job_updates_follow_a_job_from_claim_to_end(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as writer, StorePoller(path) as poller:
        job_id = add_job(writer)
        queue = Queue(writer)
        assert poller.store is not None
        cursors = {job_id: JobCursor()}
        assert job_updates(poller.store, cursors) == []
        job = queue.claim("w1")
        assert job is not None
        writer.record_epoch(job.run_id, EpochRow(job.run_id, 1, 0.5, 0.8, 0.4, 0.7, 0.1))
        [update] = job_updates(poller.store, cursors)
        assert update.started and update.resumed_from == 0 and not update.ended
        assert [e.epoch for e in update.epochs] == [1]
        cursors[job_id] = update.cursor
        assert job_updates(poller.store, cursors) == []
        writer.record_epoch(job.run_id, EpochRow(job.run_id, 2, 0.4, 0.9, 0.3, 0.8, 0.1))
        queue.complete(job_id, "w1", RunStatus.STOPPED, "no better validation loss")
        [update] = job_updates(poller.store, cursors)
        assert not update.started and [e.epoch for e in update.epochs] == [2]
        assert update.ended and update.end_status == "stopped" and update.end_reason == "no better validation loss"
        assert update.cursor.status == "done"
        assert job_updates(poller.store, {job_id: update.cursor}) == []


def test_a_job_claimed_again_reports_where_it_resumes(tmp_path: Path) -> None:
    with Store(tmp_path / "remap.db") as store:
        job_id = add_job(store)
        queue = Queue(store)
        job = queue.claim("w1")
        assert job is not None
        store.record_epoch(job.run_id, EpochRow(job.run_id, 1, 0.5, 0.8, 0.4, 0.7, 0.1))
        [first] = job_updates(store, {job_id: JobCursor()})
        queue.release(job_id, "w1")
        queue.claim("w2")
        [again] = job_updates(store, {job_id: first.cursor})
        assert again.started and again.resumed_from == 1 and again.epochs == ()
