"""The results table of a document's models (the REMAP paper's Fig. 7) and their Pareto front.

One row per model: where it came from (origin and changes), its size and the change in size against its
parent, its validation accuracy and the change against its parent, and its estimated and actual training
time. The estimate comes from a time model fitted to the store's finished runs on the same device
(`remapdsl.store.estimate`); a model trained already shows its actual time too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from remapdsl.store.db import ACTIVE, FINISHED, RunRow, RunStatus, Store
from remapdsl.store.estimate import TimeModel, Work, layer_count, time_model
from remapdsl.store.pareto import ModelScore, pareto_front
from remapdsl.store.queue import Queue, Registered


@dataclass(frozen=True)
class ResultRow:
    model: str
    hash: str
    origin: str
    changes: str
    params: int
    parent: str | None
    delta_params: int | None  # against the parent
    val_acc: float | None
    delta_acc: float | None  # against the parent, when both are trained
    estimated_seconds: float | None
    actual_seconds: float | None
    status: str  # the run's status, or "untrained"
    epochs_done: int
    epochs: int
    run_id: int | None
    job_id: int | None


def pick_run(store: Store, model_hash: str, data_key: str, settings_key: str) -> RunRow | None:
    """The run that stands for a model: the newest finished one with these settings, else the newest one."""
    runs = store.find_runs(model_hash, data_key, settings_key)
    finished = [r for r in runs if r.status in FINISHED]
    return finished[0] if finished else (runs[0] if runs else None)


def result_rows(store: Store, models: Sequence[Registered], *, data_key: str, settings_key: str, epochs: int,
                n_train: int | None, device: str, batch: int) -> list[ResultRow]:
    """The table's rows for `models` (in their order) trained on `data_key` with `settings_key`."""
    queue = Queue(store)
    timing = time_model(store, device)
    runs = {m.name: pick_run(store, m.hash, data_key, settings_key) for m in models}
    accuracy = {name: _accuracy(store, run) for name, run in runs.items()}
    by_name = {m.name: m for m in models}
    rows: list[ResultRow] = []
    for m in models:
        run = runs[m.name]
        parent = by_name.get(m.parent) if m.parent else None
        acc, parent_acc = accuracy[m.name], accuracy.get(m.parent) if m.parent else None
        job = queue.job_of_run(run.id) if run else None
        rows.append(ResultRow(
            model=m.name, hash=m.hash, origin=m.origin, changes=m.changes, params=m.params, parent=m.parent,
            delta_params=m.params - parent.params if parent else None,
            val_acc=acc, delta_acc=acc - parent_acc if acc is not None and parent_acc is not None else None,
            estimated_seconds=_estimate(store, m, timing, n_train, batch, epochs),
            actual_seconds=_seconds(store, run),
            status=run.status if run else "untrained",
            epochs_done=len(store.epochs(run.id)) if run else 0, epochs=epochs,
            run_id=run.id if run else None, job_id=job.id if job else None))
    return rows


def _estimate(store: Store, m: Registered, timing: TimeModel | None, n_train: int | None, batch: int,
              epochs: int) -> float | None:
    if timing is None or not n_train:
        return None
    row = store.model(m.hash)
    layers = layer_count(row.text) if row is not None else 1
    return timing.seconds(Work(m.flops, n_train, batch, layers), epochs)


def pareto_rows(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """The trained rows on the front of accuracy against parameters, by increasing size."""
    trained = {r.model: r for r in rows if r.val_acc is not None and math.isfinite(r.val_acc)}
    keys = pareto_front([ModelScore(r.model, r.val_acc or 0.0, r.params) for r in trained.values()])
    return [trained[k] for k in keys]


def rows_json(rows: Sequence[ResultRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


COLUMNS = ("model", "origin", "changes", "params", "Δparams", "val acc", "Δacc", "est. time", "time", "status")


def format_table(rows: Sequence[ResultRow], max_changes: int = 40) -> str:
    """A plain-text table, one line per model."""
    cells = [COLUMNS] + [(
        r.model, r.origin, _clip(r.changes, max_changes) or "-", f"{r.params:,}", _signed_int(r.delta_params),
        _percent(r.val_acc), _signed_percent(r.delta_acc), duration(r.estimated_seconds),
        duration(r.actual_seconds), _status(r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    numeric = {3, 4, 5, 6, 7, 8}
    lines = ["  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _accuracy(store: Store, run: RunRow | None) -> float | None:
    if run is None:
        return None
    if run.val_acc is not None:
        return run.val_acc
    epochs = store.epochs(run.id)
    return epochs[-1].val_acc if epochs else None


def _seconds(store: Store, run: RunRow | None) -> float | None:
    if run is None:
        return None
    if run.seconds is not None:
        return run.seconds
    epochs = store.epochs(run.id)
    return sum(e.seconds for e in epochs) if epochs else None


def _status(r: ResultRow) -> str:
    if r.status in (*ACTIVE, RunStatus.CANCELLED, RunStatus.FAILED) and r.epochs_done:
        return f"{r.status} {r.epochs_done}/{r.epochs}"
    return r.status


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _signed_percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def _signed_int(x: int | None) -> str:
    return "-" if x is None else f"{x:+,}"
