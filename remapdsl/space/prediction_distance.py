"""Prediction distance: how differently two trained models classify the same validation examples.

    d(a, b) = |{i ∈ S : ŷᵃᵢ ≠ ŷᵇᵢ}| / |S|

the normalised Hamming distance between the predicted classes, over the validation examples S (all of
them, or only those whose true class is among chosen classes). Both models must have been evaluated on
the same data and split, so that example i is the same image for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PredictionError(ValueError):
    """Predictions that cannot be compared; the message says why."""


def example_mask(true_labels: Sequence[int] | np.ndarray | None, n: int,
                 classes: Sequence[int] | None = None) -> np.ndarray:
    """Which of the n validation examples count: all, or those whose true class is in `classes`."""
    if classes is None:
        return np.ones(n, dtype=bool)
    if true_labels is None:
        raise PredictionError("restricting to classes needs the true labels of the validation examples")
    labels = np.asarray(true_labels)
    if labels.shape != (n,):
        raise PredictionError(f"expected {n} true labels, one per validation example; found {labels.size}")
    mask = np.isin(labels, np.asarray(list(classes)))
    if not mask.any():
        raise PredictionError(f"no validation example belongs to the classes {', '.join(map(str, classes))}")
    return mask


def _stack(predictions: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
    lengths = {len(p) for p in predictions}
    if len(lengths) > 1:
        raise PredictionError(f"predictions differ in length ({', '.join(map(str, sorted(lengths)))} examples); "
                              "all models must be evaluated on the same validation split")
    if lengths == {0}:
        raise PredictionError("no validation predictions to compare")
    return np.asarray(predictions, dtype=np.int64).reshape(len(predictions), -1)


def prediction_distance_matrix(predictions: Sequence[Sequence[int] | np.ndarray],
                               true_labels: Sequence[int] | np.ndarray | None = None,
                               classes: Sequence[int] | None = None) -> np.ndarray:
    """(n, n) prediction distances between n models, symmetric with a zero diagonal."""
    if len(predictions) == 0:
        return np.zeros((0, 0))
    p = _stack(predictions)
    return _pairwise(p, p, example_mask(true_labels, p.shape[1], classes), symmetric=True)


def prediction_distances_to(target: Sequence[int] | np.ndarray, predictions: Sequence[Sequence[int] | np.ndarray],
                            true_labels: Sequence[int] | np.ndarray | None = None,
                            classes: Sequence[int] | None = None) -> np.ndarray:
    """Distances from one model's predictions to each of `predictions`: n comparisons."""
    if len(predictions) == 0:
        return np.zeros(0)
    p = _stack([target, *predictions])
    return _pairwise(p[:1], p[1:], example_mask(true_labels, p.shape[1], classes), symmetric=False)[0]


def _pairwise(a: np.ndarray, b: np.ndarray, mask: np.ndarray, symmetric: bool) -> np.ndarray:
    a, b = a[:, mask], b[:, mask]
    if min(a.min(initial=0), b.min(initial=0)) < 0:
        raise PredictionError("predicted classes must be non-negative class indices")
    classes = np.union1d(np.unique(a), np.unique(b))
    # agreements counted class by class as matrix products of indicator matrices: BLAS speed with
    # memory bounded by one (models x examples) matrix; float32 counts are exact below 2**24 examples
    agree = np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
    for c in classes:
        agree += (a == c).astype(np.float32) @ (b == c).astype(np.float32).T
    out = 1.0 - agree.astype(np.float64) / a.shape[1]
    if symmetric:
        np.fill_diagonal(out, 0.0)
    return np.clip(out, 0.0, 1.0)
