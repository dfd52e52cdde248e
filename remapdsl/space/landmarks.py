"""Landmark MDS: the first layout of a large population from n x L distances instead of n²/2.

Classical MDS needs every pairwise distance: 50 million OTMANN problems for 10,000 models. Landmark MDS (de Silva
and Tenenbaum, 2004) lays out L landmark models by classical MDS on their L x L matrix and places every other
model out of sample from its distances to the landmarks, with the same formula that places a new model among
kept ones (Gower's, `projection.place`; the landmark MDS triangulation is the same linear map). The cost is L
rows of distances, n x L in all.

Landmarks are chosen by maxmin (farthest-point) sampling: the first is a given model, and each next one is the
model farthest from all landmarks chosen so far, so the landmarks spread over the whole space (outliers
included) and each row computed serves both the choice of the next landmark and the placement of the rest.

The functions here see models as indices 0..n-1 and distances through a row function (distances from model i
to all n models); `remapdsl.space.model_space` keys them, computes the rows, and keeps the positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from remapdsl.space.projection import Layout

# Above this many models, a first layout (or an explicit re-layout) is a landmark layout.
LANDMARK_THRESHOLD = 500
# Landmarks of such a layout: 100 rows of distances to every model.
DEFAULT_LANDMARKS = 100

# Distances from model i to each of the n models (0 at i), as a vector of length n.
RowFunction = Callable[[int], np.ndarray]


@dataclass(frozen=True, eq=False)
class LandmarkLayout:
    """Positions of n models laid out by landmark MDS."""

    coords: np.ndarray  # (n, dim), row i for model i
    landmarks: np.ndarray  # (L,) indices of the landmark models, in the order chosen
    landmark_distances: np.ndarray  # (L, L) their distance matrix (symmetric, zero diagonal)
    reference: Layout  # the landmarks' layout: what a model added later is placed among
    stress: float  # normalised stress over the n x L distances measured


def maxmin(n: int, count: int, row: RowFunction, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` landmarks of n models by farthest-point sampling from `start`, and their rows of distances
    ((L, n)). Fewer when the rest are duplicates (at distance 0 from a landmark). ValueError for a row of the
    wrong length or with values that are not finite and non-negative."""
    if n < 1:
        return np.zeros(0, dtype=np.intp), np.zeros((0, 0))
    if not 0 <= start < n:
        raise ValueError(f"the first landmark must be a model from 0 to {n - 1}; found {start}")
    count = max(1, min(count, n))
    chosen = [start]
    rows = [_checked(row(start), n, start)]
    nearest = rows[0].copy()
    while len(chosen) < count:
        nearest[chosen[-1]] = -1.0  # never chosen twice
        following = int(np.argmax(nearest))
        if nearest[following] <= 0.0:
            break  # every model left sits on a landmark
        chosen.append(following)
        rows.append(_checked(row(following), n, following))
        np.minimum(nearest, rows[-1], out=nearest)
    return np.array(chosen, dtype=np.intp), np.vstack(rows)


def _checked(values: np.ndarray, n: int, i: int) -> np.ndarray:
    d = np.asarray(values, dtype=np.float64).reshape(-1)
    if d.shape != (n,):
        raise ValueError(f"the row of distances from model {i} has {d.size} values; expected {n}")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"the row of distances from model {i} holds values that are not finite and non-negative")
    d = d.copy()
    d[i] = 0.0
    return d


def landmark_mds(keys: Sequence[str], row: RowFunction, count: int = DEFAULT_LANDMARKS, *, dim: int = 2,
                 refine: int = 0, start: int | None = None) -> LandmarkLayout:
    """Lay out the models `keys` by landmark MDS from `count` landmarks.

    `row(i)` gives the distances from model i to every model. The first landmark is `start` (default: the
    smallest key, so the same models give the same picture whatever their order). `refine` SMACOF iterations
    refine the landmarks' layout; the rest are placed by Gower's formula alone.
    """
    from remapdsl.space.projection import ProjectionError, embed  # scipy: the `distance` extra

    n = len(keys)
    if n == 0:
        raise ProjectionError("no models to lay out")
    first = min(range(n), key=keys.__getitem__) if start is None else start
    landmarks, rows = maxmin(n, count, row, first)
    block = rows[:, landmarks]
    block = (block + block.T) / 2  # a distance solved twice may differ in its last bits
    np.fill_diagonal(block, 0.0)
    base = embed([keys[i] for i in landmarks], block, dim=dim, refine=refine)
    coords = place_all(base, rows)
    coords[landmarks] = base.coords
    return LandmarkLayout(coords, landmarks, block, base, _stress(rows, coords, landmarks))


def place_all(reference: Layout, rows: np.ndarray) -> np.ndarray:
    """Gower's out-of-sample positions of many models at once from their distances to the models of
    `reference` (`rows`: (L, n), column j for model j): what `projection.place` gives each one, without its
    SMACOF step."""
    from remapdsl.space.projection import ProjectionError

    d = np.asarray(rows, dtype=np.float64)
    x = reference.coords
    if d.ndim != 2 or d.shape[0] != x.shape[0]:
        raise ProjectionError(f"expected distances to the {x.shape[0]} reference models; found shape {d.shape}")
    centre = x.mean(axis=0)
    d2 = d ** 2
    b = -0.5 * (d2 - reference.row_means[:, None] - d2.mean(axis=0)[None, :] + reference.grand_mean)
    solution = np.linalg.lstsq(x - centre, b, rcond=None)[0]  # (dim, n)
    out: np.ndarray = centre + solution.T
    return out


def _stress(rows: np.ndarray, coords: np.ndarray, landmarks: np.ndarray) -> float:
    """Normalised stress over the distances measured (every model against every landmark)."""
    fitted = np.sqrt(((coords[landmarks][:, None, :] - coords[None, :, :]) ** 2).sum(axis=2))
    denominator = float((rows ** 2).sum())
    return 0.0 if denominator == 0 else float(np.sqrt(((rows - fitted) ** 2).sum() / denominator))
