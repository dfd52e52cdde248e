"""The training queue: dedupe, ordering, cancel, retry, atomic claims and leases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import Queue, QueueError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "remap.db")
    yield s
    s.close()


@pytest.fixture
def queue(store: Store) -> Queue:
    return Queue(store)


def enqueue(queue: Queue, name: str, *, settings_key: str = "epochs=2", priority: int = 0, force: bool = False):
    queue.store.add_model(f"hash-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name)
    return queue.enqueue(f"hash-{name}", name, data_key="digits", data_text="data digits", settings_key=settings_key,
                         settings={"epochs": 2}, priority=priority, force=force)


def names(jobs) -> list[str]:  # type: ignore[no-untyped-def]
    return [j.model_name for j in jobs]


def test_enqueue_makes_a_queued_job_and_run(queue: Queue) -> None:
    e = enqueue(queue, "a")
    assert e.created
    assert (e.job.status, e.job.model_name, e.job.attempts, e.job.epochs_done, e.job.epochs_planned) == (
        "queued", "a", 0, 0, 2)
    run = queue.store.run(e.job.run_id)
    assert run is not None and run.status == "queued"


def test_the_same_training_is_not_queued_twice_unless_forced(queue: Queue) -> None:
    first = enqueue(queue, "a")
    again = enqueue(queue, "a")
    assert not again.created and again.job.id == first.job.id
    other_settings = enqueue(queue, "a", settings_key="epochs=3")
    assert other_settings.created
    forced = enqueue(queue, "a", force=True)
    assert forced.created and forced.job.id not in (first.job.id, other_settings.job.id)
    assert len(queue.jobs()) == 3


def test_jobs_are_claimed_by_priority_then_in_order(queue: Queue) -> None:
    for name in "abc":
        enqueue(queue, name)
    enqueue(queue, "urgent", priority=5)
    assert names(queue.queued()) == ["urgent", "a", "b", "c"]
    assert names([queue.claim("w1") for _ in range(4)]) == ["urgent", "a", "b", "c"]  # type: ignore[misc]
    assert queue.claim("w1") is None


def test_move_top_up_down_bottom(queue: Queue) -> None:
    ids = {name: enqueue(queue, name).job.id for name in "abcd"}
    assert names(queue.move(ids["c"], "top")) == ["c", "a", "b", "d"]
    assert names(queue.move(ids["d"], "up")) == ["c", "a", "d", "b"]
    assert names(queue.move(ids["c"], "down")) == ["a", "c", "d", "b"]
    assert names(queue.move(ids["a"], "bottom")) == ["c", "d", "b", "a"]
    assert names(queue.move(ids["c"], "up")) == ["c", "d", "b", "a"]  # already first
    assert names([queue.claim("w") for _ in range(4)]) == ["c", "d", "b", "a"]  # type: ignore[misc]


def test_moves_respect_priorities(queue: Queue) -> None:
    ids = {name: enqueue(queue, name, priority=p).job.id for name, p in (("hi", 9), ("mid", 5), ("lo", 0))}
    assert names(queue.move(ids["lo"], "top")) == ["lo", "hi", "mid"]
    assert names(queue.move(ids["hi"], "bottom")) == ["lo", "mid", "hi"]
    # a new job slots in by its priority among the moved ones
    enqueue(queue, "low", priority=1)
    enqueue(queue, "high", priority=7)
    assert names(queue.queued()) == ["lo", "high", "mid", "hi", "low"]
    assert names([queue.claim("w") for _ in range(5)]) == ["lo", "high", "mid", "hi", "low"]  # type: ignore[misc]


def test_explicit_order(queue: Queue) -> None:
    ids = {name: enqueue(queue, name).job.id for name in "abcde"}
    assert names(queue.reorder([ids["d"], ids["b"]])) == ["d", "b", "a", "c", "e"]
    with pytest.raises(QueueError, match="listed twice"):
        queue.reorder([ids["a"], ids["a"]])
    with pytest.raises(QueueError, match="no job 999"):
        queue.reorder([999])


def test_only_queued_jobs_move(queue: Queue) -> None:
    a = enqueue(queue, "a").job.id
    enqueue(queue, "b")
    queue.claim("w")
    with pytest.raises(QueueError, match=f"job {a} is running; only queued jobs can be moved"):
        queue.move(a, "down")
    with pytest.raises(QueueError, match="unknown move 'sideways'"):
        queue.move(a, "sideways")
    with pytest.raises(QueueError, match="no job 42"):
        queue.move(42, "top")


def test_cancel_a_queued_job_at_once(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    assert queue.cancel(job.id).status == "cancelled"
    run = queue.store.run(job.run_id)
    assert run is not None and run.status == "cancelled"
    assert queue.claim("w") is None
    with pytest.raises(QueueError, match="already cancelled"):
        queue.cancel(job.id)


def test_cancel_a_running_job_raises_its_flag(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("w")
    after = queue.cancel(job.id)
    assert after.status == "running" and after.cancel_requested
    assert queue.cancel_requested(job.id)
    assert queue.complete(job.id, "w", "cancelled", "cancelled by the user")
    assert queue.require(job.id).status == "cancelled"


def test_retry_requeues_failed_and_cancelled_jobs_only(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    with pytest.raises(QueueError, match="only failed or cancelled jobs can be retried"):
        queue.retry(job.id)
    queue.claim("w")
    queue.complete(job.id, "w", "failed", "loss became nan at epoch 1")
    failed = queue.require(job.id)
    assert (failed.status, failed.error) == ("failed", "loss became nan at epoch 1")
    again = queue.retry(job.id)
    assert (again.status, again.error, again.cancel_requested) == ("queued", "", False)
    assert queue.claim("w").id == job.id  # type: ignore[union-attr]
    with pytest.raises(QueueError, match="no job 77"):
        queue.retry(77)


def test_complete_needs_the_lease(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("w1")
    assert not queue.complete(job.id, "w2", "done")
    assert queue.complete(job.id, "w1", "stopped", "no better validation loss for 2 epochs")
    done = queue.require(job.id)
    run = queue.store.run(job.run_id)
    assert done.status == "done" and run is not None and run.status == "stopped"


def test_an_expired_lease_requeues_the_job_for_another_worker(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("dead", lease_seconds=0.05)
    assert queue.claim("w2") is None  # lease still held
    time.sleep(0.1)
    taken = queue.claim("w2")
    assert taken is not None and taken.id == job.id and taken.worker == "w2" and taken.attempts == 2
    # the old holder can neither heartbeat nor record epochs nor finish the job any more
    assert not queue.heartbeat(job.id, "dead")
    assert not queue.store.record_epoch(job.run_id, EpochRow(job.run_id, 1, 0, 0, 0, 0, 0), owner=(job.id, "dead"))
    assert not queue.complete(job.id, "dead", "done")
    assert queue.heartbeat(job.id, "w2")


def test_heartbeats_keep_the_lease(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("w1", lease_seconds=0.2)
    for _ in range(4):
        time.sleep(0.1)
        assert queue.heartbeat(job.id, "w1", lease_seconds=0.2)
    assert queue.claim("w2") is None  # the lease held
    time.sleep(0.3)
    taken = queue.claim("w2")
    assert taken is not None and taken.id == job.id and taken.worker == "w2"


def test_a_cancelled_job_whose_worker_died_ends_cancelled(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("w1", lease_seconds=0.05)
    queue.cancel(job.id)
    time.sleep(0.1)
    assert queue.claim("w2") is None
    assert queue.require(job.id).status == "cancelled"


def test_release_gives_a_job_back(queue: Queue) -> None:
    job = enqueue(queue, "a").job
    queue.claim("w1")
    assert queue.release(job.id, "w1")
    assert queue.require(job.id).status == "queued"


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as s:
        q = Queue(s)
        for i in range(40):
            enqueue(q, f"m{i}")
    claimed: dict[str, list[int]] = {}

    def work(worker: str) -> None:
        with Store(path) as s:
            q = Queue(s)
            mine = claimed.setdefault(worker, [])
            while (job := q.claim(worker)) is not None:
                mine.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    all_ids = [j for ids in claimed.values() for j in ids]
    assert sorted(all_ids) == sorted(set(all_ids)) and len(all_ids) == 40


def test_jobs_lists_running_then_queued_then_finished(queue: Queue) -> None:
    ids = {name: enqueue(queue, name).job.id for name in "abc"}
    queue.claim("w")  # a
    queue.claim("w")  # b
    queue.complete(ids["b"], "w", "done")
    assert names(queue.jobs()) == ["a", "c", "b"]
    assert names(queue.jobs(["done"])) == ["b"]
    assert queue.counts() == {"queued": 1, "running": 1, "done": 1, "failed": 0, "cancelled": 0}
