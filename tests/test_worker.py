"""Workers: training jobs from the store, failures, cancel, kill -9 and resumption, several workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from remapdsl.data import load_dataset
from remapdsl.onnx_store import latest_report
from remapdsl.parser import parse
from remapdsl.queue import Queue, data_line, register_models
from remapdsl.store import Store
from remapdsl.trainer import TrainSettings, train
from remapdsl.worker import Worker, WorkerEvent, WorkerOptions

ROOT = Path(__file__).resolve().parents[1]

TINY = """model tiny{i}:
    flatten
    dense {units}
    relu
    dense 10
"""
# about half a second per epoch on one core: long enough to be interrupted mid-run
SLOW = """model slow:
    conv2d 32 kernel=3 padding=same
    relu
    conv2d 32 kernel=3 padding=same
    relu
    flatten
    dense 10
"""


def header(epochs: int, batch: int = 64) -> str:
    return f"data digits\ntrain epochs={epochs} batch={batch} lr=0.002 seed=0\n\n"


def queue_text(store: Store, text: str, base_dir: Path | None = None) -> list[int]:
    document = parse(text).document
    data = load_dataset(document.data)
    settings = TrainSettings.from_document(document)
    queue = Queue(store)
    ids = []
    for m in register_models(store, document):
        from dataclasses import asdict

        e = queue.enqueue(m.hash, m.name, data_key=data.key, data_text=data_line(document),
                          settings_key=settings.key(), settings=asdict(settings), device="cpu",
                          base_dir=str(base_dir or ""), params=m.params, flops=m.flops)
        ids.append(e.job.id)
    return ids


def tiny_models(n: int) -> str:
    return "\n".join(TINY.format(i=i, units=16 * (i + 1)) for i in range(n))


@pytest.fixture(autouse=True)
def one_torch_thread():  # type: ignore[no-untyped-def]
    """Small models train fastest on one thread, and the tests' subprocess workers use one too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = WorkerOptions(lease_seconds=3, heartbeat_seconds=0.5, poll_seconds=0.1)


def start_worker(store_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(store_path), "--lease", "2",
                             "--heartbeat", "0.4", "--poll", "0.1", "--device", "cpu", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)


def wait_for(condition, timeout: float = 40.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def epochs_of(store: Store, job_id: int) -> list[int]:
    job = Queue(store).require(job_id)
    return [e.epoch for e in store.epochs(job.run_id)]


def test_a_worker_trains_queued_jobs_and_records_everything(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        ids = queue_text(store, header(2) + tiny_models(2))
    events: list[WorkerEvent] = []
    with Worker(path, options=FAST, on_event=events.append) as worker:
        assert worker.run(until_empty=True) == 2
    with Store(path) as store:
        queue = Queue(store)
        for job_id in ids:
            job = queue.require(job_id)
            run = store.run(job.run_id)
            assert job.status == "done" and run is not None and run.status == "done"
            assert epochs_of(store, job_id) == [1, 2]
            assert run.val_acc is not None and 0 < run.val_acc <= 1 and run.used_device == "cpu"
            assert run.params is not None and run.n_train is not None and run.n_train > 1000
            predictions = store.predictions(job.run_id)
            confusion = store.confusion(job.run_id)
            assert predictions is not None and confusion is not None
            assert confusion.matrix.sum() == len(predictions) and confusion.matrix.shape == (10, 10)
            assert store.last_checkpoint(job.run_id) is not None
            # the trained weights went through onnxruntime: same parameters, same outputs, a latency
            report = latest_report(store, job.model_hash, trained=True)
            assert report is not None and report.ok and report.param_count == run.params
            assert report.latency and report.latency[0].p50_ms > 0
        assert store.throughput("cpu") is not None
    kinds = [e.kind for e in events]
    assert kinds == ["start", "epoch", "epoch", "end"] * 2


def test_a_failing_job_is_marked_failed_and_the_worker_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [good] = queue_text(store, header(1) + tiny_models(1))
        # a job whose data went missing after it was queued
        store.add_model("deadbeef", "model lost:\n    flatten\n    dense 10\n")
        broken = Queue(store).enqueue("deadbeef", "lost", data_key="npz|gone", data_text='data npz "gone.npz"',
                                      settings_key="k", settings={"epochs": 1}, base_dir=str(tmp_path), priority=5)
    with Worker(path, options=FAST) as worker:
        assert worker.run(until_empty=True) == 2
    with Store(path) as store:
        queue = Queue(store)
        failed = queue.require(broken.job.id)
        assert failed.status == "failed" and "gone.npz" in failed.error and "does not exist" in failed.error
        assert queue.require(good).status == "done"


def test_a_worker_stopping_gives_its_job_back_with_the_epochs_kept(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(30, batch=16) + SLOW)
    stop = threading.Event()

    def on_event(event: WorkerEvent) -> None:
        if event.kind == "epoch" and event.epoch and event.epoch.epoch == 1:
            stop.set()

    with Worker(path, options=FAST, on_event=on_event, stop=stop) as worker:
        worker.run()
    with Store(path) as store:
        job = Queue(store).require(job_id)
        assert job.status == "queued" and job.worker is None
        assert epochs_of(store, job_id) == [1]


def test_kill_9_mid_run_resumes_from_the_last_epoch(tmp_path: Path) -> None:
    epochs = 6
    path = tmp_path / "remap.db"
    text = header(epochs, batch=16) + SLOW
    with Store(path) as store:
        [job_id] = queue_text(store, text)
        first = start_worker(path)
        try:
            wait_for(lambda: len(epochs_of(store, job_id)) >= 2, what="two epochs")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            first.kill()
        kept = epochs_of(store, job_id)
        assert 2 <= len(kept) < epochs and kept == list(range(1, len(kept) + 1))
        recorded = {e.epoch: e for e in store.epochs(Queue(store).require(job_id).run_id)}
        assert Queue(store).require(job_id).status == "running"  # until its lease runs out

    second = start_worker(path, "--until-empty")
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    last = len(kept)
    assert f"resuming after epoch {last}" in out
    trained_again = [int(line.split("epoch ")[1].split("/")[0]) for line in out.splitlines() if ": epoch " in line]
    assert trained_again == list(range(last + 1, epochs + 1))

    with Store(path) as store:
        job = Queue(store).require(job_id)
        assert job.status == "done" and job.attempts == 2
        rows = store.epochs(job.run_id)
        assert [e.epoch for e in rows] == list(range(1, epochs + 1))
        assert all(rows[i - 1] == recorded[i] for i in recorded)  # the first worker's epochs untouched
        # the resumed run continued where the killed one stopped: same curve as an uninterrupted run
        document = parse(text).document
        reference = train(document.models[0], load_dataset(document.data), TrainSettings.from_document(document),
                          "cpu")
        assert [e.val_loss for e in rows] == pytest.approx([e.val_loss for e in reference.epochs], rel=1e-4)


def test_two_workers_never_run_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        ids = queue_text(store, header(3) + tiny_models(6))
    workers = [start_worker(path, "--until-empty", "--id", f"w{i}") for i in range(2)]
    outs = [w.communicate(timeout=90)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    with Store(path) as store:
        queue = Queue(store)
        jobs = [queue.require(j) for j in ids]
        assert all(j.status == "done" and j.attempts == 1 for j in jobs)
        assert all(epochs_of(store, j) == [1, 2, 3] for j in ids)
        assert {j.worker for j in jobs} <= {"w0", "w1"}
    # each job was started by exactly one worker
    started = [line.split(":")[0] for out in outs for line in out.splitlines() if ": training " in line]
    assert sorted(started) == sorted(j.model_name for j in jobs)


def test_cancel_a_running_job_keeps_its_finished_epochs(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [slow, after] = queue_text(store, header(40, batch=16) + SLOW + "\n" + tiny_models(1).replace(
            "epochs=40", ""))
        worker = start_worker(path, "--until-empty")
        try:
            wait_for(lambda: len(epochs_of(store, slow)) >= 1, what="the first epoch")
            Queue(store).cancel(slow)
            wait_for(lambda: Queue(store).require(slow).status == "cancelled", timeout=10, what="the cancel")
            out, _ = worker.communicate(timeout=60)
        finally:
            worker.kill()
        assert worker.returncode == 0, out
        job = Queue(store).require(slow)
        run = store.run(job.run_id)
        kept = epochs_of(store, slow)
        assert run is not None and run.status == "cancelled" and run.reason.startswith("cancelled by the user")
        assert 1 <= len(kept) < 40 and kept == list(range(1, len(kept) + 1))
        assert store.last_checkpoint(job.run_id) is not None
        assert Queue(store).require(after).status == "done"  # the worker went on
        # retry resumes after the kept epochs
        assert Queue(store).retry(slow).epochs_done == len(kept)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="shorter than the lease"):
        WorkerOptions(lease_seconds=1, heartbeat_seconds=2)
    with pytest.raises(ValueError, match="lease must be positive"):
        WorkerOptions(lease_seconds=0)
