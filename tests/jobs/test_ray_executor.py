"""The Ray executor on a real local Ray cluster (two CPUs, started once for the module): jobs claimed from the
store train as Ray tasks, every epoch reaches the store while its task runs, cancels stop a running task, a
task whose process is killed resumes from its checkpoint, and two `remap worker --executor ray` share a store
without training a job twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remapdsl.jobs import ray_executor
from remapdsl.jobs.ray_executor import RayOptions, RayWorker
from remapdsl.jobs.worker import Worker, WorkerEvent, WorkerOptions
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from tests.jobs.test_worker import header, queue_text
from tests.paths import ROOT

ray = pytest.importorskip("ray", reason="the Ray executor's tests need ray: pip install 'remapdsl[distributed]'")

pytestmark = pytest.mark.slow

TINY = """model tiny{i}:
    flatten
    dense {units}
    relu
    dense 10
"""
SMALL_CONV = """model conv:
    conv2d 8 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""
OPTIONS = WorkerOptions(lease_seconds=10, heartbeat_seconds=1, poll_seconds=0.1, onnx=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local Ray cluster for the module, on this machine only; its address for other processes."""
    before = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             object_store_memory=128 * 2**20)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = before


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    # as in the Ray tasks (one CPU each): sums taken in one order, so results compare exactly
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def queued(path: Path, text: str) -> list[int]:
    with Store(path) as store:
        return queue_text(store, text)


@dataclass
class Background:
    """A RayWorker serving a store from a thread of its own (its store connection belongs to that thread)."""

    path: Path
    ray_options: RayOptions = field(default_factory=RayOptions)
    kind: type[RayWorker] = RayWorker
    events: list[WorkerEvent] = field(default_factory=list)
    on_event: Callable[[WorkerEvent], None] | None = None
    worker: RayWorker | None = None
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Background:
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self) -> None:
        def hear(event: WorkerEvent) -> None:
            self.events.append(event)
            if self.on_event is not None:
                self.on_event(event)

        try:
            with self.kind(self.path, self.ray_options, options=OPTIONS, on_event=hear, stop=self.stop) as worker:
                self.worker = worker
                worker.run(until_empty=True)
        except BaseException as e:
            self.error = e

    def join(self, timeout: float = 300) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not finish"
        assert self.error is None, self.error


def wait_for(condition: Callable[[], object], timeout: float = 180.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def outcome(path: Path, job_id: int) -> dict[str, object]:
    """What the store holds of a job's training, to compare between executors."""
    with Store(path) as store:
        job = Queue(store).require(job_id)
        run = store.run(job.run_id)
        assert run is not None
        confusion = store.confusion(job.run_id)
        predictions = store.predictions(job.run_id)
        return {
            "status": job.status,
            "attempts": job.attempts,
            "epochs": [(e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc) for e in store.epochs(job.run_id)],
            "val_acc": run.val_acc,
            "predictions": None if predictions is None else predictions.tolist(),
            "confusion": None if confusion is None else confusion.matrix.tolist(),
            "checkpoint": (store.last_checkpoint(job.run_id) or (0, b""))[0],
        }


def train_locally(path: Path) -> None:
    with Worker(path, options=OPTIONS) as worker:
        worker.run(until_empty=True)


def test_the_same_results_as_the_local_executor_on_the_same_seed(cluster: str, tmp_path: Path) -> None:
    text = header(3) + SMALL_CONV + "\n" + TINY.format(i=0, units=32)
    local, remote = tmp_path / "local.db", tmp_path / "ray.db"
    local_ids, remote_ids = queued(local, text), queued(remote, text)
    train_locally(local)
    events: list[WorkerEvent] = []
    with RayWorker(remote, options=OPTIONS, on_event=events.append) as worker:
        assert worker.run(until_empty=True) == 2
        assert worker.capacity == 2  # two CPUs, one per job
    for a, b in zip(local_ids, remote_ids, strict=True):
        here, there = outcome(local, a), outcome(remote, b)
        assert there["status"] == "done" and there["attempts"] == 1
        assert there == here
    assert sorted(e.job.id for e in events if e.kind == "end") == sorted(remote_ids)


def test_shared_data_is_read_by_the_nodes_from_the_data_line_path(cluster: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=digits.images[:600, None].astype(np.float32), y=digits.target[:600])
    text = f'data npz "{tmp_path / "digits.npz"}"\ntrain epochs=2 batch=64 seed=0\n\n' + SMALL_CONV
    local, remote = tmp_path / "local.db", tmp_path / "ray.db"
    for path in (local, remote):
        with Store(path) as store:
            queue_text(store, text, base_dir=tmp_path)
    train_locally(local)
    with RayWorker(remote, RayOptions(shared_data=True), options=OPTIONS) as worker:
        assert worker.run(until_empty=True) == 1
        assert "data read by each node from its path" in worker.describe()
        assert worker._shipped == {}  # nothing was put in the object store
    assert outcome(remote, 1) == outcome(local, 1)
    assert outcome(remote, 1)["status"] == "done"


def test_every_epoch_reaches_the_store_while_the_remote_task_runs(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    (job_id,) = queued(path, header(4) + SMALL_CONV)
    seen: list[tuple[int, str, list[int], bool]] = []
    background = Background(path)

    def on_event(event: WorkerEvent) -> None:
        if event.kind != "epoch" or event.epoch is None:
            return
        # what another process reading the store sees at this moment, and whether the task is still out there
        with Store.open_read_only(path) as store:
            job = Queue(store).require(job_id)
            epochs = [e.epoch for e in store.epochs(job.run_id)]
        assert background.worker is not None
        seen.append((event.epoch.epoch, job.status, epochs, job_id in background.worker.in_flight()))

    background.on_event = on_event
    background.start().join()
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    for epoch, status, epochs, in_flight in seen[:-1]:
        assert status == "running" and epochs == list(range(1, epoch + 1)) and in_flight, (epoch, status, epochs)
    assert outcome(path, job_id)["status"] == "done"


def test_cancel_stops_a_running_remote_job_and_keeps_its_epochs(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    (job_id,) = queued(path, header(200, batch=16) + SMALL_CONV)
    background = Background(path).start()
    with Store(path) as store:
        queue = Queue(store)
        wait_for(lambda: queue.require(job_id).epochs_done >= 1, what="the first epoch")
        asked = time.monotonic()
        queue.cancel(job_id)
        background.join()
        took = time.monotonic() - asked
        job = queue.require(job_id)
        run = store.run(job.run_id)
        assert run is not None
        kept = [e.epoch for e in store.epochs(job.run_id)]
    assert job.status == "cancelled" and run.status == "cancelled"
    assert run.reason.startswith("cancelled by the user (cancelled during epoch"), run.reason
    assert kept == list(range(1, len(kept) + 1)) and 1 <= len(kept) < 200
    assert took < 10, f"the task took {took:.1f} s to stop"
    # stopped at a batch boundary, not killed: the results of its last finished epoch are stored
    assert store_has_predictions(path, job.run_id)
    ends = [e for e in background.events if e.kind == "end"]
    assert [e.status for e in ends] == ["cancelled"]


class Unheard(RayWorker):
    """A worker whose tasks never hear that they should stop, as when a batch takes longer than the grace."""

    def _ask_stop(self, flight: Any) -> None:
        if flight.stop_asked is None:
            flight.stop_asked = time.monotonic()


def test_a_task_that_does_not_stop_in_time_is_killed_and_its_epochs_kept(cluster: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_executor, "STOP_GRACE_SECONDS", 1.0)
    path = tmp_path / "remap.db"
    (job_id,) = queued(path, header(200, batch=16) + SMALL_CONV)
    background = Background(path, kind=Unheard).start()
    with Store(path) as store:
        queue = Queue(store)
        wait_for(lambda: queue.require(job_id).epochs_done >= 1, what="the first epoch")
        queue.cancel(job_id)
        background.join()
        job = queue.require(job_id)
        run = store.run(job.run_id)
        assert run is not None
        kept = [e.epoch for e in store.epochs(job.run_id)]
    assert job.status == "cancelled" and "did not stop within 1 s and was killed" in run.reason, run.reason
    assert kept == list(range(1, len(kept) + 1)) and 1 <= len(kept) < 200


class FullAtSecondEpoch(RayWorker):
    """A worker whose store cannot take a second epoch of the first job, as when the disk fills up."""

    def _record_epoch(self, job: Any, result: Any, checkpoint: bytes) -> None:
        if job.id == 1 and result.epoch == 2:
            raise sqlite3.OperationalError("database or disk is full")
        super()._record_epoch(job, result, checkpoint)


def test_an_epoch_the_store_cannot_take_fails_its_job_and_the_worker_goes_on(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    first, second = queued(path, header(50, batch=16) + SMALL_CONV + "\n" + TINY.format(i=0, units=8))
    with FullAtSecondEpoch(path, RayOptions(max_in_flight=1), options=OPTIONS) as worker:
        assert worker.run(until_empty=True) == 2
        assert worker.in_flight() == []
    failed, done = outcome(path, first), outcome(path, second)
    assert failed["status"] == "failed" and [e[0] for e in failed["epochs"]] == [1]  # type: ignore[attr-defined]
    assert done["status"] == "done"
    with Store(path) as store:
        assert "database or disk is full" in Queue(store).require(first).error


def store_has_predictions(path: Path, run_id: int) -> bool:
    with Store(path) as store:
        return store.predictions(run_id) is not None


def test_a_task_whose_process_is_killed_resumes_from_its_checkpoint(cluster: str, tmp_path: Path) -> None:
    text = header(8, batch=16) + SMALL_CONV
    reference = tmp_path / "reference.db"
    (reference_id,) = queued(reference, text)
    train_locally(reference)

    path = tmp_path / "remap.db"
    (job_id,) = queued(path, text)
    background = Background(path).start()
    with Store(path) as store:
        queue = Queue(store)
        wait_for(lambda: queue.require(job_id).epochs_done >= 2 and background.worker is not None
                 and job_id in background.worker.remote_pids, what="two epochs")
        assert background.worker is not None
        first = background.worker.remote_pids[job_id]
        assert queue.require(job_id).epochs_done < 6, "the job ran too fast to be interrupted"
        os.kill(first, signal.SIGKILL)
    background.join()
    assert background.worker.remote_pids[job_id] != first
    released = [e for e in background.events if e.kind == "end" and e.status == "released"]
    assert len(released) == 1 and "its Ray task was lost" in released[0].reason
    resumed = [e.resumed_from for e in background.events if e.kind == "start"]
    assert resumed[0] == 0 and resumed[1] >= 2
    got = outcome(path, job_id)
    # each epoch once, and the same numbers as the uninterrupted training: it went on from the checkpoint
    assert got["attempts"] == 2
    assert got == {**outcome(reference, reference_id), "attempts": 2}


def test_two_ray_workers_on_one_store_never_run_one_job_twice(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    ids = queued(path, header(2) + "\n".join(TINY.format(i=i, units=8 * (i + 1)) for i in range(6)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    workers = [subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(path), "--until-empty",
                                 "--no-onnx", "--poll", "0.1", "--executor", "ray", "--address", cluster,
                                 "--max-in-flight", "1", "--id", f"w{i}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
               for i in range(2)]
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trained = [int(line.split("trained ")[1].split(" ")[0]) for out in outputs for line in out.splitlines()
               if ": trained " in line]
    assert sum(trained) == len(ids), outputs
    with Store(path) as store:
        queue = Queue(store)
        for job_id in ids:
            job = queue.require(job_id)
            assert job.status == "done" and job.attempts == 1, job
            assert [e.epoch for e in store.epochs(job.run_id)] == [1, 2]
    assert all("Ray cluster of 1 node(s), 2 CPU(s)" in out for out in outputs), outputs


def test_resources_the_cluster_lacks_are_refused_before_any_job_is_claimed(cluster: str, tmp_path: Path) -> None:
    from remapdsl.jobs.ray_executor import ExecutorError

    path = tmp_path / "remap.db"
    (job_id,) = queued(path, header(1) + SMALL_CONV)
    for options, words in ((RayOptions(gpus_per_job=0.25), "has 0"), (RayOptions(cpus_per_job=4), "has 2")):
        with RayWorker(path, options, options=OPTIONS) as worker, pytest.raises(ExecutorError, match=words):
            worker.run(until_empty=True)
    with Store(path) as store:
        assert Queue(store).require(job_id).status == "queued"


def test_a_cuda_job_is_left_for_a_worker_that_asks_for_gpus(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        (cuda_job,) = queue_text(store, header(1) + TINY.format(i=0, units=8), device="cuda")
    events: list[WorkerEvent] = []
    with RayWorker(path, options=OPTIONS, on_event=events.append) as worker:
        assert worker.run_one() is None
    (skipped,) = [e for e in events if e.kind == "skipped"]
    assert skipped.job.id == cuda_job and "--gpus-per-job" in skipped.reason


def test_remap_train_with_the_ray_executor(cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from remapdsl.cli import main

    file = tmp_path / "models.remap"
    file.write_text(header(2) + TINY.format(i=0, units=16) + "\n" + TINY.format(i=1, units=32))
    code = main(["train", str(file), "--executor", "ray", "--address", cluster, "--no-onnx", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "tiny0" in out and "tiny1" in out  # the results, as JSON
    assert "Ray cluster of 1 node(s), 2 CPU(s), 0 GPU(s): up to 2 job(s) at once" in err
    assert "tiny0: epoch 2/2" in err and "tiny1: epoch 2/2" in err
    with Store(tmp_path / ".remap" / "remap.db") as store:
        assert [j.status for j in Queue(store).jobs()] == ["done", "done"]


def test_a_ray_worker_killed_outright_leaves_its_job_to_be_claimed_again(cluster: str, tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    (job_id,) = queued(path, header(12, batch=16) + SMALL_CONV)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    doomed = subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(path), "--no-onnx",
                               "--lease", "3", "--heartbeat", "0.5", "--executor", "ray", "--address", cluster],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        with Store(path) as store:
            queue = Queue(store)
            wait_for(lambda: queue.require(job_id).epochs_done >= 1, what="the first epoch")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
            done_before = queue.require(job_id).epochs_done
            assert queue.require(job_id).status == "running"  # held until its lease runs out
    finally:
        doomed.kill()
        doomed.wait()
    background = Background(path).start()
    background.join()
    got = outcome(path, job_id)
    assert got["status"] == "done" and got["attempts"] == 2
    epochs = [e[0] for e in got["epochs"]]  # type: ignore[attr-defined]
    assert epochs == list(range(1, 13))
    resumed = [e.resumed_from for e in background.events if e.kind == "start"]
    assert resumed and resumed[0] >= done_before
