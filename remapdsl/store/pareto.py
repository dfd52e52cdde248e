"""The interpretable projection and the Pareto front of accuracy against size.

Every trained model is a point (log10 parameters, validation accuracy). A model is on the Pareto front
when no other model is at least as accurate with at most as many parameters and strictly better in one
of the two. With selected classes, accuracy means the mean of the per-class accuracies of those classes,
so the front answers "small and good on these classes".
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class ParetoError(ValueError):
    """Accuracies that cannot be scored as asked; the message says why."""


@dataclass(frozen=True)
class ModelScore:
    """What the projection needs of one trained model."""

    key: str
    accuracy: float  # validation accuracy in [0, 1]
    params: int
    class_accuracies: tuple[float, ...] = ()  # per-class validation accuracy, by class index


def score(model: ModelScore, classes: Sequence[int] | None = None) -> float:
    """Overall accuracy, or the mean per-class accuracy over `classes`."""
    if not classes:
        return model.accuracy
    try:
        return sum(model.class_accuracies[c] for c in classes) / len(classes)
    except IndexError:
        known = len(model.class_accuracies)
        raise ParetoError(f"model '{model.key}' has per-class accuracies for {known} classes; "
                          f"cannot score classes {', '.join(map(str, classes))}") from None


def pareto_front(models: Sequence[ModelScore], classes: Sequence[int] | None = None) -> list[str]:
    """Keys of the non-dominated models (more accurate, fewer parameters), by increasing size."""
    ranked = sorted((m.params, -score(m, classes), m.key) for m in models)
    front: list[str] = []
    best = -math.inf
    i = 0
    while i < len(ranked):
        # models of equal size: only the most accurate of them can be on the front, and all that tie
        params = ranked[i][0]
        j = i
        while j < len(ranked) and ranked[j][0] == params:
            j += 1
        top = -ranked[i][1]
        if top > best:
            front.extend(key for _, neg, key in ranked[i:j] if -neg == top)
            best = top
        i = j
    return front


def pareto_mask(params: np.ndarray | Sequence[float], acc: np.ndarray | Sequence[float]) -> np.ndarray:
    """Which rows are on the front (fewer parameters, more accurate), as a boolean mask, in O(n log n).

    The same front as `pareto_front`: a row is on it when no other row has at most as many parameters and at
    least the accuracy, strictly better in one; rows that tie exactly are on it together. Rows without a figure
    (accuracy NaN, parameters negative or NaN: untrained or unknown) are never on it. ValueError when the two
    columns differ in length.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1)
    a = np.asarray(acc, dtype=np.float64).reshape(-1)
    if p.shape != a.shape:
        raise ValueError(f"params and accuracies differ in length: {p.size} and {a.size}")
    mask = np.zeros(p.size, dtype=bool)
    valid = np.flatnonzero(np.isfinite(a) & np.isfinite(p) & (p >= 0))
    if valid.size == 0:
        return mask
    order = valid[np.lexsort((-a[valid], p[valid]))]  # by size, the most accurate first among equal sizes
    ps, acs = p[order], a[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    group = np.cumsum(np.r_[True, ps[1:] != ps[:-1]]) - 1
    # the best accuracy of all strictly smaller models, per group of equal size
    best_before = np.r_[-np.inf, np.maximum.accumulate(acs)[starts[1:] - 1]]
    top = acs[starts]
    on = (acs == top[group]) & (top[group] > best_before[group])
    mask[order[on]] = True
    return mask


class ParetoFront:
    """The front of a growing population, kept up to date one model at a time.

    Rows are integer indices (a scatter's rows). `add` of a new row costs O(log n) plus the rows it pushes
    off the front; a row that changes (an accuracy that moves while it trains) or leaves is re-evaluated over
    all rows (O(n log n)), since rows it dominated may come back onto the front.
    """

    def __init__(self, params: np.ndarray | Sequence[float] = (), acc: np.ndarray | Sequence[float] = ()) -> None:
        p = np.asarray(params, dtype=np.float64).reshape(-1)
        a = np.asarray(acc, dtype=np.float64).reshape(-1)
        if p.shape != a.shape:
            raise ValueError(f"params and accuracies differ in length: {p.size} and {a.size}")
        self._points: dict[int, tuple[float, float]] = {i: (float(p[i]), float(a[i])) for i in range(p.size)}
        self._rebuild()

    def _rebuild(self) -> None:
        rows = np.fromiter(self._points, dtype=np.int64, count=len(self._points))
        values = np.array(list(self._points.values()), dtype=np.float64).reshape(-1, 2)
        on = rows[pareto_mask(values[:, 0], values[:, 1])] if rows.size else rows
        # the front by size (then row): accuracy rises along it
        front = sorted((self._points[int(i)][0], self._points[int(i)][1], int(i)) for i in on)
        self._sizes = [f[0] for f in front]
        self._front = front

    def indices(self) -> list[int]:
        """The rows on the front, by increasing size."""
        return [i for _, _, i in self._front]

    def points(self) -> list[tuple[float, float]]:
        """(params, accuracy) of the front, by increasing size: the staircase to draw."""
        return [(p, a) for p, a, _ in self._front]

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and index in self._points and \
            any(i == index for _, _, i in self._front[self._span(self._points[index][0])])

    def __len__(self) -> int:
        return len(self._front)

    def _span(self, size: float) -> slice:
        return slice(bisect_left(self._sizes, size), bisect_right(self._sizes, size))

    def add(self, index: int, params: float, acc: float) -> bool:
        """Add row `index` (or give it new figures); whether the front changed (its rows, or their figures)."""
        params, acc = float(params), float(acc)
        before = self._points.get(index)
        if before is not None:
            if before == (params, acc) or (before[0] == params and _same(before[1], acc)):
                return False
            was_on = index in self
            self._points[index] = (params, acc)
            if was_on or _valid(params, acc):
                old = self._front
                self._rebuild()
                return self._front != old
            return False
        self._points[index] = (params, acc)
        if not _valid(params, acc):
            return False
        # the most accurate front model of at most this size is the last one up to it
        at = bisect_right(self._sizes, params)
        if at > 0:
            p, a, _ = self._front[at - 1]
            if a > acc or (a == acc and p < params):
                return False
        # front models of at least this size and at most this accuracy (but not an exact tie) leave it
        end = bisect_left(self._sizes, params)
        while end < len(self._front) and self._front[end][1] <= acc:
            end += 1
        start = bisect_left(self._sizes, params)
        survivors = [f for f in self._front[start:end] if f[0] == params and f[1] == acc]
        new = sorted([*survivors, (params, acc, index)])
        self._front[start:end] = new
        self._sizes[start:end] = [f[0] for f in new]
        return True

    def remove(self, index: int) -> bool:
        """Forget row `index`; whether the front changed."""
        if self._points.pop(index, None) is None:
            return False
        old = self.indices()
        if index not in old:
            return False
        self._rebuild()
        return True


def _valid(params: float, acc: float) -> bool:
    return math.isfinite(params) and params >= 0 and math.isfinite(acc)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
