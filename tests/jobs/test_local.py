"""The local executor: queued jobs trained in this process or a pool of worker processes, reported through a
callback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from remapdsl.jobs.enqueue import Checked, enqueue_models, settings_of
from remapdsl.jobs.local import default_workers, train_jobs, usable_cores
from remapdsl.jobs.worker import WorkerEvent, WorkerOptions
from remapdsl.language.header import TrainSettings
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from remapdsl.train.data import load_dataset
from remapdsl.train.trainer import EpochResult, train

pytestmark = pytest.mark.slow


MODELS = """data digits
train epochs=1

model small:
    conv2d 4 kernel=3
    relu
    maxpool 2
    dropout 0.25
    flatten
    dense 16
    batchnorm
    tanh
    dense 10

model wrong:
    flatten
    dense 3

model linear:
    flatten
    dense 32
    dense 32
    dense 10
"""
NO_ONNX = WorkerOptions(poll_seconds=0.1, onnx=False)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # As in the training workers: with small models a second thread only waits on the first, and
    # sums are taken in one order, so runs compare exactly.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def queue_models(tmp_path: Path, text: str) -> tuple[Path, list[int]]:
    """The models of `text` queued in a new store, whatever their errors (the trainer meets them)."""
    file = tmp_path / "models.remap"
    file.write_text(text)
    document = parse(text).document
    db = tmp_path / "remap.db"
    with Store(db) as store:
        checked = Checked(file, document, [m.name for m in document.models])
        _, enqueued = enqueue_models(store, checked, settings_of(document), load_dataset(document.data).key,
                                     device="cpu")
    return db, [e.job.id for e in enqueued]


def test_the_pool_trains_in_separate_processes_and_keeps_going(tmp_path: Path) -> None:
    db, ids = queue_models(tmp_path, MODELS)
    events: list[WorkerEvent] = []
    assert train_jobs(db, ids, processes=2, options=NO_ONNX, on_event=events.append) == []
    assert sorted(e.job.id for e in events if e.kind == "end") == sorted(ids)
    with Store(db) as store:
        queue = Queue(store)
        jobs = [queue.require(i) for i in ids]
        assert [j.status for j in jobs] == ["done", "failed", "done"]
        assert store.last_checkpoint(jobs[0].run_id) is not None
        [epoch] = store.epochs(jobs[0].run_id)
    small = parse(MODELS).document.models[0]
    alone = train(small, load_dataset(None), TrainSettings(epochs=1), "cpu")
    stored = EpochResult(epoch.epoch, epoch.train_loss, epoch.train_acc, epoch.val_loss, epoch.val_acc, 0)
    assert stored == replace(alone.epochs[0], seconds=0)


def test_one_process_reports_each_job_through_the_callback(tmp_path: Path) -> None:
    db, ids = queue_models(tmp_path, MODELS.replace("epochs=1", "epochs=2"))
    events: list[WorkerEvent] = []
    assert train_jobs(db, ids[2:], processes=1, options=NO_ONNX, on_event=events.append) == []
    assert [(e.kind, e.epoch.epoch if e.epoch else None) for e in events] == [
        ("start", None), ("epoch", 1), ("epoch", 2), ("end", None)]
    assert events[-1].status == "done" and events[-1].job.model_name == "linear"
    with Store(db) as store:  # the jobs not asked for stay queued
        assert [Queue(store).require(i).status for i in ids] == ["queued", "queued", "done"]


def test_worker_counts() -> None:
    assert default_workers("cpu") == usable_cores()
    assert 1 <= default_workers("cuda") <= 4
