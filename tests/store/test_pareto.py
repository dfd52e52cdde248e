"""The Pareto front of accuracy against parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remapdsl.store.pareto import ModelScore, ParetoError, pareto_front

MODELS = [
    ModelScore("tiny", 0.70, 1_000, (0.9, 0.5)),
    ModelScore("small", 0.85, 10_000, (0.8, 0.9)),
    ModelScore("bloated", 0.80, 50_000, (0.95, 0.65)),
    ModelScore("big", 0.90, 100_000, (0.85, 0.95)),
    ModelScore("huge", 0.90, 900_000, (0.99, 0.81)),
]


def test_front_keeps_models_no_other_beats_on_both_axes():
    # bloated is beaten by small (fewer params, more accurate); huge ties big on accuracy with more params
    assert pareto_front(MODELS) == ["tiny", "small", "big"]


def test_front_for_selected_classes_uses_the_mean_per_class_accuracy():
    assert pareto_front(MODELS, classes=[0]) == ["tiny", "bloated", "huge"]
    assert pareto_front(MODELS, classes=[1]) == ["tiny", "small", "big"]
    # good overall, poor on classes 0 and 1: off the front of their mean
    pair = [ModelScore("broad", 0.9, 10, (0.2, 0.4)), ModelScore("narrow", 0.5, 5, (0.6, 0.6))]
    assert pareto_front(pair) == ["narrow", "broad"]
    assert pareto_front(pair, classes=[0, 1]) == ["narrow"]


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
