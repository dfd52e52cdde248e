"""The training queue: jobs in the store, claimed atomically by workers that hold them under a lease.

A job is one run waiting for, or in, training. Queued jobs are taken in order of priority (highest
first), then position; moving a job rewrites positions (and, where it must, takes the priority of its new
neighbours) so the order shown is the order claimed. A worker claims a job in a ``BEGIN IMMEDIATE``
transaction, so two workers never get the same job, and keeps it by heartbeats that extend its lease; a
job whose lease ran out (its worker died) goes back to the queue and resumes from its last checkpoint.
Cancelling a running job only raises a flag: its worker stops at the next batch boundary and keeps the
epochs it finished.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from remapdsl.language.model import Comments, Document, ModelSpec
from remapdsl.store.db import JOB_STATUSES, ORIGINS, RunStatus, Store

MOVES = ("top", "up", "down", "bottom")
DEFAULT_LEASE_SECONDS = 60.0


class QueueError(ValueError):
    """A queue operation that cannot be done as asked; the message names the job and why."""


@dataclass(frozen=True)
class Job:
    id: int
    run_id: int
    priority: int
    position: float
    status: str
    worker: str | None
    lease_until: float | None
    heartbeat: float | None
    attempts: int
    cancel_requested: bool
    error: str
    created: float
    started: float | None
    finished: float | None
    model_name: str
    model_hash: str
    source: str
    epochs_done: int
    epochs_planned: int
    device: str = "auto"  # the device the run asks for


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False: the same architecture, data and settings were already queued or trained


_SELECT = """
    SELECT j.id, j.run_id, j.priority, j.position, j.status, j.worker, j.lease_until, j.heartbeat, j.attempts,
           j.cancel_requested, j.error, j.created, j.started, j.finished, r.model_name, r.model_hash, r.source,
           (SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.id), r.settings, r.device
    FROM jobs j JOIN runs r ON r.id = j.run_id
"""
_CLAIM_ORDER = "j.priority DESC, j.position, j.id"
# A run stopped early is a job done.
_JOB_STATUS_OF_RUN = {RunStatus.DONE: RunStatus.DONE, RunStatus.STOPPED: RunStatus.DONE,
                      RunStatus.FAILED: RunStatus.FAILED, RunStatus.CANCELLED: RunStatus.CANCELLED}


def _job(r: Sequence[Any]) -> Job:
    planned = int(json.loads(r[18]).get("epochs", 0))
    return Job(id=r[0], run_id=r[1], priority=r[2], position=r[3], status=r[4], worker=r[5], lease_until=r[6],
               heartbeat=r[7], attempts=r[8], cancel_requested=bool(r[9]), error=r[10], created=r[11],
               started=r[12], finished=r[13], model_name=r[14], model_hash=r[15], source=r[16],
               epochs_done=r[17], epochs_planned=planned, device=r[19])


class Queue:
    """Queue operations on one store connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn

    # --- reading -----------------------------------------------------------------------------------

    def job(self, job_id: int) -> Job | None:
        r = self.conn.execute(_SELECT + " WHERE j.id = ?", (job_id,)).fetchone()
        return _job(r) if r else None

    def require(self, job_id: int) -> Job:
        job = self.job(job_id)
        if job is None:
            raise QueueError(f"no job {job_id} in the queue")
        return job

    def job_of_run(self, run_id: int) -> Job | None:
        r = self.conn.execute(_SELECT + " WHERE j.run_id = ?", (run_id,)).fetchone()
        return _job(r) if r else None

    def jobs(self, statuses: Sequence[str] | None = None) -> list[Job]:
        """Jobs as a queue reads: running, then queued in the order they will be claimed, then the rest."""
        rows = self.conn.execute(_SELECT + " ORDER BY CASE j.status WHEN 'running' THEN 0 WHEN 'queued' THEN 1 "
                                 f"ELSE 2 END, CASE WHEN j.status = 'queued' THEN 0 ELSE -j.id END, {_CLAIM_ORDER}")
        jobs = [_job(r) for r in rows.fetchall()]
        return [j for j in jobs if statuses is None or j.status in statuses]

    def queued(self) -> list[Job]:
        rows = self.conn.execute(_SELECT + f" WHERE j.status = 'queued' ORDER BY {_CLAIM_ORDER}").fetchall()
        return [_job(r) for r in rows]

    def queued_devices(self) -> list[str]:
        """The devices that queued jobs ask for, each once."""
        rows = self.conn.execute("SELECT DISTINCT r.device FROM jobs j JOIN runs r ON r.id = j.run_id "
                                 "WHERE j.status = ?", (RunStatus.QUEUED,)).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status.value: dict(rows).get(status, 0) for status in JOB_STATUSES}

    # --- enqueue -----------------------------------------------------------------------------------

    def enqueue(self, model_hash: str, model_name: str, *, data_key: str, data_text: str, settings_key: str,
                settings: dict[str, Any], device: str = "auto", source: str = "", base_dir: str = "",
                params: int | None = None, flops: int | None = None, priority: int = 0,
                force: bool = False) -> Enqueued:
        """Queue a training of a registered model, unless the same one is already queued or trained."""
        with self.store.transaction() as c:
            if self.store.model(model_hash) is None:
                raise QueueError(f"model {model_name} ({model_hash}) is not registered in the store")
            if not force:
                r = c.execute("SELECT j.id FROM runs r JOIN jobs j ON j.run_id = r.id WHERE r.model_hash = ? "
                              "AND r.data_key = ? AND r.settings_key = ? ORDER BY r.id DESC LIMIT 1",
                              (model_hash, data_key, settings_key)).fetchone()
                if r is not None:
                    existing = int(r[0])
                    return Enqueued(self.require(existing), created=False)
            run_id = self.store.add_run(model_hash, model_name, data_key=data_key, data_text=data_text,
                                        settings_key=settings_key, settings=settings, device=device, source=source,
                                        base_dir=base_dir, params=params, flops=flops)
            cur = c.execute("INSERT INTO jobs(run_id, priority, position, created) VALUES (?, ?, ?, ?)",
                            (run_id, priority, _next_position(c), time.time()))
            assert cur.lastrowid is not None
            job_id = cur.lastrowid
        return Enqueued(self.require(job_id), created=True)

    # --- ordering ----------------------------------------------------------------------------------

    def move(self, job_id: int, where: str) -> list[Job]:
        """Move a queued job to the top, up one, down one or to the bottom; returns the new queue."""
        if where not in MOVES:
            raise QueueError(f"unknown move '{where}'; expected one of {', '.join(MOVES)}")
        with self.store.transaction() as c:
            order = self._queued_ids(c)
            self._require_queued(job_id, order)
            i = order.index(job_id)
            order.pop(i)
            target = {"top": 0, "up": max(i - 1, 0), "down": min(i + 1, len(order)), "bottom": len(order)}[where]
            order.insert(target, job_id)
            self._write_order(c, order, moved=[job_id])
        return self.queued()

    def reorder(self, job_ids: Sequence[int]) -> list[Job]:
        """Put these queued jobs first, in this order; the others follow in their current order."""
        if len(set(job_ids)) != len(job_ids):
            raise QueueError("a job is listed twice in the new order")
        with self.store.transaction() as c:
            current = self._queued_ids(c)
            for job_id in job_ids:
                self._require_queued(job_id, current)
            order = [*job_ids, *(j for j in current if j not in set(job_ids))]
            self._write_order(c, order, moved=list(job_ids))
        return self.queued()

    def _queued_ids(self, c: sqlite3.Connection) -> list[int]:
        rows = c.execute(f"SELECT j.id FROM jobs j WHERE j.status = 'queued' ORDER BY {_CLAIM_ORDER}").fetchall()
        return [int(r[0]) for r in rows]

    def _require_queued(self, job_id: int, queued: list[int]) -> None:
        if job_id in queued:
            return
        status = self.conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if status is None:
            raise QueueError(f"no job {job_id} in the queue")
        raise QueueError(f"job {job_id} is {status[0]}; only queued jobs can be moved")

    def _write_order(self, c: sqlite3.Connection, order: list[int], moved: list[int]) -> None:
        priority = dict(c.execute("SELECT id, priority FROM jobs WHERE status = 'queued'").fetchall())
        # a moved job takes the priority of the job before it (the first, of the job after it), so that
        # claiming by (priority, position) follows the new order; the others keep theirs
        for i, job_id in enumerate(order):
            if job_id not in moved:
                continue
            if i > 0:
                priority[job_id] = priority[order[i - 1]]
            elif len(order) > 1:
                priority[job_id] = max(priority[job_id], priority[order[1]])
        # later moved jobs may have changed their neighbours: make priorities non-increasing along the order
        for i in range(len(order) - 2, -1, -1):
            priority[order[i]] = max(priority[order[i]], priority[order[i + 1]])
        c.executemany("UPDATE jobs SET position = ?, priority = ? WHERE id = ?",
                      [(float(i), priority[job_id], job_id) for i, job_id in enumerate(order)])

    # --- cancel and retry --------------------------------------------------------------------------

    def cancel(self, job_id: int) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop at its next batch boundary."""
        with self.store.transaction() as c:
            job = self.require(job_id)
            if job.status == RunStatus.QUEUED:
                c.execute("UPDATE jobs SET status = 'cancelled', finished = ? WHERE id = ?", (time.time(), job_id))
                self.store.set_run_status(job.run_id, RunStatus.CANCELLED, "cancelled before it started")
            elif job.status == RunStatus.RUNNING:
                c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            else:
                raise QueueError(f"job {job_id} is already {job.status}")
        return self.require(job_id)

    def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again at the end; it resumes after its last finished epoch."""
        with self.store.transaction() as c:
            job = self.require(job_id)
            if job.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
                raise QueueError(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
            c.execute("UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL, cancel_requested = 0, "
                      "error = '', finished = NULL, position = ? WHERE id = ?", (_next_position(c), job_id))
            self.store.set_run_status(job.run_id, RunStatus.QUEUED)
        return self.require(job_id)

    def cancel_requested(self, job_id: int) -> bool:
        r = self.conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(r and r[0])

    # --- workers -----------------------------------------------------------------------------------

    def claim(self, worker: str, lease_seconds: float = DEFAULT_LEASE_SECONDS,
              only: Collection[int] | None = None, accepts: Callable[[str], bool] | None = None) -> Job | None:
        """The next queued job (among `only`, when given, and whose device `accepts` takes), now held by
        `worker` until its lease runs out; None when there is none. Jobs passed over stay queued in their
        place for a worker that can take them."""
        now = time.time()
        with self.store.transaction() as c:
            _expire_leases(self.store, now)
            rows = c.execute("SELECT j.id, r.device FROM jobs j JOIN runs r ON r.id = j.run_id "
                             f"WHERE j.status = 'queued' ORDER BY {_CLAIM_ORDER}")
            job_id = next((int(r[0]) for r in rows if (only is None or int(r[0]) in only)
                           and (accepts is None or accepts(r[1]))), None)
            if job_id is None:
                return None
            c.execute("UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, heartbeat = ?, "
                      "attempts = attempts + 1, started = COALESCE(started, ?) WHERE id = ?",
                      (worker, now + lease_seconds, now, now, job_id))
            c.execute("UPDATE runs SET status = 'running', reason = '' "
                      "WHERE id = (SELECT run_id FROM jobs WHERE id = ?)", (job_id,))
        return self.require(job_id)

    def heartbeat(self, job_id: int, worker: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend the lease; False when `worker` no longer holds the job (its lease ran out and it moved on)."""
        now = time.time()
        with self.store.transaction() as c:
            cur = c.execute("UPDATE jobs SET lease_until = ?, heartbeat = ? WHERE id = ? AND worker = ? "
                            "AND status = 'running'", (now + lease_seconds, now, job_id, worker))
            return cur.rowcount == 1

    def holds(self, job_id: int, worker: str) -> bool:
        return self.store.holds(job_id, worker)

    def complete(self, job_id: int, worker: str, run_status: str, reason: str = "", *,
                 seconds: float | None = None, used_device: str | None = None,
                 predictions: np.ndarray | None = None, confusion: np.ndarray | None = None,
                 per_class: np.ndarray | None = None) -> bool:
        """Record how a held job ended (run status done, stopped, failed or cancelled) with its results.

        False, and nothing written, when the worker no longer holds the job.
        """
        job_status = _JOB_STATUS_OF_RUN[RunStatus(run_status)]
        with self.store.transaction() as c:
            if not self.store.holds(job_id, worker):
                return False
            run_id = c.execute("SELECT run_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            c.execute("UPDATE jobs SET status = ?, error = ?, lease_until = NULL, finished = ? WHERE id = ?",
                      (job_status, reason if job_status == RunStatus.FAILED else "", time.time(), job_id))
            self.store.finish_run(run_id, run_status, reason, seconds=seconds, used_device=used_device,
                                  predictions=predictions, confusion=confusion, per_class=per_class)
        return True

    def release(self, job_id: int, worker: str) -> bool:
        """Give a held job back to the queue untouched (a worker shutting down)."""
        with self.store.transaction() as c:
            cur = c.execute("UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL WHERE id = ? "
                            "AND worker = ? AND status = 'running'", (job_id, worker))
            if cur.rowcount:
                c.execute("UPDATE runs SET status = 'queued' WHERE id = (SELECT run_id FROM jobs WHERE id = ?)",
                          (job_id,))
            return cur.rowcount == 1


def _next_position(c: sqlite3.Connection) -> float:
    r = c.execute("SELECT MAX(position) FROM jobs").fetchone()[0]
    return float(r) + 1 if r is not None else 0.0


def _expire_leases(store: Store, now: float) -> list[int]:
    c = store.conn
    rows = c.execute("SELECT id, run_id, cancel_requested FROM jobs WHERE status = 'running' AND lease_until < ?",
                     (now,)).fetchall()
    for job_id, run_id, cancel in rows:
        if cancel:  # its worker died while stopping: the stop is done
            c.execute("UPDATE jobs SET status = 'cancelled', worker = NULL, lease_until = NULL, finished = ? "
                      "WHERE id = ?", (now, job_id))
            store.set_run_status(run_id, RunStatus.CANCELLED, "cancelled while running")
        else:
            c.execute("UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL WHERE id = ?", (job_id,))
            c.execute("UPDATE runs SET status = 'queued', reason = 'its worker stopped responding' WHERE id = ?",
                      (run_id,))
    return [int(r[0]) for r in rows]


# --- from a document to the queue ------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """A model of a document as the store knows it."""

    name: str
    hash: str
    origin: str
    changes: str
    params: int
    flops: int
    parent: str | None  # the parent's name in the document


def model_origin(model: ModelSpec) -> tuple[str, str]:
    """(origin, changes) from the model's change comment.

    A comment opening with an origin word (`# ablation: removed relu at 1`, `# sampled`) names both;
    otherwise a model written `from` a parent is handcrafted, with its comment as the changes, and any
    other model is the user's.
    """
    texts = [*model.comments.leading, *([model.comments.trailing] if model.comments.trailing else [])]
    for text in texts:
        word, _, rest = text.strip().partition(" ")
        word = word.rstrip(":,").lower()
        if word in ORIGINS:
            return word, rest.strip().lstrip(":").strip()
    changes = "; ".join(t.strip() for t in texts if t.strip())
    return ("handcrafted" if model.parent is not None else "user"), changes


def describe_models(document: Document, names: Sequence[str] | None = None, *, origin: str | None = None,
                    base_dir: Path | None = None) -> list[tuple[Registered, str]]:
    """Each chosen model as the store keys it, with its canonical text; `origin` overrides the comments.
    `base_dir`, the folder of the file, resolves a relative data path."""
    from remapdsl.language.analysis import analyze
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.printer import format_model

    analysis = analyze(document, base_dir=base_dir)
    wanted = list(names) if names is not None else list(analysis.models)
    hashes = {name: architecture_hash(info.model) for name, info in analysis.models.items()}
    out: list[tuple[Registered, str]] = []
    for name in wanted:
        info = analysis.models[name]
        model = info.model
        found_origin, changes = model_origin(model)
        # a space is no model: a path drawn from one has no parent in the store
        parent = model.parent if model.parent in hashes and not model.parent_space else None
        text = format_model(replace(model, parent=None, comments=Comments()))
        out.append((Registered(name, hashes[name], origin or found_origin, changes, info.param_count, info.flops,
                               parent), text))
    return out


def register_models(store: Store, document: Document, names: Sequence[str] | None = None, *, source: str = "",
                    origin: str | None = None, base_dir: Path | None = None) -> list[Registered]:
    """Register the chosen (valid) models of a document in the store, with what `source` calls them."""
    described = describe_models(document, names, origin=origin, base_dir=base_dir)
    hashes = {m.name: m.hash for m, _ in described}
    for m, text in described:
        parent = hashes.get(m.parent) if m.parent else None
        if m.parent and parent is None:
            from remapdsl.language.hashing import architecture_hash

            spec = document.model(m.parent)
            parent = architecture_hash(spec) if spec is not None else None
        store.add_model(m.hash, text, name=m.name, source=source, params=m.params, flops=m.flops, parent=parent,
                        origin=m.origin, changes=m.changes)
    return [m for m, _ in described]


def data_line(document: Document) -> str:
    """The document's data line in canonical text, without comments ('' for the default data)."""
    from remapdsl.language.printer import format_document

    if document.data is None:
        return ""
    return format_document(Document(data=replace(document.data, comments=Comments()))).strip()
