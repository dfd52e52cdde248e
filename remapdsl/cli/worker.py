"""`remap worker`: train queued jobs from the store until stopped (or until the queue is empty)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from remapdsl.cli.options import (
    MAX_PROCESSES,
    UsageError,
    add_cuda_graphs_option,
    add_executor_options,
    add_no_onnx_option,
    add_store_option,
    check_count,
    device_of,
    executor_options,
    positive_float,
    positive_int,
)
from remapdsl.cli.workspace import Progress, open_store, store_path
from remapdsl.jobs.local import serve_pool
from remapdsl.jobs.ray_executor import ExecutorError, RayWorker
from remapdsl.jobs.worker import Worker, WorkerEvent, WorkerOptions
from remapdsl.store.queue import DEFAULT_LEASE_SECONDS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("worker", help="train queued jobs from the store",
                              description="Claim queued jobs one at a time, train them and record every finished "
                                          "epoch. Several workers on the machine whose disk holds the store can "
                                          "share it; a job whose worker dies is queued again when its lease runs "
                                          "out and resumes from its last epoch. A job asking for a device this "
                                          "machine lacks (cuda) is left for a worker that has it. With --executor "
                                          "ray the jobs train on a Ray cluster, several at once, while this worker "
                                          "alone writes the store.")
    add_store_option(p)
    p.add_argument("--device", metavar="D", help="train every job on this device (default: the one each job asks)")
    p.add_argument("--until-empty", action="store_true", help="exit when no job is queued or running")
    p.add_argument("--max-jobs", type=positive_int, metavar="N", help="exit after training N jobs")
    p.add_argument("--lease", type=positive_float, default=DEFAULT_LEASE_SECONDS, metavar="S",
                   help=f"seconds a claimed job stays held without a heartbeat (default {DEFAULT_LEASE_SECONDS:g})")
    p.add_argument("--heartbeat", type=positive_float, metavar="S",
                   help="seconds between heartbeats (default: a quarter of the lease)")
    p.add_argument("--poll", type=positive_float, default=1.0, metavar="S",
                   help="seconds between looks at an empty queue (default 1)")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help=f"CPU threads for torch, 1 to {MAX_PROCESSES} (default 1: small models train fastest one "
                        "thread per worker; run one worker per core)")
    p.add_argument("--jobs", "-j", type=positive_int, metavar="N",
                   help="worker processes: on a GPU, N per GPU (every cuda:N gets its own; a process whose job "
                        "runs out of memory leaves its GPU's share), on the CPU N in all sharing the cores; "
                        "--max-jobs then counts per process (default: this one process)")
    add_cuda_graphs_option(p)
    add_no_onnx_option(p)
    p.add_argument("--id", metavar="NAME", help="this worker's name in the queue (default host:pid)")
    add_executor_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_count("--threads", args.threads, 1, MAX_PROCESSES)
    try:
        options = WorkerOptions(lease_seconds=args.lease, heartbeat_seconds=args.heartbeat or args.lease / 4,
                                poll_seconds=args.poll, device=args.device, onnx=args.onnx,
                                cuda_graphs=args.cuda_graphs)
    except ValueError as e:
        raise UsageError(str(e)) from None
    executor = executor_options(args)
    if args.device and executor is None:  # a cluster's devices are its nodes' to know
        device_of(args.device)
    path = store_path(args)
    open_store(path).close()
    if args.jobs is not None and executor is not None:
        raise UsageError("--jobs starts worker processes on this machine; with --executor ray, --max-in-flight "
                         "says how many jobs train on the cluster at once")
    if args.jobs is not None:
        check_count("--jobs", args.jobs, 1, MAX_PROCESSES)
        print(f"{args.jobs} worker process(es){' per GPU' if device_of(args.device or 'auto') != 'cpu' else ''} "
              f"on {path}", flush=True)
        crashed = serve_pool(path, processes=args.jobs, options=options, report=print_progress,
                             until_empty=args.until_empty, max_jobs=args.max_jobs)
        if crashed:
            print(f"note: {len(crashed)} worker process(es) ended abnormally (exit {crashed[0]}); their jobs go "
                  "back to the queue when their lease runs out", file=sys.stderr)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    progress = Progress(sys.stdout, 0, tty=False)
    endings: Counter[str] = Counter()

    def on_event(event: WorkerEvent) -> None:
        progress(event)
        if event.kind == "end":
            endings[event.status] += 1

    if executor is None:
        with Worker(path, options=options, worker_id=args.id, on_event=on_event) as worker:
            print(f"worker {worker.id} on {worker.store_path}", flush=True)
            worker.run(until_empty=args.until_empty, max_jobs=args.max_jobs)
    else:
        try:
            with RayWorker(path, executor, options=options, worker_id=args.id, on_event=on_event) as worker:
                worker.connect()
                print(f"worker {worker.id} on {worker.store_path}; {worker.describe()}", flush=True)
                worker.run(until_empty=args.until_empty, max_jobs=args.max_jobs)
        except ExecutorError as e:
            raise UsageError(str(e)) from None
    print(f"worker {worker.id}: {summary(endings)}", flush=True)
    return 0


# One progress printer per worker process of a pool (the function crosses into the processes by name).
_progress: list[Progress] = []


def print_progress(event: WorkerEvent) -> None:
    if not _progress:
        _progress.append(Progress(sys.stdout, 0, tty=False))
    _progress[0](event)


def summary(endings: Counter[str]) -> str:
    """What the worker did: jobs trained (done or stopped early), then the others by how they ended."""
    trained = endings["done"] + endings["stopped"]
    words = {"failed": "failed", "cancelled": "cancelled", "lost": "lost to another worker",
             "released": "given back to the queue"}
    others = [f"{endings[status]} {word}" for status, word in words.items() if endings[status]]
    return ", ".join([f"trained {trained} job(s)", *others])
