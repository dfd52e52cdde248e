"""A full disk while a worker trains: the job is failed with the reason, or given back when even that cannot be
written, and the worker says why it stops; a job never stays running until its lease runs out."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from remapdsl.cli import main
from remapdsl.jobs.worker import Worker, WorkerOptions
from remapdsl.store.db import Store, StoreError
from remapdsl.store.queue import Queue
from tests.jobs.test_worker import header, queue_text, tiny_models

pytestmark = pytest.mark.slow


def no_space(fd: int) -> None:
    raise OSError(28, "No space left on device")


def queued_store(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / ".remap" / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(1) + tiny_models(1))
    return path, job_id


def test_a_checkpoint_that_cannot_be_written_fails_the_job_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, job_id = queued_store(tmp_path)
    monkeypatch.setattr(os, "fsync", no_space)
    with Worker(path, options=WorkerOptions(onnx=False)) as worker:
        event = worker.run_one()
    assert event is not None and event.status == "failed"
    with Store(path) as store:
        job = Queue(store).require(job_id)
        assert job.status == "failed" and "No space left on device" in job.error
        assert [p.name for p in (path.parent / "checkpoints").iterdir()] == []  # no partial file kept


def store_full(*args: object, **kwargs: object) -> bool:
    raise sqlite3.OperationalError("database or disk is full")


def test_a_failure_the_store_cannot_take_gives_the_job_back_and_stops_the_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, job_id = queued_store(tmp_path)
    monkeypatch.setattr(os, "fsync", no_space)
    monkeypatch.setattr(Queue, "complete", store_full)
    with Worker(path, options=WorkerOptions(onnx=False)) as worker, \
            pytest.raises(StoreError, match=r"cannot be recorded .*disk is full.*queued again"):
        worker.run_one()
    with Store(path) as store:
        assert Queue(store).require(job_id).status == "queued"


def test_the_worker_command_says_why_it_stops_when_nothing_can_be_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = queued_store(tmp_path)
    monkeypatch.setattr(os, "fsync", no_space)
    monkeypatch.setattr(Queue, "complete", store_full)
    monkeypatch.setattr(Queue, "release", store_full)
    assert main(["worker", "--until-empty", "--no-onnx", "--store", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("remap worker: error: job ")
    assert "No space left on device" in err[0] and "cannot be recorded" in err[0]
