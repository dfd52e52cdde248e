"""The local executor: trains queued jobs on this machine, in this process or in a pool of worker processes.

Each process is a `Worker` limited to the jobs asked for, so the queue decides the order and a job is
trained once however many processes there are. The cores are shared out between the processes: small
models on a CPU are bound by per-operation dispatch, not arithmetic, so one torch thread gains nothing
from a second core while a second process doubles the work done. Processes are spawned (not forked), so a
parent that has already used torch's thread pools cannot leave a child deadlocked. What the processes do
is reported to the caller as worker events, read back from the store as the processes write it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from remapdsl.jobs.worker import Worker, WorkerEvent, WorkerOptions
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

# How often the store is read for what the worker processes did.
POLL_SECONDS = 0.2
# Job statuses after which nothing more happens to a job.
FINAL = ("done", "failed", "cancelled")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(device: str) -> int:
    """One process per core on the CPU; on a GPU a few processes keep it busy with small models."""
    cores = usable_cores()
    return cores if device == "cpu" else max(1, min(4, cores))


def train_jobs(store_path: str | os.PathLike[str], job_ids: Sequence[int], *, processes: int,
               options: WorkerOptions | None = None,
               on_event: Callable[[WorkerEvent], None] | None = None) -> list[int]:
    """Train the given queued jobs of a store until none of them is left to train: in this process
    (`processes` 1, or a single job) or in that many worker processes. `on_event` hears each job start,
    finish an epoch and end. Returns the exit codes of worker processes that ended abnormally: their jobs
    go back to the queue when their lease runs out."""
    options = options or WorkerOptions()
    count = max(1, min(processes, len(job_ids)))
    threads = max(1, usable_cores() // count)
    if count == 1:
        _set_threads(threads)
        with Worker(store_path, options=options, only=job_ids, on_event=on_event) as worker:
            worker.run(until_empty=True)
        return []
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker_process, args=(str(store_path), list(job_ids), options, threads),
                             daemon=True)
             for _ in range(count)]
    for p in procs:
        p.start()
    with Store(store_path) as store:
        poller = JobPoller(Queue(store), job_ids, on_event or _ignore)
        try:
            while any(p.is_alive() for p in procs):
                poller.poll()
                time.sleep(POLL_SECONDS)
        finally:
            for p in procs:
                p.join()
        poller.poll()
    return [p.exitcode for p in procs if p.exitcode not in (0, None)]


class JobPoller:
    """Turns what other processes write to the store about some jobs into worker events."""

    def __init__(self, queue: Queue, job_ids: Sequence[int], on_event: Callable[[WorkerEvent], None]) -> None:
        self.queue = queue
        self.on_event = on_event
        # per job: its status, epochs and attempts when last seen
        self.seen: dict[int, tuple[str, int, int]] = {j: ("queued", 0, 0) for j in job_ids}

    def poll(self) -> None:
        for job_id, (status, epochs, attempts) in list(self.seen.items()):
            job = self.queue.job(job_id)
            if job is None or status in FINAL:
                continue
            if job.attempts > attempts and job.status != "queued":
                self.on_event(WorkerEvent("start", job, resumed_from=epochs if attempts else 0))
            if job.epochs_done > epochs:
                for row in self.queue.store.epochs(job.run_id)[epochs:]:
                    self.on_event(WorkerEvent("epoch", job, epoch=row))
            if job.status in FINAL:
                run = self.queue.store.run(job.run_id)
                self.on_event(WorkerEvent("end", job, status=run.status if run else job.status,
                                          reason=run.reason if run else job.error))
            self.seen[job_id] = (job.status, max(job.epochs_done, epochs), job.attempts)


def _ignore(event: WorkerEvent) -> None:
    pass


def _set_threads(threads: int) -> None:
    import torch

    # torch's threads spin against each other (and against other processes) on a busy CPU, while a lone
    # training of a large model gains from every core
    torch.set_num_threads(threads)


def _worker_process(store_path: str, job_ids: list[int], options: WorkerOptions, threads: int) -> None:
    _set_threads(threads)
    try:
        with Worker(Path(store_path), options=options, only=job_ids) as worker:
            worker.run(until_empty=True)
    except KeyboardInterrupt:
        pass
