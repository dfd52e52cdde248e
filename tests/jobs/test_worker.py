"""Workers: training jobs from the store, failures, cancel, kill -9 and resumption, several workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from remapdsl.jobs.worker import Worker, WorkerEvent, WorkerOptions
from remapdsl.language.header import TrainSettings
from remapdsl.language.parser import parse
from remapdsl.onnx.records import latest_report
from remapdsl.store.db import Store
from remapdsl.store.estimate import time_model
from remapdsl.store.queue import Queue, data_line, register_models
from remapdsl.train.data import load_dataset
from remapdsl.train.trainer import train
from tests.paths import ROOT

pytestmark = pytest.mark.slow


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


def queue_text(store: Store, text: str, base_dir: Path | None = None, device: str = "cpu") -> list[int]:
    document = parse(text).document
    data = load_dataset(document.data)
    settings = TrainSettings.from_document(document)
    queue = Queue(store)
    ids = []
    for m in register_models(store, document):
        from dataclasses import asdict

        e = queue.enqueue(m.hash, m.name, data_key=data.key, data_text=data_line(document),
                          settings_key=settings.key(), settings=asdict(settings), device=device,
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


def start_worker(store_path: Path, *extra: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(store_path), "--lease", "2",
                             "--heartbeat", "0.4", "--poll", "0.1", "--device", "cpu", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)


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
        assert time_model(store, "cpu") is not None  # what the next estimate comes from
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


def test_a_relative_store_resumes_from_another_folder_without_losing_epochs(tmp_path: Path) -> None:
    epochs = 5
    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    elsewhere.mkdir(parents=True)
    path = workspace / ".remap" / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(epochs, batch=16) + SLOW)
        first = start_worker(Path(".remap") / "remap.db", cwd=workspace)
        try:
            wait_for(lambda: len(epochs_of(store, job_id)) >= 2, what="two epochs")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            first.kill()
        kept = {e.epoch: e for e in store.epochs(Queue(store).require(job_id).run_id)}

    second = start_worker(Path("..") / "ws" / ".remap" / "remap.db", "--until-empty", cwd=elsewhere)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert f"resuming after epoch {max(kept)}" in out
    with Store(path) as store:
        job = Queue(store).require(job_id)
        rows = store.epochs(job.run_id)
        assert job.status == "done" and [e.epoch for e in rows] == list(range(1, epochs + 1))
        assert all(rows[i - 1] == kept[i] for i in kept)  # the first worker's epochs kept, none trained twice
    trained_again = [int(line.split("epoch ")[1].split("/")[0]) for line in out.splitlines() if ": epoch " in line]
    assert trained_again == list(range(max(kept) + 1, epochs + 1))


def test_a_missing_checkpoint_file_fails_the_job_and_keeps_its_epochs(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(30, batch=16) + SLOW)
    stop = threading.Event()

    def on_event(event: WorkerEvent) -> None:
        if event.kind == "epoch" and event.epoch and event.epoch.epoch == 2:
            stop.set()

    with Worker(path, options=FAST, on_event=on_event, stop=stop) as worker:
        worker.run()
    [checkpoint] = (tmp_path / "checkpoints").iterdir()
    checkpoint.unlink()
    with Worker(path, options=FAST) as worker:
        assert worker.run(until_empty=True) == 1
    with Store(path) as store:
        job = Queue(store).require(job_id)
        run = store.run(job.run_id)
        assert job.status == "failed" and run is not None and run.status == "failed"
        assert str(checkpoint) in job.error and "is missing" in job.error and "epochs are kept" in job.error
        assert epochs_of(store, job_id) == [1, 2]


def test_an_onnxruntime_failure_is_recorded_and_the_training_stays_done(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    from remapdsl.onnx.records import onnx_failure

    def broken_run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")

    monkeypatch.setattr(onnxruntime.InferenceSession, "run", broken_run)
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(1) + tiny_models(1))
    events: list[WorkerEvent] = []
    with Worker(path, options=FAST, on_event=events.append) as worker:
        assert worker.run(until_empty=True) == 1
    assert events[-1].status == "done"
    with Store(path) as store:
        job = Queue(store).require(job_id)
        run = store.run(job.run_id)
        assert job.status == "done" and run is not None and run.status == "done"
        failure = onnx_failure(store, job.run_id)
        assert failure is not None and "onnxruntime cannot run the model" in failure and "RUNTIME_EXCEPTION" in failure
        assert latest_report(store, job.model_hash) is None


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_job_is_left_for_a_cuda_worker(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [gpu] = queue_text(store, header(1) + tiny_models(1), device="cuda")
        [cpu] = queue_text(store, header(1) + TINY.format(i=9, units=8))
    events: list[WorkerEvent] = []
    with Worker(path, options=FAST, on_event=events.append) as worker:
        assert worker.run(until_empty=True) == 1  # and does not wait for the job it cannot take
    with Store(path) as store:
        queue = Queue(store)
        assert queue.require(cpu).status == "done"
        left = queue.require(gpu)
        assert (left.status, left.attempts, left.error) == ("queued", 0, "")
    [skipped] = [e for e in events if e.kind == "skipped"]
    assert skipped.job.id == gpu and "left in the queue for a worker that can train on cuda" in skipped.reason
    # told to train everything on the CPU, a worker takes it
    with Worker(path, options=WorkerOptions(lease_seconds=3, heartbeat_seconds=0.5, poll_seconds=0.1,
                                            device="cpu")) as worker:
        assert worker.run(until_empty=True) == 1


def test_a_job_lost_to_another_worker_is_not_counted_as_trained(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    with Store(path) as store:
        [job_id] = queue_text(store, header(20, batch=16) + SLOW)
    thief = Store(path)
    events: list[WorkerEvent] = []

    def on_event(event: WorkerEvent) -> None:
        events.append(event)
        if event.kind == "epoch" and event.epoch and event.epoch.epoch == 1:
            # the lease runs out (as if the worker had stalled) and another worker takes the job and ends it
            thief.conn.execute("UPDATE jobs SET lease_until = 0 WHERE id = ?", (job_id,))
            queue = Queue(thief)
            assert queue.claim("thief", 60) is not None
            queue.complete(job_id, "thief", "failed", "taken by the test")

    try:
        with Worker(path, options=FAST, on_event=on_event) as worker:
            assert worker.run(until_empty=True) == 0
    finally:
        thief.close()
    assert events[-1].kind == "end" and events[-1].status == "lost"


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


def test_data_bombs_fail_their_jobs_with_the_reason_and_the_worker_lives_within_a_memory_cap(tmp_path: Path) -> None:
    """Data files swapped for bombs after their jobs were queued: a 2 GiB .npz in 2 MB, a gzip idx file holding
    1.5 GiB more than its header promises, a gigapixel PNG in the second class folder. A worker whose address
    space is capped at 1.5 GiB fails each job with the reason, naming the file, and trains the next."""
    from PIL import Image

    from tests.bombs import capped, gzip_zeros, idx_header, npz_bomb, png_header_only

    npz_bomb(tmp_path / "bomb.npz", (2 << 30) // 64)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    (mnist / "train-images-idx3-ubyte.gz").write_bytes(gzip_zeros(idx_header(0x08, (10, 28, 28)),
                                                                  10 * 784 + (3 << 29)))
    for name, dims in (("train-labels-idx1-ubyte", (10,)), ("t10k-images-idx3-ubyte", (4, 28, 28)),
                       ("t10k-labels-idx1-ubyte", (4,))):
        (mnist / name).write_bytes(idx_header(0x08, dims) + bytes(int(np.prod(dims))))
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "imgs" / c / "0.png")
    (tmp_path / "imgs" / "b" / "1.png").write_bytes(png_header_only(100_000, 100_000))
    path = tmp_path / "remap.db"
    lines = {"npz": 'data npz "bomb.npz"', "mnist": 'data mnist "mnist"', "folder": 'data folder "imgs"'}
    with Store(path) as store:
        [good] = queue_text(store, header(1) + tiny_models(1))
        queue = Queue(store)
        bombs = {}
        for kind, line in lines.items():
            text = f"model {kind}_bomb:\n    flatten\n    dense 3\n"
            store.add_model(f"hash{kind}", text)
            bombs[kind] = queue.enqueue(f"hash{kind}", f"{kind}_bomb", data_key=kind, data_text=line,
                                        settings_key="k", settings={"epochs": 1}, base_dir=str(tmp_path),
                                        priority=5).job.id
    done = capped(f"from remapdsl.cli import main; raise SystemExit(main(['worker', '--store', {str(path)!r}, "
                  "'--until-empty', '--no-onnx', '--poll', '0.1', '--device', 'cpu']))", tmp_path, 3 << 29, 300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with Store(path) as store:
        queue = Queue(store)
        errors = {kind: queue.require(job).error for kind, job in bombs.items()}
        assert all(queue.require(job).status == "failed" for job in bombs.values()), errors
        assert "bomb.npz (array 'x')" in errors["npz"] and "over the limit of 1.0 GiB" in errors["npz"]
        assert "train-images-idx3-ubyte.gz: the file holds more data than the 7,840 bytes" in errors["mnist"]
        assert f"{tmp_path / 'imgs' / 'b' / '1.png'} declares more pixels than the limit" in errors["folder"]
        assert queue.require(good).status == "done"
