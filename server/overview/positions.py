"""Positions of the population in the two kept layouts of `remapdsl.space.model_space`: structural (OTMANN, by
architecture hash) and predictions (prediction distance, by run id).

Stored positions are read and matched to the population's rows with NumPy; only when a model has none does
`compute` open its own connection and ModelSpace (it runs in a thread, off the server's event loop), which
places the new models without moving the kept ones and stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remapdsl.space.distance_cache import PREDICTIONS, STRUCTURAL
from remapdsl.store.db import Store
from remapdsl.store.layouts import LayoutTable

MEASURE = {STRUCTURAL: "emd", PREDICTIONS: "hamming"}


@dataclass(frozen=True)
class Positions:
    """x and y per population row (NaN: no position), and why a row has none ('' where it has one)."""

    x: np.ndarray
    y: np.ndarray
    notes: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.x)


def keys_of(space: str, hashes: np.ndarray, run_ids: np.ndarray) -> np.ndarray:
    """The layout key of each row: its hash (structural) or the id of the run that stands for it (predictions;
    '' when it has no finished run)."""
    if space == STRUCTURAL:
        return hashes.astype(str)
    ids = np.asarray(run_ids, dtype=np.int64)
    out = np.full(len(ids), "", dtype=object)
    ok = ids >= 0
    out[ok] = ids[ok].astype(str)
    return out


def stored(store: Store, space: str, keys: np.ndarray) -> Positions:
    """The kept positions of `keys` in `space`."""
    rows = LayoutTable(store).positions(space, MEASURE[space])
    n = len(keys)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    if rows and n:
        known = np.array([p.key for p in rows], dtype=object)
        order = np.argsort(known)
        known_sorted = known[order]
        xs = np.array([p.x for p in rows])[order]
        ys = np.array([p.y for p in rows])[order]
        idx = np.searchsorted(known_sorted, keys.astype(object))
        idx = np.clip(idx, 0, len(known_sorted) - 1)
        hit = known_sorted[idx] == keys
        x[hit] = xs[idx[hit]]
        y[hit] = ys[idx[hit]]
    # a model without a stored position is not laid out yet: no reason to give until placing it fails
    return Positions(x, y, np.full(n, "", dtype=object))


def compute(store_path: Path, space: str, hashes: np.ndarray, run_ids: np.ndarray) -> Positions:
    """Positions of every row, placing the rows without one (and storing them). Rows that cannot be placed
    get a note saying why: a text that no longer parses, no validation predictions."""
    from remapdsl.language.parser import parse
    from remapdsl.space.model_space import ModelSpace, RunPredictions

    keys = keys_of(space, hashes, run_ids)
    notes = np.full(len(keys), "", dtype=object)
    with Store(store_path) as store:
        model_space = ModelSpace(store, workers=1)
        if space == STRUCTURAL:
            texts = {row.hash: row.text for row in store.models()}
            specs = {}
            for i, h in enumerate(hashes):
                text = texts.get(str(h))
                result = parse(text) if text is not None else None
                if result is None or result.diagnostics or len(result.document.models) != 1:
                    notes[i] = "no structural position: its stored text no longer parses"
                    continue
                specs[str(h)] = result.document.models[0]
            members = model_space.structural(specs)
            for i, h in enumerate(hashes):
                if str(h) in members.problems:
                    notes[i] = f"no structural position: {members.problems[str(h)]}"
        else:
            runs = {}
            for i, key in enumerate(keys):
                predictions = store.predictions(int(key)) if key else None
                if predictions is None:
                    notes[i] = "no prediction position: no validation predictions stored"
                    continue
                runs[str(key)] = RunPredictions(int(key), predictions)
            members = model_space.predictions(runs)
        if members.keys:
            model_space.layout(members, MEASURE[space])
        found = stored(store, space, keys)
    return Positions(found.x, found.y, np.where(notes != "", notes, found.notes).astype(object))
