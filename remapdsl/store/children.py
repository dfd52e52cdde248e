"""The children table of one parent (the REMAP paper's Fig. 7): the parent's own row, then each child with
where it came from, its size and accuracy against the parent's, its estimated then actual training time,
its status with progress, and its validation loss per finished epoch.

A child is a stored model whose parent is the parent's architecture, whatever file named it. Each model is
represented by the run that stands for it in the population (`remapdsl.store.population`), so the table
and the overview show the same figures. A few queries whatever the number of children.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from remapdsl.store.db import Store
from remapdsl.store.estimate import DEFAULT_BATCH, TimeModel, Work, layer_count, time_model
from remapdsl.store.population import Population, read_population

# Children listed at most: a parent with more is shown with its newest ones.
MAX_CHILDREN = 500


@dataclass(frozen=True)
class ChildRow:
    hash: str
    name: str
    is_parent: bool
    origin: str
    changes: str
    params: int | None
    delta_params: int | None  # against the parent
    val_acc: float | None
    delta_acc: float | None  # against the parent, when both have one
    estimated_seconds: float | None  # before training, from the store's past runs on the device
    actual_seconds: float | None  # the seconds of the epochs trained so far
    status: str  # the standing run's status, or "untrained"
    epoch: int  # epochs finished
    epochs: int  # epochs planned (0 unknown)
    run_id: int | None
    job_id: int | None
    val_loss: tuple[float, ...]  # per finished epoch

    @property
    def progress(self) -> float:
        """Finished share of the planned epochs, in [0, 1]."""
        return min(1.0, self.epoch / self.epochs) if self.epochs > 0 else 0.0


def child_hashes(store: Store, parent_hash: str, limit: int = MAX_CHILDREN) -> list[str]:
    """The architectures stored as children of `parent_hash`, oldest first (the newest `limit` of them)."""
    rows = store.conn.execute(
        "SELECT hash FROM (SELECT hash, created FROM models WHERE parent = ? AND hash != ? "
        "ORDER BY created DESC, hash DESC LIMIT ?) ORDER BY created, hash",
        (parent_hash, parent_hash, limit)).fetchall()
    return [r[0] for r in rows]


def children_table(store: Store, parent_hash: str, *, data_key: str | None = None,
                   device: str | None = None) -> list[ChildRow]:
    """The parent's row, then its children's, oldest child first; [] when the store has no such model.

    `data_key` counts only runs on that data (as the population does). `device` names the device whose past
    runs estimate training times (`cpu`, `cuda`); by default the one the store's newest run used.
    """
    with store.snapshot():
        hashes = [parent_hash, *child_hashes(store, parent_hash)]
        population = read_population(store, data_key=data_key, hashes=hashes)
        if parent_hash not in population.index:
            return []
        runs = [int(r) for r in population.run_id if r >= 0]
        losses = _val_losses(store, runs)
        details = _run_details(store, runs)
        jobs = _jobs(store, runs)
        texts = _texts(store, hashes)
        timing = time_model(store, device or _newest_device(store) or "cpu")
    p = population.index[parent_hash]
    parent_params = _count(population.params[p])
    parent_acc = _figure(population.val_acc[p])
    out = []
    for h in hashes:
        if h not in population.index:
            continue
        i = population.index[h]
        run = int(population.run_id[i])
        params, acc = _count(population.params[i]), _figure(population.val_acc[i])
        detail = details.get(run)
        is_parent = h == parent_hash
        out.append(ChildRow(
            hash=h, name=str(population.name[i]) or h, is_parent=is_parent, origin=str(population.origin[i]),
            changes=str(population.changes[i]), params=params,
            delta_params=None if is_parent or params is None or parent_params is None else params - parent_params,
            val_acc=acc, delta_acc=None if is_parent or acc is None or parent_acc is None else acc - parent_acc,
            estimated_seconds=_estimate(timing, population, i, detail, texts.get(h, "")),
            actual_seconds=_actual(detail, losses.get(run, ())),
            status=str(population.status[i]), epoch=int(population.epoch[i]),
            epochs=max(int(population.epochs[i]), 0), run_id=run if run >= 0 else None, job_id=jobs.get(run),
            val_loss=tuple(loss for loss, _ in losses.get(run, ()))))
    return out


@dataclass(frozen=True)
class _RunDetail:
    seconds: float | None
    n_train: int | None
    batch: int
    epochs: int


def _val_losses(store: Store, runs: Sequence[int]) -> dict[int, list[tuple[float, float]]]:
    """(validation loss, seconds) per finished epoch of each run."""
    out: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for chunk in _chunks(runs):
        rows = store.conn.execute(
            f"SELECT run_id, val_loss, seconds FROM epochs WHERE run_id IN ({','.join('?' * len(chunk))}) "
            "ORDER BY run_id, epoch", chunk).fetchall()
        for run_id, loss, seconds in rows:
            out[int(run_id)].append((float(loss), float(seconds)))
    return out


def _run_details(store: Store, runs: Sequence[int]) -> dict[int, _RunDetail]:
    import json

    out = {}
    known: dict[str, int | None] = {}
    for chunk in _chunks(runs):
        rows = store.conn.execute(
            f"SELECT id, seconds, n_train, settings, data_text FROM runs WHERE id IN ({','.join('?' * len(chunk))})",
            chunk).fetchall()
        for run_id, seconds, n_train, settings, data_text in rows:
            try:
                values = json.loads(settings)
            except ValueError:
                values = {}
            batch, epochs = values.get("batch"), values.get("epochs")
            if not n_train:  # not started yet: as many examples as the last run on the same data had
                n_train = known.setdefault(data_text, store.latest_n_train(data_text))
            out[int(run_id)] = _RunDetail(
                None if seconds is None else float(seconds), int(n_train) if n_train else None,
                batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else DEFAULT_BATCH,
                epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else 0)
    return out


def _jobs(store: Store, runs: Sequence[int]) -> dict[int, int]:
    out = {}
    for chunk in _chunks(runs):
        rows = store.conn.execute(
            f"SELECT run_id, id FROM jobs WHERE run_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        out.update({int(r): int(j) for r, j in rows})
    return out


def _texts(store: Store, hashes: Sequence[str]) -> dict[str, str]:
    out = {}
    for chunk in _chunks(hashes):
        rows = store.conn.execute(
            f"SELECT hash, text FROM models WHERE hash IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        out.update({h: t for h, t in rows})
    return out


def _newest_device(store: Store) -> str | None:
    row = store.conn.execute(
        "SELECT used_device FROM runs WHERE used_device IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def _estimate(timing: TimeModel | None, population: Population, i: int, detail: _RunDetail | None,
              text: str) -> float | None:
    flops = int(population.flops[i])
    if timing is None or flops < 0:
        return None
    n_train = detail.n_train if detail is not None and detail.n_train else None
    if n_train is None:
        return None
    epochs = max(int(population.epochs[i]), detail.epochs if detail is not None else 0)
    batch = detail.batch if detail is not None else DEFAULT_BATCH
    return timing.seconds(Work(flops, n_train, batch, layer_count(text) if text else 1), epochs)


def _actual(detail: _RunDetail | None, epochs: Sequence[tuple[float, float]]) -> float | None:
    """The seconds its epochs took: what the estimate predicts (a run's own total adds loading the data and
    starting a process)."""
    if epochs:
        return sum(s for _, s in epochs)
    return detail.seconds if detail is not None else None


def _count(value: np.integer | int) -> int | None:
    return None if int(value) < 0 else int(value)


def _figure(value: np.floating | float) -> float | None:
    return None if math.isnan(float(value)) else float(value)


def _chunks(values: Sequence[int] | Sequence[str], size: int = 500) -> list[list[int | str]]:
    """SQLite binds at most 999 parameters in older builds."""
    items: list[int | str] = list(values)
    return [items[i:i + size] for i in range(0, len(items), size)]
