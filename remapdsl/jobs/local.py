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
from remapdsl.store.poller import JobCursor, StorePoller, job_updates

# How often the store is read for what the worker processes did.
POLL_SECONDS = 0.2


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
    poller = JobPoller(store_path, job_ids, on_event or _ignore)
    try:
        while any(p.is_alive() for p in procs):
            poller.poll()
            time.sleep(POLL_SECONDS)
    finally:
        for p in procs:
            p.join()
        poller.poll()
        poller.close()
    return [p.exitcode for p in procs if p.exitcode not in (0, None)]


class JobPoller:
    """Turns what other processes write to the store about some jobs into worker events, through the store's
    poller (a read-only connection that reads only after another connection committed)."""

    def __init__(self, store_path: str | os.PathLike[str], job_ids: Sequence[int],
                 on_event: Callable[[WorkerEvent], None]) -> None:
        self.poller = StorePoller(store_path)
        self.on_event = on_event
        self.cursors = {job_id: JobCursor() for job_id in job_ids}

    def poll(self) -> None:
        store = self.poller.store
        if store is None or not self.poller.changed():
            return
        for update in job_updates(store, self.cursors):
            job = update.job
            if update.started:
                self.on_event(WorkerEvent("start", job, resumed_from=update.resumed_from))
            for row in update.epochs:
                self.on_event(WorkerEvent("epoch", job, epoch=row))
            if update.ended:
                self.on_event(WorkerEvent("end", job, status=update.end_status, reason=update.end_reason))
            self.cursors[job.id] = update.cursor

    def close(self) -> None:
        self.poller.close()


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
