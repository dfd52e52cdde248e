"""The interpretable projection and the Pareto front of accuracy against size.

Every trained model is a point (log10 parameters, validation accuracy). A model is on the Pareto front
when no other model is at least as accurate with at most as many parameters and strictly better in one
of the two. With selected classes, accuracy means the mean of the per-class accuracies of those classes,
so the front answers "small and good on these classes".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


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
