"""The Pareto front over NumPy columns in O(n log n), and kept up to date one model at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from remapdsl.store.pareto import ModelScore, ParetoFront, pareto_front, pareto_mask

# small grids, so that ties of size, of accuracy and of both are frequent
sizes = st.sampled_from([10.0, 20.0, 30.0, 40.0, -1.0, math.nan])
accuracies = st.sampled_from([0.1, 0.5, 0.5, 0.9, 1.0, math.nan])
points = st.lists(st.tuples(sizes, accuracies), max_size=40)


def reference(rows: list[tuple[float, float]]) -> set[int]:
    valid = [ModelScore(str(i), a, int(p)) for i, (p, a) in enumerate(rows)
             if math.isfinite(p) and p >= 0 and math.isfinite(a)]
    return {int(k) for k in pareto_front(valid)}


def test_the_mask_marks_small_accurate_models_and_ties_but_no_unknown_figures():
    params = np.array([1_000, 10_000, 50_000, 100_000, 900_000, 5, 100_000, -1])
    acc = np.array([0.70, 0.85, 0.80, 0.90, 0.90, np.nan, 0.90, 0.99])
    assert np.flatnonzero(pareto_mask(params, acc)).tolist() == [0, 1, 3, 6]
    assert pareto_mask([], []).tolist() == []
    with pytest.raises(ValueError, match="length"):
        pareto_mask([1, 2], [0.5])


@given(points)
def test_the_mask_is_the_front_of_pareto_front(rows: list[tuple[float, float]]):
    p = np.array([r[0] for r in rows], dtype=np.float64)
    a = np.array([r[1] for r in rows], dtype=np.float64)
    assert set(np.flatnonzero(pareto_mask(p, a)).tolist()) == reference(rows)


@given(points, points, st.lists(st.integers(0, 79), max_size=10))
def test_the_incremental_front_agrees_with_the_mask_after_adds_updates_and_removals(
        first: list[tuple[float, float]], later: list[tuple[float, float]], removed: list[int]):
    front = ParetoFront([r[0] for r in first], [r[1] for r in first])
    rows = dict(enumerate(first))
    for i, (p, a) in enumerate(later):
        # new rows, and every third one gives an existing row new figures
        index = i // 3 if i % 3 == 0 and rows else len(first) + i
        before = (set(front.indices()), front.points())
        changed = front.add(index, p, a)
        rows[index] = (p, a)
        assert changed == ((set(front.indices()), front.points()) != before)
    for index in removed:
        before = set(front.indices())
        changed = front.remove(index)
        rows.pop(index, None)
        assert changed == (set(front.indices()) != before)
    keys = sorted(rows)
    expected = {keys[j] for j in reference([rows[k] for k in keys])}
    assert set(front.indices()) == expected and len(front) == len(expected)
    assert all((i in front) == (i in expected) for i in keys)
    sizes = [p for p, _ in front.points()]
    assert sizes == sorted(sizes)


def test_the_mask_of_ten_thousand_models_is_quick():
    rng = np.random.default_rng(0)
    params = rng.integers(1_000, 1_000_000, 10_000)
    acc = rng.random(10_000)
    mask = pareto_mask(params, acc)
    front = ParetoFront(params, acc)
    assert sorted(front.indices()) == np.flatnonzero(mask).tolist()
    assert not front.add(10_000, 999_999, 0.0) and front.add(10_001, 1, 0.0)
