"""What the store says about a document's models and about the training queue, one query each.

The editor shows both: a status per model above it (not trained, queued, training epoch k of n, done,
failed with the reason, cancelled) with its validation accuracy, and the queue's counts with the models in
training for a status bar and progress reports. A document's models are looked up all at once, by their
architecture hashes with the document's data line and training settings, so a file of a thousand models
costs one query, not a thousand.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from remapdsl.language.hashing import architecture_hash
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Block, Document, Layer, ModelSpec
from remapdsl.store.db import FINISHED, RunStatus, Store

# What a model whose job is running shows; the other states are run statuses, and "not trained".
TRAINING = "training"


@dataclass(frozen=True)
class ModelStatus:
    """Where the training of one architecture stands (with the document's data and settings)."""

    state: str  # not trained | queued | training | done | failed | cancelled
    epochs_done: int = 0
    epochs: int = 0
    accuracy: float | None = None  # validation accuracy of the last finished epoch
    reason: str = ""
    job_id: int | None = None

    def text(self) -> str:
        if self.state == TRAINING:
            if self.epochs < 1:  # a run whose settings do not say
                return "training"
            return f"training epoch {min(self.epochs_done + 1, self.epochs)} of {self.epochs}"
        if self.state == RunStatus.FAILED and self.reason:
            return f"failed ({_short(self.reason)})"
        return self.state


NOT_TRAINED = ModelStatus("not trained")


@dataclass(frozen=True)
class Training:
    """A job in training: its model, the epochs finished and planned."""

    job_id: int
    model: str
    epochs_done: int
    epochs: int

    @property
    def epoch(self) -> int:
        """The epoch in progress, 1-based."""
        return min(self.epochs_done + 1, max(self.epochs, 1))


@dataclass(frozen=True)
class QueueProgress:
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    training: tuple[Training, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The counts and the first model in training, as the editor's status bar reads them."""
        current = self.training[0] if self.training else None
        return {"queued": self.queued, "running": self.running, "done": self.done, "failed": self.failed,
                "current": None if current is None else {"model": current.model, "epoch": current.epoch,
                                                         "epochs": current.epochs}}


def run_key(document: Document) -> tuple[str, str | None]:
    """(data text, settings key) that the document's runs are stored under; the key is None when the
    document's train line cannot be read."""
    from remapdsl.store.queue import data_line

    try:
        key: str | None = TrainSettings.from_document(document).key()
    except (TypeError, ValueError):
        key = None
    return data_line(document), key


def model_hashes(models: Iterable[ModelSpec]) -> dict[str, str]:
    """Each model's architecture hash by name. Cached by the layers: a re-parsed file mostly hands back the
    same layers, and hashing a thousand models afresh on every look at the store would take a while."""
    return {m.name: _layers_hash(m.layers, m.blocks) for m in models}


@lru_cache(maxsize=1 << 14)
def _layers_hash(layers: tuple[Layer, ...], blocks: tuple[Block, ...] = ()) -> str:
    return architecture_hash(ModelSpec("", layers, blocks=blocks))


def model_statuses(store: Store, hashes: Collection[str], data_text: str,
                   settings_key: str | None) -> dict[str, ModelStatus]:
    """The status of each architecture that has a run with this data (and settings, when known).

    The run that stands for a model: one in the queue or in training, else the newest finished one, else
    the newest (failed or cancelled). Hashes without a run are left out: they are not trained.
    """
    if not hashes:
        return {}
    sql = ("SELECT r.model_hash, r.id, r.status, r.reason, r.val_acc, r.settings, j.id, j.status, j.error, "
           "(SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.id), "
           "(SELECT e.val_acc FROM epochs e WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1) "
           "FROM runs r LEFT JOIN jobs j ON j.run_id = r.id "
           "WHERE r.model_hash IN (SELECT value FROM json_each(?)) AND r.data_text = ?")
    params: list[Any] = [json.dumps(sorted(hashes)), data_text]
    if settings_key is not None:
        sql += " AND r.settings_key = ?"
        params.append(settings_key)
    best: dict[str, tuple[tuple[int, int], ModelStatus]] = {}
    for row in store.conn.execute(sql + " ORDER BY r.id", params):
        model_hash, run_id, run_status, reason, val_acc, settings, job_id, job_status, error, done, last_acc = row
        status = _status(run_status, job_status, reason or error or "", val_acc, last_acc, done,
                         _planned(settings), job_id)
        rank = (2 if status.state in (RunStatus.QUEUED, TRAINING) else 1 if run_status in FINISHED else 0, run_id)
        if model_hash not in best or rank > best[model_hash][0]:
            best[model_hash] = (rank, status)
    return {h: status for h, (_, status) in best.items()}


def queue_progress(store: Store) -> QueueProgress:
    """The queue's counts by job status, and the jobs in training (oldest start first)."""
    counts = dict(store.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
    rows = store.conn.execute(
        "SELECT j.id, r.model_name, r.settings, (SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.id) "
        "FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.status = ? ORDER BY j.started, j.id",
        (RunStatus.RUNNING,)).fetchall()
    training = tuple(Training(int(job_id), name, int(done), _planned(settings))
                     for job_id, name, settings, done in rows)
    return QueueProgress(queued=counts.get(RunStatus.QUEUED, 0), running=counts.get(RunStatus.RUNNING, 0),
                         done=counts.get(RunStatus.DONE, 0), failed=counts.get(RunStatus.FAILED, 0),
                         cancelled=counts.get(RunStatus.CANCELLED, 0), training=training)


def _status(run_status: str, job_status: str | None, reason: str, val_acc: float | None, last_acc: float | None,
            done: int, epochs: int, job_id: int | None) -> ModelStatus:
    state = job_status or run_status
    if state == RunStatus.RUNNING:
        return ModelStatus(TRAINING, done, epochs, last_acc, job_id=job_id)
    if state in FINISHED or run_status in FINISHED:
        return ModelStatus(RunStatus.DONE.value, done, epochs, val_acc if val_acc is not None else last_acc,
                           job_id=job_id)
    if state in (RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED):
        return ModelStatus(state, done, epochs, last_acc, reason if state == RunStatus.FAILED else "", job_id)
    return ModelStatus(state, done, epochs, last_acc, reason, job_id)


def _planned(settings: str | None) -> int:
    try:
        return int(json.loads(settings or "{}").get("epochs", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def _short(text: str, limit: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
