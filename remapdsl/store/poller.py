"""Watching a store that other processes write: whether anything changed, and what became of some jobs.

`StorePoller` holds a read-only connection of its own (`Store.open_read_only`) and asks SQLite's
`PRAGMA data_version`, a number that changes whenever another connection commits: an idle store costs one
tiny query, and the queries behind it run only when something was written. The language server polls the
queue's progress this way; the command line follows the jobs it trains in worker processes with
`job_updates`, which reads what became of each job since a cursor of what was seen of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from remapdsl.store.db import ACTIVE, EpochRow, RunStatus, Store
from remapdsl.store.queue import Job, Queue


@dataclass(frozen=True)
class JobCursor:
    """What was seen of a job: its status, the epochs finished and the attempts to train it."""

    status: str = RunStatus.QUEUED.value
    epochs: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class JobUpdate:
    """What became of a job since its cursor."""

    job: Job
    started: bool  # claimed by a worker (again) since the cursor
    resumed_from: int  # when started: the epochs finished before this attempt
    epochs: tuple[EpochRow, ...]  # finished since the cursor, in order
    ended: bool  # the job ended since the cursor
    end_status: str = ""  # when ended: its run's status (done, stopped, failed, cancelled)
    end_reason: str = ""
    cursor: JobCursor = JobCursor()  # what is seen of the job now


class StorePoller:
    """A read-only connection to the store at `path`, opened once the file exists, used by one caller at a time
    (from any thread)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 1.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._store: Store | None = None
        self._version: int | None = None

    @property
    def store(self) -> Store | None:
        """The read-only store, once the file exists (StoreError when it is not a store)."""
        if self._store is None and self.path.is_file():
            self._store = Store.open_read_only(self.path, self.timeout)
        return self._store

    def changed(self) -> bool:
        """Whether another connection committed since the last call; True at the first call once the store exists,
        False while it does not."""
        store = self.store
        if store is None:
            return False
        version = store.conn.execute("PRAGMA data_version").fetchone()[0]
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._version = None

    def __enter__(self) -> StorePoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def job_updates(store: Store, cursors: Mapping[int, JobCursor]) -> list[JobUpdate]:
    """What became of each job since its cursor, for the jobs that changed (in the order of `cursors`). A job no
    longer in the store, or already seen to end, has none."""
    queue = Queue(store)
    out: list[JobUpdate] = []
    for job_id, seen in cursors.items():
        if seen.status not in ACTIVE:
            continue
        job = queue.job(job_id)
        if job is None:
            continue
        started = job.attempts > seen.attempts and job.status != RunStatus.QUEUED
        epochs = tuple(store.epochs(job.run_id)[seen.epochs:]) if job.epochs_done > seen.epochs else ()
        ended = job.status not in ACTIVE
        run = store.run(job.run_id) if ended else None
        cursor = JobCursor(job.status, max(job.epochs_done, seen.epochs), job.attempts)
        if not started and not epochs and not ended and cursor == seen:
            continue
        out.append(JobUpdate(job, started, seen.epochs if seen.attempts else 0, epochs, ended,
                             run.status if run is not None else job.status if ended else "",
                             run.reason if run is not None else job.error if ended else "", cursor))
    return out
