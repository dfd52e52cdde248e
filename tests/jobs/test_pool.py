"""The pool of training processes per GPU: its size from the GPU's free memory and the jobs' estimates, and
how a share shrinks when a job runs out of memory. The sizes are pure functions of the memory figures; the
processes run real CPU jobs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from remapdsl.jobs.local import leave_on_out_of_memory, serve_pool
from remapdsl.jobs.pool import GpuShare, ShareCounter, plan_gpu_pool, share_size
from remapdsl.jobs.worker import WorkerEvent, WorkerOptions
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from remapdsl.train.memory import CONTEXT_BYTES

GIB = 2**30


def test_a_share_holds_as_many_of_the_largest_job_as_fit() -> None:
    # 80 GiB free, 10% kept back: 72 GiB for jobs of 4 GiB
    count, why = share_size(80 * GIB, 4 * GIB, jobs=100, asked=None, cores=64)
    assert count == 18 and why == "72.0 GiB free for jobs of up to 4.0 GiB: 18 fit"


def test_a_share_is_bounded_by_cores_and_jobs_and_is_never_empty() -> None:
    assert share_size(80 * GIB, GIB, jobs=100, asked=None, cores=16) == (
        16, "72.0 GiB free for jobs of up to 1.0 GiB: 72 fit, 16 for 100 job(s) and 16 core(s)")
    assert share_size(80 * GIB, GIB, jobs=3, asked=None, cores=16)[0] == 3
    count, why = share_size(GIB, 4 * GIB, jobs=10, asked=None, cores=16)
    assert count == 1 and why.endswith("0 fit; one process tries, and a job that does not fit fails with "
                                       "out-of-memory")


def test_asked_for_is_taken_up_to_the_number_of_jobs() -> None:
    assert share_size(GIB, 4 * GIB, jobs=10, asked=6, cores=2) == (6, "6 asked for")
    assert share_size(GIB, 4 * GIB, jobs=2, asked=6, cores=2) == (2, "6 asked for, 2 for 2 job(s)")
    with pytest.raises(ValueError, match="1 or more"):
        share_size(GIB, GIB, jobs=1, asked=0, cores=1)
    with pytest.raises(ValueError):
        share_size(-1, GIB, jobs=1, asked=None, cores=1)


def test_every_gpu_gets_its_own_share() -> None:
    free = [(0, 80 * GIB), (1, 20 * GIB)]
    shares = plan_gpu_pool(free, [GIB, 2 * GIB], jobs=40, asked=None, cores=16)
    # 8 cores and 20 jobs for each GPU; the largest job (2 GiB) sizes both
    assert [(s.gpu, s.processes) for s in shares] == [(0, 8), (1, 8)]
    assert plan_gpu_pool(free, [], jobs=3, asked=None, cores=16)[1] == GpuShare(
        1, 2, f"18.0 GiB free for jobs of up to {CONTEXT_BYTES / GIB:.1f} GiB: 24 fit, 2 for 2 job(s) and 8 core(s)")
    assert [s.processes for s in plan_gpu_pool(free, [GIB], jobs=40, asked=3, cores=16)] == [3, 3]


def test_a_share_shrinks_on_out_of_memory_but_keeps_its_last_process() -> None:
    counter = ShareCounter(2)
    stops = [threading.Event(), threading.Event()]
    hooks = [leave_on_out_of_memory(counter, stop) for stop in stops]
    job = _job()
    hooks[0](WorkerEvent("end", job, status="failed", reason="loss became nan at epoch 1, step 1"))
    hooks[0](WorkerEvent("end", job, status="done"))
    assert counter.live == 2 and not stops[0].is_set()
    oom = "out of memory on cuda:0: CUDA out of memory. Tried to allocate 2.00 GiB"
    hooks[0](WorkerEvent("end", job, status="failed", reason=oom))
    assert counter.live == 1 and stops[0].is_set()
    hooks[1](WorkerEvent("end", job, status="failed", reason=oom))
    assert counter.live == 1 and not stops[1].is_set()


def _job():  # type: ignore[no-untyped-def]
    from remapdsl.store.queue import Job

    return Job(id=1, run_id=1, priority=0, position=1.0, status="failed", worker=None, lease_until=None,
               heartbeat=None, attempts=1, cancel_requested=False, error="", created=0.0, started=None, finished=None,
               model_name="m", model_hash="h", source="", epochs_done=0, epochs_planned=1, device="cuda")


@pytest.mark.slow
def test_a_pool_of_processes_serves_the_queue_on_the_cpu(tmp_path: Path) -> None:
    from tests.jobs.test_worker import header, queue_text, tiny_models

    path = tmp_path / "remap.db"
    with Store(path) as store:
        ids = queue_text(store, header(1) + tiny_models(3))
    options = WorkerOptions(lease_seconds=5, heartbeat_seconds=1, poll_seconds=0.1, device="cpu", onnx=False,
                            cuda_graphs="off")
    assert serve_pool(path, processes=2, options=options, until_empty=True) == []
    with Store(path) as store:
        queue = Queue(store)
        jobs = [queue.require(i) for i in ids]
        assert [j.status for j in jobs] == ["done"] * 3
        assert len({j.worker for j in jobs}) >= 1
        for j in jobs:
            [execution] = store.artifacts(run_id=j.run_id, kind="execution")
            assert execution.meta == {"device": "cpu", "autocast": "float32", "cuda_graphs": False,
                                      "reason": "CUDA graphs are switched off"}


# A worker whose address space is capped a little above what it uses once warm: the big model's first batch
# cannot be allocated, a real out-of-memory, while the small one still trains.
CAPPED_WORKER = """
import resource, sys, threading
import torch
from remapdsl.jobs.local import leave_on_out_of_memory
from remapdsl.jobs.pool import ShareCounter
from remapdsl.jobs.worker import Worker, WorkerOptions
from remapdsl.language.header import TrainSettings
from remapdsl.language.parser import parse
from remapdsl.train.data import load_dataset
from remapdsl.train.trainer import train

torch.set_num_threads(1)
path, live = sys.argv[1], int(sys.argv[2])
warm = parse("model warm:\\n    flatten\\n    dense 10\\n").document.models[0]
train(warm, load_dataset(None), TrainSettings(epochs=1), "cpu")  # lazy loading and allocations happen first
counter, stop = ShareCounter(live), threading.Event()
options = WorkerOptions(device="cpu", onnx=False, lease_seconds=60, heartbeat_seconds=10, poll_seconds=0.1)
with Worker(path, options=options, on_event=leave_on_out_of_memory(counter, stop), stop=stop) as worker:
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, resource.RLIM_INFINITY))
    worker.run(until_empty=True)
print("live", counter.live)
"""
BIG = """model big:
    conv2d 512 kernel=3
    relu
    conv2d 512 kernel=3
    relu
    flatten
    dense 10
"""


@pytest.mark.slow
@pytest.mark.parametrize(("live", "small_after"), [(2, "queued"), (1, "done")])
def test_out_of_memory_fails_the_job_and_shrinks_the_share(tmp_path: Path, live: int, small_after: str) -> None:
    import subprocess
    import sys

    from tests.jobs.test_worker import header, queue_text, tiny_models
    from tests.paths import ROOT

    path = tmp_path / "remap.db"
    with Store(path) as store:
        big, small = queue_text(store, header(1, batch=2048) + BIG + "\n" + tiny_models(1))
    done = subprocess.run([sys.executable, "-c", CAPPED_WORKER, str(path), str(live)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                                                  "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    with Store(path) as store:
        queue = Queue(store)
        failed = queue.require(big)
        run = store.run(failed.run_id)
        assert failed.status == "failed" and run is not None and run.reason.startswith("out of memory on cpu: ")
        # with another process in the share this one left it, and the small job waits for the other; alone,
        # it stays and trains it
        assert queue.require(small).status == small_after
    assert done.stdout.strip() == f"live {max(1, live - 1)}"
