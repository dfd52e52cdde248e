"""Layouts: MDS on the distance matrix itself, out-of-sample placement, Procrustes alignment."""

from __future__ import annotations

import numpy as np
import pytest

from remapdsl.space import projection as pj
from remapdsl.space.neighbours import Neighbour, nearest


def euclidean(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))


@pytest.fixture
def cloud() -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 2)) * [3.0, 1.0]
    return [f"m{i}" for i in range(40)], points, euclidean(points)


def test_classical_mds_recovers_planar_distances_exactly(cloud):
    keys, _, d = cloud
    layout = pj.embed(keys, d)
    assert euclidean(layout.coords) == pytest.approx(d, abs=1e-9)
    assert pj.stress(d, layout.coords) < 1e-9


def test_mds_uses_the_matrix_as_dissimilarities_not_as_feature_rows():
    # three points on a line: 0 -- 1 -- 3; rows of D as features would not keep 1 between 0 and 3
    d = euclidean(np.array([[0.0], [1.0], [3.0]]))
    xs = pj.classical_mds(d, dim=2)
    assert euclidean(xs) == pytest.approx(d, abs=1e-9)


def test_re_embedding_an_existing_model_lands_on_its_own_position(cloud):
    keys, _, d = cloud
    layout = pj.embed(keys, d)
    for k in range(len(keys)):
        assert pj.place(layout, d[k]) == pytest.approx(layout.coords[k], abs=1e-9)


def test_re_embedding_holds_for_non_euclidean_distances():
    rng = np.random.default_rng(1)
    raw = rng.random((30, 30))
    d = (raw + raw.T)
    np.fill_diagonal(d, 0.0)
    layout = pj.embed([str(i) for i in range(30)], d)
    for k in range(30):
        assert pj.place(layout, d[k]) == pytest.approx(layout.coords[k], abs=1e-9)


def test_re_embedding_into_a_smacof_layout_lands_near_its_own_position():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(60, 4))
    d = euclidean(points)
    layout = pj.embed([str(i) for i in range(60)], d, refine=100)
    assert layout.refined
    span = np.ptp(layout.coords, axis=0).max()
    classical = pj.embed([str(i) for i in range(60)], d)
    assert pj.stress(d, layout.coords) < pj.stress(d, classical.coords)
    for k in range(60):
        assert np.linalg.norm(pj.place(layout, d[k]) - layout.coords[k]) < 0.05 * span


def test_a_new_model_is_placed_without_moving_the_others(cloud):
    keys, points, d = cloud
    layout = pj.embed(keys, d)
    before = layout.coords.copy()
    new = np.array([1.0, 0.5])
    distances = np.sqrt(((points - new) ** 2).sum(axis=1))
    y = pj.place(layout, distances)
    grown = layout.with_point("new", y, distances)
    assert np.array_equal(grown.coords[:-1], before)
    # in the layout's frame, its distances to the others are those it was given
    assert np.sqrt(((layout.coords - y) ** 2).sum(axis=1)) == pytest.approx(distances, abs=1e-8)
    # and a second placement into the grown layout still works
    again = pj.place(grown, np.append(distances, 0.0))
    assert again == pytest.approx(y, abs=1e-6)


def test_relayout_keeps_the_orientation_of_the_previous_one(cloud):
    keys, points, d = cloud
    first = pj.embed(keys, d)
    # a rotated, mirrored, shifted copy of the same layout comes back onto the first
    theta = 0.7
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.diag([1.0, -1.0])
    moved = pj.Layout(first.keys, first.coords @ turn + [5.0, -2.0], first.row_means, first.grand_mean, False)
    back = pj.align_to(moved, first)
    assert back.coords == pytest.approx(first.coords, abs=1e-9)
    # a re-layout with one more model keeps the shared ones where they were
    extra = np.vstack((points, [[0.3, 0.3]]))
    second = pj.embed([*keys, "new"], euclidean(extra), previous=first)
    assert second.coords[:-1] == pytest.approx(first.coords, abs=1e-6)
    assert euclidean(second.coords) == pytest.approx(euclidean(extra), abs=1e-9)


def test_small_layouts():
    assert pj.embed([], np.zeros((0, 0))).coords.shape == (0, 2)
    assert pj.embed(["a"], np.zeros((1, 1))).coords.tolist() == [[0.0, 0.0]]
    two = pj.embed(["a", "b"], np.array([[0.0, 4.0], [4.0, 0.0]]))
    assert np.linalg.norm(two.coords[0] - two.coords[1]) == pytest.approx(4.0)


@pytest.mark.parametrize("matrix, message", [
    (np.zeros((2, 3)), "must be square"),
    (np.array([[0.0, 1.0], [2.0, 0.0]]), "not symmetric"),
    (np.array([[0.0, np.nan], [np.nan, 0.0]]), "missing or infinite"),
    (np.array([[0.0, -1.0], [-1.0, 0.0]]), "negative"),
])
def test_bad_matrices_are_refused_with_a_reason(matrix, message):
    with pytest.raises(pj.ProjectionError, match=message):
        pj.embed(["a", "b"][: matrix.shape[0]], matrix)


def test_place_checks_the_distance_count(cloud):
    keys, _, d = cloud
    with pytest.raises(pj.ProjectionError, match="expected 40 distances"):
        pj.place(pj.embed(keys, d), d[0][:5])


def test_nearest_neighbours_break_ties_by_key_and_skip_the_model_itself():
    keys = ["a", "b", "c", "d"]
    m = np.array([[0, 2, 1, 1], [2, 0, 3, 4], [1, 3, 0, 5], [1, 4, 5, 0]], dtype=float)
    assert nearest(keys, m[0], k=2, exclude=["a"]) == [Neighbour("c", 1.0), Neighbour("d", 1.0)]
    assert [n.key for n in nearest(keys, m[0], k=10, exclude=["a"])] == ["c", "d", "b"]
    assert nearest(keys, m[1], k=1, exclude=["b"]) == [Neighbour("a", 2.0)]
    with pytest.raises(ValueError, match="4 keys but 3 distances"):
        nearest(keys, m[0][:3])
