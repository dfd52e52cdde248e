"""Model statuses and queue progress as the editor shows them, read from the store in one query each."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.language.parser import parse
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import Queue
from remapdsl.store.status import NOT_TRAINED, ModelStatus, QueueProgress, model_statuses, queue_progress, run_key


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    store = Store(tmp_path / "remap.db")
    yield Queue(store)
    store.close()


def enqueue(queue: Queue, name: str, *, settings_key: str = "k", data_text: str = "data digits", epochs: int = 3):
    queue.store.add_model(f"h-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name)
    return queue.enqueue(f"h-{name}", name, data_key="digits", data_text=data_text, settings_key=settings_key,
                         settings={"epochs": epochs}, force=True).job


def epoch(run_id: int, n: int, acc: float) -> EpochRow:
    return EpochRow(run_id, n, 0.5, 0.8, 0.4, acc, 0.1)


def test_each_stage_of_a_training_reads_as_the_lens_shows_it(queue: Queue):
    store = queue.store
    enqueue(queue, "queued")
    running = enqueue(queue, "running")
    done = enqueue(queue, "done")
    failed = enqueue(queue, "failed")
    cancelled = enqueue(queue, "cancelled")
    for job in (running, done, failed):
        assert queue.claim("w", only=[job.id]) is not None
    store.record_epoch(running.run_id, epoch(running.run_id, 1, 0.5))
    store.record_epoch(done.run_id, epoch(done.run_id, 1, 0.9))
    queue.complete(done.id, "w", "done")
    queue.complete(failed.id, "w", "failed", "CUDA out of memory\ntraceback...")
    queue.cancel(cancelled.id)
    statuses = model_statuses(store, [f"h-{n}" for n in ("queued", "running", "done", "failed", "cancelled",
                                                               "never")], "data digits", "k")
    texts = {h: s.text() for h, s in statuses.items()}
    assert texts == {"h-queued": "queued", "h-running": "training epoch 2 of 3", "h-done": "done",
                     "h-failed": "failed (CUDA out of memory)", "h-cancelled": "cancelled"}
    assert statuses["h-done"].accuracy == pytest.approx(0.9) and statuses["h-running"].accuracy == pytest.approx(0.5)
    assert "h-never" not in statuses and NOT_TRAINED.text() == "not trained"


def test_other_data_or_settings_do_not_count_and_an_active_run_comes_first(queue: Queue):
    enqueue(queue, "m", settings_key="other")
    enqueue(queue, "n", data_text="data cifar10")
    assert model_statuses(queue.store, ["h-m", "h-n"], "data digits", "k") == {}
    # without a readable train line, any settings count
    assert set(model_statuses(queue.store, ["h-m"], "data digits", None)) == {"h-m"}
    first = enqueue(queue, "m", settings_key="k")
    queue.claim("w", only=[first.id])
    queue.complete(first.id, "w", "done")
    enqueue(queue, "m", settings_key="k")  # trained again: the new job is what the lens shows
    assert model_statuses(queue.store, ["h-m"], "data digits", "k")["h-m"].state == "queued"


def test_queue_progress_counts_and_names_the_model_in_training(queue: Queue):
    assert queue_progress(queue.store) == QueueProgress()
    a, _ = enqueue(queue, "a", epochs=10), enqueue(queue, "b")
    queue.claim("w", only=[a.id])
    queue.store.record_epoch(a.run_id, epoch(a.run_id, 1, 0.5))
    progress = queue_progress(queue.store)
    assert progress.to_json() == {"queued": 1, "running": 1, "done": 0, "failed": 0,
                                  "current": {"model": "a", "epoch": 2, "epochs": 10}}


def test_run_key_follows_the_document():
    data_text, settings_key = run_key(parse("data digits val=0.25\ntrain epochs=2\n").document)
    assert data_text == "data digits val=0.25" and "epochs=2" in settings_key
    assert run_key(parse("train epochs=0\n").document) == ("", None)
    assert ModelStatus("training", 0, 0).text() == "training"
