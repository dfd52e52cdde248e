"""Pairwise distances cached in the store and extended incrementally.

The store's table of distances (`remapdsl.store.distances`) holds each unordered pair once (``a < b``).
Asking for the matrix of n keys computes only the pairs not stored yet, through a callback, and writes
them in one short transaction; a key added to n cached ones therefore costs n distances, not n².

Spaces: 'structural' (keys are architecture hashes; ``value`` is the normalised OTMANN distance, ``lp``
the raw transport cost) and 'predictions' (keys are run ids; ``value`` is the prediction distance,
``lp`` is NULL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from remapdsl.space.prediction_distance import prediction_distance_matrix, prediction_distances_to
from remapdsl.store.distances import DistanceRow, DistanceTable

STRUCTURAL, PREDICTIONS = "structural", "predictions"
SPACES = (STRUCTURAL, PREDICTIONS)
MEASURES = ("value", "lp")


@dataclass(frozen=True)
class PairValue:
    value: float
    lp: float | None = None


Pair = tuple[str, str]
# Given the missing pairs, returns their distances in the same order.
ComputePairs = Callable[[list[Pair]], Sequence[PairValue]]


def ordered(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


class DistanceCache:
    """Distances of one store's table, computed when missing."""

    def __init__(self, table: DistanceTable) -> None:
        self.table = table

    def lookup(self, space: str, pairs: Iterable[Pair]) -> dict[Pair, PairValue]:
        """Stored distances of the given pairs (in either order), keyed by the ordered pair."""
        wanted = {ordered(a, b) for a, b in pairs if a != b}
        if not wanted:
            return {}
        keys = sorted({k for pair in wanted for k in pair})
        hub = [k for k in keys if all(k in pair for pair in wanted)]
        rows: list[DistanceRow] = (self.table.rows_of(space, hub[0]) if hub and len(keys) > 2
                                   else self.table.rows_from(space, keys))
        return {(a, b): PairValue(value, lp) for a, b, lp, value in rows if (a, b) in wanted}

    def store(self, space: str, values: Mapping[Pair, PairValue]) -> None:
        """Write distances in one transaction (or in the caller's, if one is open)."""
        self.table.write(space, [(*ordered(a, b), v.lp, v.value) for (a, b), v in values.items() if a != b])

    def forget(self, space: str, key: str) -> None:
        """Drop every stored distance involving `key` (a model or run that no longer exists)."""
        self.table.forget(space, key)

    def pairs(self, space: str, pairs: Sequence[Pair], compute: ComputePairs) -> dict[Pair, PairValue]:
        """Distances of the given pairs: stored ones read, missing ones computed and stored."""
        _check_space(space)
        known = self.lookup(space, pairs)
        missing = sorted({ordered(a, b) for a, b in pairs if a != b} - known.keys())
        if missing:
            computed = list(compute(missing))
            if len(computed) != len(missing):
                raise ValueError(f"the distance callback returned {len(computed)} values for {len(missing)} pairs")
            fresh = dict(zip(missing, computed, strict=True))
            self.store(space, fresh)
            known.update(fresh)
        return known

    def get_matrix(self, space: str, keys: Sequence[str], compute: ComputePairs, measure: str = "value") -> np.ndarray:
        """The (n, n) matrix of `keys`, computing only the pairs not stored yet.

        Stored pairs go straight into arrays, with no object per pair: the half a million pairs of a thousand
        keys are read in about a second.
        """
        _check_space(space)
        if measure not in MEASURES:
            raise ValueError(f"unknown measure '{measure}'; expected {' or '.join(MEASURES)}")
        distinct = list(dict.fromkeys(keys))
        where = {k: i for i, k in enumerate(distinct)}
        n = len(distinct)
        column = 3 if measure == "value" else 2  # of (a, b, lp, value)
        rows, cols, found = [], [], []
        for row in self.table.rows_from(space, distinct) if n > 1 else ():
            j = where.get(row[1])
            if j is None:
                continue
            if row[column] is None:
                raise ValueError(f"no raw transport cost ('lp') stored for {row[0]} and {row[1]}")
            rows.append(where[row[0]])
            cols.append(j)
            found.append(row[column])
        out = np.zeros((n, n))
        known = np.eye(n, dtype=bool)
        # each pair is stored once, in the order of its keys: both halves of the matrix get it
        out[rows, cols] = out[cols, rows] = found
        known[rows, cols] = known[cols, rows] = True
        upper = np.triu_indices(n, 1)
        gaps = ~known[upper]
        if gaps.any():
            missing = sorted(ordered(distinct[i], distinct[j]) for i, j in zip(upper[0][gaps], upper[1][gaps],
                                                                            strict=True))
            computed = list(compute(missing))
            if len(computed) != len(missing):
                raise ValueError(f"the distance callback returned {len(computed)} values for {len(missing)} pairs")
            fresh = dict(zip(missing, computed, strict=True))
            self.store(space, fresh)
            for (a, b), v in fresh.items():
                out[where[a], where[b]] = out[where[b], where[a]] = _measure(v, measure, a, b)
        # a key listed twice (two models, one architecture) is at distance 0 from itself
        index = [where[k] for k in keys]
        return out if len(index) == n else out[np.ix_(index, index)]

    def get_row(self, space: str, key: str, others: Sequence[str], compute: ComputePairs,
                measure: str = "value") -> np.ndarray:
        """Distances from `key` to each of `others`: at most len(others) computed."""
        values = self.pairs(space, [(key, o) for o in others], compute)
        return np.array([0.0 if o == key else _measure(values[ordered(key, o)], measure, key, o) for o in others])


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"unknown distance space '{space}'; expected {' or '.join(SPACES)}")


def _measure(v: PairValue, measure: str, a: str, b: str) -> float:
    if measure == "value":
        return v.value
    if measure == "lp":
        if v.lp is None:
            raise ValueError(f"no raw transport cost ('lp') stored for {a} and {b}")
        return v.lp
    raise ValueError(f"unknown measure '{measure}'; expected {' or '.join(MEASURES)}")


# --- callbacks for the two spaces ------------------------------------------------------------------


def predictions_compute(predictions: Mapping[str, Sequence[int] | np.ndarray]) -> ComputePairs:
    """Callback computing prediction distances between keyed runs (same validation split)."""

    def compute(pairs: list[Pair]) -> list[PairValue]:
        keys = sorted({k for pair in pairs for k in pair})
        missing = [k for k in keys if k not in predictions]
        if missing:
            raise KeyError(f"no validation predictions for {', '.join(missing)}")
        shared = [k for k in keys if all(k in pair for pair in pairs)]
        if shared:  # every pair involves one run: one row
            key = shared[0]
            others = [b if a == key else a for a, b in pairs]
            row = prediction_distances_to(predictions[key], [predictions[o] for o in others])
            return [PairValue(float(x)) for x in row]
        matrix = prediction_distance_matrix([predictions[k] for k in keys])
        where = {k: i for i, k in enumerate(keys)}
        return [PairValue(float(matrix[where[a], where[b]])) for a, b in pairs]

    return compute
