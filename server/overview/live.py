"""Live updates: a periodic callback asks the store's change feed what was written since its cursor
(`remapdsl.store.changes`) and rereads only the models, jobs and runs concerned; panels update their sources
with `stream` and `patch` from the events this emits (`population`, `jobs`, `epochs`, `drawer`)."""

from __future__ import annotations

import time

import numpy as np
from remapdsl_server.overview.state import OverviewState, log

from remapdsl.store.changes import changes_since

# the tables whose changes alter a model's row in the population
MODEL_TABLES = ("models", "model_names", "runs", "epochs", "artifacts", "confusion", "jobs")


def tick(state: OverviewState) -> None:
    """Apply what changed since the state's cursor (several batches when a worker wrote a lot)."""
    started = time.perf_counter()
    while True:
        batch = changes_since(state.store, state.cursor)
        state.cursor = batch.cursor
        if batch.reread:
            rows = state.refresh(None)
            state.emit("population", rows)
            state.emit("jobs", None)
            state.emit("drawer", None)
            return
        if not batch.changes:
            return
        hashes = batch.model_hashes(*MODEL_TABLES)
        if hashes:
            rows = state.refresh(set(hashes))
            if len(rows):
                state.emit("population", rows)
        if batch.of("jobs") or batch.of("epochs"):
            state.emit("jobs", sorted({int(c.key) for c in batch.of("jobs")}))
        runs = batch.run_ids("epochs", "confusion", "runs")
        if runs:
            state.emit("epochs", sorted(runs))
        if batch.of("drawer"):
            state.emit("drawer", None)
        if not batch.more:
            break
    log.debug("live update in %.1f ms", 1000 * (time.perf_counter() - started))


def start(state: OverviewState) -> None:
    state.doc.add_periodic_callback(state.guard("live update", lambda: tick(state)), state.config.poll_ms)


def rows_of(state: OverviewState, hashes: list[str]) -> np.ndarray:
    index = state.population.index
    return np.array([index[h] for h in hashes if h in index], dtype=int)
