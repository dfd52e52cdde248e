"""Nearest neighbours of a model, structurally (OTMANN) or behaviourally (prediction distance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.model import ModelSpec
from remapdsl.space import otmann
from remapdsl.space.prediction_distance import prediction_distances_to


@dataclass(frozen=True)
class Neighbour:
    key: str
    distance: float


def nearest(keys: Sequence[str], distances: Sequence[float] | np.ndarray, k: int = 5,
            exclude: Sequence[str] = ()) -> list[Neighbour]:
    """The k keys with the smallest distances (ties broken by key), leaving out `exclude`."""
    if k < 0:
        raise ValueError(f"k must be 0 or more; found {k}")
    values = np.asarray(distances, dtype=np.float64)
    if values.shape != (len(keys),):
        raise ValueError(f"{len(keys)} keys but {values.size} distances")
    skip = set(exclude)
    ranked = sorted((float(d), key) for key, d in zip(keys, values, strict=True) if key not in skip)
    return [Neighbour(key, d) for d, key in ranked[:k]]


def nearest_in_matrix(keys: Sequence[str], matrix: np.ndarray, key: str, k: int = 5) -> list[Neighbour]:
    """Neighbours of `key` read from a pairwise matrix whose rows and columns follow `keys`."""
    try:
        row = list(keys).index(key)
    except ValueError:
        raise KeyError(f"'{key}' is not among the models") from None
    return nearest(keys, np.asarray(matrix)[row], k, exclude=(key,))


def structural_neighbours(models: Mapping[str, ModelSpec | ModelInfo | otmann.OtmannProfile], key: str,
                          k: int = 5, measure: str = "emd") -> list[Neighbour]:
    """The k models structurally closest to `key` by OTMANN ('emd' normalised, or raw 'lp')."""
    if measure not in ("emd", "lp"):
        raise ValueError(f"measure must be 'emd' or 'lp'; found '{measure}'")
    if key not in models:
        raise KeyError(f"'{key}' is not among the models")
    profiles = {name: m if isinstance(m, otmann.OtmannProfile) else otmann.profile(m) for name, m in models.items()}
    others = [name for name in profiles if name != key]
    row = otmann.distances_to(profiles[key], [profiles[o] for o in others])
    return nearest(others, row.emd if measure == "emd" else row.lp, k)


def prediction_neighbours(predictions: Mapping[str, Sequence[int] | np.ndarray], key: str, k: int = 5,
                          true_labels: Sequence[int] | np.ndarray | None = None,
                          classes: Sequence[int] | None = None) -> list[Neighbour]:
    """The k models whose validation predictions agree most with those of `key`."""
    if key not in predictions:
        raise KeyError(f"'{key}' has no validation predictions")
    others = [name for name in predictions if name != key]
    row = prediction_distances_to(predictions[key], [predictions[o] for o in others], true_labels, classes)
    return nearest(others, row, k)
