"""Nearest neighbours of a model, structurally (OTMANN) or behaviourally (prediction distance)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
