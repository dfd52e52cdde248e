"""The interpretable projection and the Pareto front of accuracy against parameters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remapdsl.store.pareto import (
    ModelScore,
    ParetoError,
    ProjectedPoint,
    interpretable_projection,
    pareto_front,
    pareto_fronts_by_class,
)

MODELS = [
    ModelScore("tiny", 0.70, 1_000, (0.9, 0.5)),
    ModelScore("small", 0.85, 10_000, (0.8, 0.9)),
    ModelScore("bloated", 0.80, 50_000, (0.95, 0.65)),
    ModelScore("big", 0.90, 100_000, (0.85, 0.95)),
    ModelScore("huge", 0.90, 900_000, (0.99, 0.81)),
]


def test_points_are_log10_params_against_accuracy():
    assert interpretable_projection(MODELS[:2]) == [ProjectedPoint("tiny", 3.0, 0.70),
                                                    ProjectedPoint("small", 4.0, 0.85)]
    assert interpretable_projection([ModelScore("empty", 0.1, 0)])[0].x == 0.0


def test_points_for_selected_classes_use_the_mean_per_class_accuracy():
    assert interpretable_projection(MODELS[:1], classes=[0, 1])[0].y == pytest.approx(0.7)


def test_front_keeps_models_no_other_beats_on_both_axes():
    # bloated is beaten by small (fewer params, more accurate); huge ties big on accuracy with more params
    assert pareto_front(MODELS) == ["tiny", "small", "big"]


def test_front_per_class():
    assert pareto_front(MODELS, classes=[0]) == ["tiny", "bloated", "huge"]
    assert pareto_front(MODELS, classes=[1]) == ["tiny", "small", "big"]
    assert pareto_fronts_by_class(MODELS, 2) == {0: ["tiny", "bloated", "huge"], 1: ["tiny", "small", "big"]}


def test_equal_models_are_both_on_the_front():
    twins = [ModelScore("a", 0.9, 10), ModelScore("b", 0.9, 10), ModelScore("c", 0.8, 10)]
    assert pareto_front(twins) == ["a", "b"]


def test_unknown_class_is_a_clear_error():
    with pytest.raises(ParetoError, match="'tiny' has per-class accuracies for 2 classes; cannot score classes 5"):
        pareto_front(MODELS, classes=[5])


scores = st.lists(st.tuples(st.integers(0, 1000), st.floats(0, 1)), min_size=0, max_size=30).map(
    lambda xs: [ModelScore(f"m{i}", acc, p) for i, (p, acc) in enumerate(xs)])


@given(scores)
def test_front_is_exactly_the_non_dominated_set(models):
    def dominated(m: ModelScore) -> bool:
        return any(o.params <= m.params and o.accuracy >= m.accuracy
                   and (o.params < m.params or o.accuracy > m.accuracy) for o in models)

    front = pareto_front(models)
    assert set(front) == {m.key for m in models if not dominated(m)}
    sizes = [next(m.params for m in models if m.key == k) for k in front]
    assert sizes == sorted(sizes)
    assert all(math.isfinite(p.x) for p in interpretable_projection(models))
