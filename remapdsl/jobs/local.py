"""The local executor: trains queued jobs on this machine, in this process or in a pool of worker processes.

Each process is a `Worker` limited to the jobs asked for, so the queue decides the order and a job is
trained once however many processes there are. The cores are shared out between the processes: small
models on a CPU are bound by per-operation dispatch, not arithmetic, so one torch thread gains nothing
from a second core while a second process doubles the work done. Processes are spawned (not forked), so a
parent that has already used torch's thread pools cannot leave a child deadlocked. What the processes do
is reported to the caller as worker events, read back from the store as the processes write it.

On a GPU the pool is a share of processes per GPU (`remapdsl.jobs.pool`): each `cuda:N` trains its own
share of the jobs, and a process whose job ran out of memory leaves its share, which goes on smaller.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from remapdsl.jobs.pool import GpuShare, ShareCounter, gpu_free_memory, plan_gpu_pool
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


def train_jobs(store_path: str | os.PathLike[str], job_ids: Sequence[int], *, processes: int | None,
               options: WorkerOptions | None = None,
               on_event: Callable[[WorkerEvent], None] | None = None, job_bytes: Sequence[int] = (),
               on_pool: Callable[[list[GpuShare]], None] | None = None) -> list[int]:
    """Train the given queued jobs of a store until none of them is left to train: in this process
    (`processes` 1, or a single job) or in that many worker processes. On CUDA (`options.device`, or the
    machine's when it is None), `processes` counts per GPU, and None sizes each GPU's share from its free
    memory and `job_bytes`, the estimated bytes of each job (`remapdsl.train.memory`); `on_pool` hears the
    shares. `on_event` hears each job start, finish an epoch and end. Returns the exit codes of worker
    processes that ended abnormally: their jobs go back to the queue when their lease runs out."""
    options = options or WorkerOptions()
    device = _pool_device(options)
    slots: list[tuple[WorkerOptions, int, ShareCounter | None]]
    context = multiprocessing.get_context("spawn")
    if device.startswith("cuda"):
        shares = plan_gpu_pool(gpu_free_memory(device), job_bytes, jobs=len(job_ids), asked=processes,
                                cores=usable_cores())
        if on_pool is not None:
            on_pool(shares)
        slots = []
        for share in shares:
            counter = ShareCounter(share.processes, context)
            slots += [(replace(options, gpu=share.gpu), 1, counter)] * share.processes
    else:
        count = max(1, min(processes or default_workers(device), len(job_ids)))
        slots = [(options, max(1, usable_cores() // count), None)] * count
    if len(slots) == 1:
        one, threads, _ = slots[0]
        _set_threads(threads)
        with Worker(store_path, options=one, only=job_ids, on_event=on_event) as worker:
            worker.run(until_empty=True)
        return []
    procs = [context.Process(target=_worker_process, args=(str(store_path), list(job_ids), slot, threads, counter),
                             daemon=True)
             for slot, threads, counter in slots]
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


def _pool_device(options: WorkerOptions) -> str:
    from remapdsl.train.trainer import resolve_device

    return resolve_device(options.device or "auto")


def leave_on_out_of_memory(counter: ShareCounter, stop: threading.Event) -> Callable[[WorkerEvent], None]:
    """The event hook of a process in a GPU's share: after a job that ran out of memory, the process stops
    (once the job is recorded as failed), unless it is the share's last."""
    from remapdsl.train.trainer import is_out_of_memory

    def on_event(event: WorkerEvent) -> None:
        if event.kind == "end" and event.status == "failed" and is_out_of_memory(event.reason) and counter.leave():
            stop.set()

    return on_event


def _worker_process(store_path: str, job_ids: list[int] | None, options: WorkerOptions, threads: int,
                    counter: ShareCounter | None, report: Callable[[WorkerEvent], None] | None = None,
                    until_empty: bool = True, max_jobs: int | None = None) -> None:
    _set_threads(threads)
    stop = threading.Event()
    hooks = [h for h in (report, leave_on_out_of_memory(counter, stop) if counter is not None else None) if h]

    def on_event(event: WorkerEvent) -> None:
        for hook in hooks:
            hook(event)

    try:
        with Worker(Path(store_path), options=options, only=job_ids, on_event=on_event, stop=stop) as worker:
            worker.run(until_empty=until_empty, max_jobs=max_jobs)
    except KeyboardInterrupt:
        pass


def serve_pool(store_path: str | os.PathLike[str], *, processes: int, options: WorkerOptions,
               report: Callable[[WorkerEvent], None] | None = None, until_empty: bool = False,
               max_jobs: int | None = None) -> list[int]:
    """Worker processes serving the whole queue until stopped (or, with `until_empty`, until it is empty), each
    training at most `max_jobs` jobs: on CUDA `processes` per GPU (of `options.device`, or every GPU), each GPU's
    share shrinking on out-of-memory; on the CPU `processes` in all, sharing the cores. `report` (a
    module-level function, as it crosses into the processes) hears each process's events. Returns the exit
    codes of processes that ended abnormally."""
    device = _pool_device(options)
    context = multiprocessing.get_context("spawn")
    slots: list[tuple[WorkerOptions, int, ShareCounter | None]] = []
    if device.startswith("cuda"):
        for gpu, _ in gpu_free_memory(device):
            counter = ShareCounter(processes, context)
            slots += [(replace(options, gpu=gpu), 1, counter)] * processes
    else:
        slots = [(options, max(1, usable_cores() // processes), None)] * processes
    procs = [context.Process(target=_worker_process,
                             args=(str(store_path), None, slot, threads, counter, report, until_empty, max_jobs))
             for slot, threads, counter in slots]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:  # the processes got the signal too: each gives its job back to the queue
        for p in procs:
            p.join()
    return [p.exitcode for p in procs if p.exitcode not in (0, None)]
