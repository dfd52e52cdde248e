"""Layouts of the model space from a matrix of pairwise distances.

* `embed`: metric MDS on the distance matrix itself (precomputed dissimilarities, never rows of it
  as feature vectors): classical MDS (Torgerson: the top eigenvectors of ``B = −½ J D⊙D J``), then
  optionally SMACOF iterations that lower the raw stress ``Σ_{i<j} (dᵢⱼ − ‖xᵢ − xⱼ‖)²``.
* `place`: the out-of-sample embedding of a new model from its distances ``d`` to the embedded ones,
  which stay where they are. Gower's formula, the linear part of Trosset & Priebe's criterion,

      y = c + (XᵀX)⁻¹ Xᵀ b,   bᵢ = −½ (dᵢ² − rᵢ − mean(d²) + g)

  with ``X`` the centred layout, ``c`` its centre, ``rᵢ`` the row means of ``D⊙D`` and ``g`` its grand
  mean; it puts an embedded model back exactly on its classical-MDS position. For a SMACOF layout the
  point is then moved by single-point Guttman updates to lower its own stress.
* `align`: orthogonal Procrustes (rotation or reflection, and translation; no scaling), so that an
  explicit re-layout keeps the orientation of the previous one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh


class ProjectionError(ValueError):
    """A distance matrix or vector that cannot be embedded; the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class Layout:
    """Positions of models (by key) and what out-of-sample placement needs of the matrix they came from."""

    keys: tuple[str, ...]
    coords: np.ndarray  # (n, dim)
    row_means: np.ndarray  # (n,) row means of the squared distances
    grand_mean: float
    refined: bool  # True if SMACOF moved the points off their classical positions

    def position(self, key: str) -> np.ndarray:
        try:
            return self.coords[self.keys.index(key)]
        except ValueError:
            raise KeyError(f"'{key}' is not in the layout") from None

    def as_dict(self) -> dict[str, tuple[float, ...]]:
        return {k: tuple(float(v) for v in row) for k, row in zip(self.keys, self.coords, strict=True)}

    def with_point(self, key: str, point: np.ndarray, distances: np.ndarray) -> Layout:
        """This layout plus one placed model; the existing positions are unchanged."""
        d2 = np.asarray(distances, dtype=np.float64) ** 2
        n = len(self.keys)
        # keep the squared-distance statistics those of the grown matrix, for the next placement
        row_means = np.append((self.row_means * n + d2) / (n + 1), d2.sum() / (n + 1))
        grand = (self.grand_mean * n * n + 2 * d2.sum()) / ((n + 1) ** 2)
        return Layout((*self.keys, key), np.vstack((self.coords, point)), row_means, grand, self.refined)


def check_matrix(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ProjectionError(f"a distance matrix must be square; found shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ProjectionError("the distance matrix holds missing or infinite values")
    if np.any(d < 0):
        raise ProjectionError("the distance matrix holds negative values")
    scale = max(float(np.abs(d).max(initial=0.0)), 1.0)
    if not np.allclose(d, d.T, rtol=1e-9, atol=1e-9 * scale):
        raise ProjectionError("the distance matrix is not symmetric")
    return (d + d.T) / 2


def classical_mds(d: np.ndarray, dim: int = 2) -> np.ndarray:
    """Torgerson's classical MDS of a distance matrix: (n, dim) coordinates centred at the origin."""
    d = check_matrix(d)
    n = d.shape[0]
    if n == 0:
        return np.zeros((0, dim))
    b = _double_centre(d ** 2)
    k = min(dim, n)
    values, vectors = eigh(b, subset_by_index=[n - k, n - 1])
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    coords = np.zeros((n, dim))
    coords[:, :k] = vectors * np.sqrt(values)
    # a fixed sign per axis (largest loading positive), so equal inputs give equal pictures
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(dim)])
    signs[signs == 0] = 1.0
    return coords * signs


def _double_centre(d2: np.ndarray) -> np.ndarray:
    row = d2.mean(axis=1)
    return -0.5 * (d2 - row[:, None] - row[None, :] + d2.mean())


def stress(d: np.ndarray, coords: np.ndarray) -> float:
    """Normalised stress: sqrt(Σ (dᵢⱼ − ‖xᵢ − xⱼ‖)² / Σ dᵢⱼ²); 0 is a perfect fit."""
    d = np.asarray(d, dtype=np.float64)
    fitted = _pairwise(coords)
    denominator = float((d ** 2).sum())
    return 0.0 if denominator == 0 else float(np.sqrt(((d - fitted) ** 2).sum() / denominator))


def _pairwise(x: np.ndarray) -> np.ndarray:
    # axis by axis: exact (no cancellation as in |a|² + |b|² − 2ab) and fast for the few axes of a layout
    out = np.zeros((x.shape[0], x.shape[0]))
    for axis in x.T:
        diff = axis[:, None] - axis[None, :]
        diff *= diff
        out += diff
    return np.sqrt(out, out=out)


def smacof(d: np.ndarray, init: np.ndarray, max_iter: int = 100, tolerance: float = 1e-5) -> np.ndarray:
    """SMACOF (Guttman transform) iterations from `init`, until the stress improves by less than `tolerance`."""
    d = check_matrix(d)
    n = d.shape[0]
    x = np.array(init, dtype=np.float64)
    if n < 2:
        return x
    previous = np.inf
    ratio = np.empty_like(d)
    for _ in range(max_iter):
        fitted = _pairwise(x)
        residual = d - fitted
        raw = float(np.einsum("ij,ij->", residual, residual)) / 2
        if np.isfinite(previous) and previous - raw < tolerance * previous:
            break
        previous = raw
        ratio.fill(0.0)
        np.divide(d, fitted, out=ratio, where=fitted > 0)
        np.fill_diagonal(ratio, 0.0)
        # x ← B(x) x / n with B = diag(row sums of ratio) − ratio
        x = (ratio.sum(axis=1)[:, None] * x - ratio @ x) / n
    return x


def embed(keys: Sequence[str], d: np.ndarray, dim: int = 2, refine: int = 0,
          previous: Layout | None = None) -> Layout:
    """Lay out the models `keys` from their distance matrix `d`.

    `refine` caps the SMACOF iterations after classical MDS (0: classical only). With `previous`,
    the result is rotated/reflected and shifted onto it over the models both share.
    """
    d = check_matrix(d)
    if len(keys) != d.shape[0]:
        raise ProjectionError(f"{len(keys)} keys for a {d.shape[0]}x{d.shape[0]} distance matrix")
    if len(set(keys)) != len(keys):
        raise ProjectionError("the keys of a layout must be distinct")
    coords = classical_mds(d, dim)
    if refine > 0:
        coords = smacof(d, coords, max_iter=refine)
    d2 = d ** 2
    n = d.shape[0]
    row_means = d2.mean(axis=1) if n else np.zeros(0)
    grand = float(d2.mean()) if n else 0.0
    layout = Layout(tuple(keys), coords, row_means, grand, refine > 0)
    return align_to(layout, previous) if previous is not None else layout


def place(layout: Layout, distances: Sequence[float] | np.ndarray, refine: bool | None = None,
          max_iter: int = 50) -> np.ndarray:
    """Position of a new model from its distances to the models of `layout`, which do not move.

    `refine` (default: whether the layout itself was SMACOF-refined) lowers the point's stress
    against the layout after Gower's closed form.
    """
    d = np.asarray(distances, dtype=np.float64)
    x = layout.coords
    n = x.shape[0]
    if d.shape != (n,):
        raise ProjectionError(f"expected {n} distances, one per model in the layout; found {d.size}")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ProjectionError("distances to place a model must be finite and non-negative")
    if n == 0:
        raise ProjectionError("cannot place a model in an empty layout")
    centre = x.mean(axis=0)
    xc = x - centre
    d2 = d ** 2
    b = -0.5 * (d2 - layout.row_means - d2.mean() + layout.grand_mean)
    y = centre + np.linalg.lstsq(xc, b, rcond=None)[0]
    if layout.refined if refine is None else refine:
        y = _refine_point(x, d, y, max_iter)
    return y


def _refine_point(x: np.ndarray, d: np.ndarray, y: np.ndarray, max_iter: int) -> np.ndarray:
    """Single-point SMACOF: y ← mean of xᵢ + dᵢ (y − xᵢ)/‖y − xᵢ‖, which never raises the point's stress."""
    for _ in range(max_iter):
        diff = y - x
        norm = np.linalg.norm(diff, axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        new = (x + (d / safe)[:, None] * diff * (norm > 0)[:, None]).mean(axis=0)
        if np.linalg.norm(new - y) <= 1e-9 * (1.0 + np.linalg.norm(y)):
            return new
        y = new
    return y


def procrustes(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation/reflection R and centres (cs, ct) minimising ‖(source − cs) R + ct − target‖."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    cs, ct = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
    return u @ vt, cs, ct


def align(coords: np.ndarray, reference: Mapping[str, np.ndarray] | Layout, keys: Sequence[str]) -> np.ndarray:
    """`coords` (rows for `keys`) rotated/reflected and shifted onto `reference` over their shared keys."""
    ref = reference.as_dict() if isinstance(reference, Layout) else reference
    shared = [i for i, k in enumerate(keys) if k in ref]
    if not shared:
        return np.asarray(coords, dtype=np.float64)
    source = np.asarray(coords, dtype=np.float64)
    target = np.array([ref[keys[i]] for i in shared], dtype=np.float64)
    if len(shared) == 1:  # one point fixes only the translation
        return source + (target[0] - source[shared[0]])
    rotation, cs, ct = procrustes(source[shared], target)
    return (source - cs) @ rotation + ct


def align_to(layout: Layout, previous: Layout) -> Layout:
    """`layout` turned to keep the orientation of `previous` (distances between points unchanged)."""
    coords = align(layout.coords, previous, layout.keys)
    return Layout(layout.keys, coords, layout.row_means, layout.grand_mean, layout.refined)
