"""`remap queue list|move|cancel|retry`: look at and rearrange the training queue."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from remapdsl.cli.options import UsageError, add_store_option
from remapdsl.cli.workspace import open_store, read_store, store_path
from remapdsl.store.queue import MOVES, Job, Queue, QueueError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("queue", help="list, reorder, cancel or retry training jobs",
                              description="Look at and rearrange the training queue of a store.")
    add_store_option(p)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="running, queued and finished jobs")
    ls.add_argument("--all", action="store_true", help="include finished jobs (default: only queued and running)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    mv = sub.add_parser("move", help="move a queued job: `move JOB top|up|down|bottom`, or `move JOB JOB ...` "
                                     "to put these jobs first in this order")
    mv.add_argument("items", nargs="+", metavar="JOB|WHERE")
    cancel = sub.add_parser("cancel", help="cancel jobs (a running one stops at its next batch, keeping its epochs)")
    cancel.add_argument("jobs", nargs="+", metavar="JOB")
    retry = sub.add_parser("retry", help="queue failed or cancelled jobs again; they resume after their last epoch")
    retry.add_argument("jobs", nargs="+", metavar="JOB")
    for q in (p, ls, mv, cancel, retry):
        q.set_defaults(run=run)
    for q in (ls, mv, cancel, retry):
        add_store_option(q, nested=True)


def run(args: argparse.Namespace) -> int:
    path = store_path(args)
    with read_store(path) if args.action == "list" else open_store(path, must_exist=True) as store:
        queue = Queue(store)
        try:
            if args.action == "list":
                return _list(queue, args)
            if args.action == "move":
                return _move(queue, args.items)
            if args.action == "cancel":
                for job_id in _ids(args.jobs):
                    job = queue.cancel(job_id)
                    what = "cancelled" if job.status == "cancelled" else "stops at its next batch boundary"
                    print(f"job {job.id} ({job.model_name}): {what}")
                return 0
            for job_id in _ids(args.jobs):
                job = queue.retry(job_id)
                after = f" after epoch {job.epochs_done}" if job.epochs_done else ""
                print(f"job {job.id} ({job.model_name}): queued again, resumes{after or ' from the start'}")
            return 0
        except QueueError as e:
            raise UsageError(str(e)) from None


def _ids(items: list[str]) -> list[int]:
    ids = []
    for item in items:
        if not item.isdigit():
            raise UsageError(f"'{item}' is not a job id; `remap queue list` shows them")
        ids.append(int(item))
    return ids


def _move(queue: Queue, items: list[str]) -> int:
    if len(items) == 2 and items[1] in MOVES:
        jobs = queue.move(_ids(items[:1])[0], items[1])
    elif any(not i.isdigit() for i in items):
        word = next(i for i in items if not i.isdigit())
        raise UsageError(f"cannot read '{word}': expected `move JOB {'|'.join(MOVES)}` or `move JOB JOB ...`")
    else:
        jobs = queue.reorder(_ids(items))
    _print_jobs(jobs)
    return 0


def _list(queue: Queue, args: argparse.Namespace) -> int:
    jobs = queue.jobs() if args.all else queue.jobs(["running", "queued"])
    if args.json:
        print(json.dumps([asdict(j) for j in jobs], indent=2))
        return 0
    if not jobs:
        print("the queue is empty" + ("" if args.all else " (--all shows finished jobs)"))
        return 0
    _print_jobs(jobs)
    return 0


def _print_jobs(jobs: list[Job]) -> None:
    header = ("job", "model", "status", "epochs", "priority", "worker / note")
    rows = [header] + [(str(j.id), j.model_name, j.status, f"{j.epochs_done}/{j.epochs_planned}", str(j.priority),
                        _note(j)) for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _note(job: Job) -> str:
    if job.status == "running":
        left = (job.lease_until or 0) - time.time()
        cancel = ", cancelling" if job.cancel_requested else ""
        # a lease that ran out means the worker stopped responding; the job is queued again at the next claim
        lease = f"lease {left:.0f}s" if left >= 0 else f"lease expired {-left:.0f}s ago: its worker stopped responding"
        return f"{job.worker} ({lease}{cancel})"
    if job.status == "failed":
        return job.error
    return ""
