"""Landmark MDS: a large population laid out from n x L distances, and new models placed among the landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from remapdsl.space.landmarks import landmark_mds, maxmin, place_all
from remapdsl.space.model_space import ModelSpace, RunPredictions
from remapdsl.space.projection import classical_mds, embed, stress
from remapdsl.store.db import Store
from tests.space.test_model_space import pairwise, population, solves  # noqa: F401


def euclidean_rows(points: np.ndarray):
    asked: list[int] = []

    def row(i: int) -> np.ndarray:
        asked.append(i)
        return np.linalg.norm(points - points[i], axis=1)

    return row, asked


def test_points_of_the_plane_are_laid_out_exactly_from_a_few_rows():
    points = np.random.default_rng(1).normal(size=(300, 2)) * [4.0, 1.0]
    row, asked = euclidean_rows(points)
    laid = landmark_mds([f"k{i:03d}" for i in range(300)], row, 10)
    assert len(asked) == 10 == len(set(asked)) and laid.landmarks.tolist() == asked
    fitted = np.sqrt(((laid.coords[:, None] - laid.coords[None]) ** 2).sum(axis=2))
    truth = np.sqrt(((points[:, None] - points[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(fitted, truth, atol=1e-8)
    assert laid.stress == pytest.approx(0.0, abs=1e-9)
    assert laid.landmark_distances.shape == (10, 10) and laid.reference.keys == tuple(f"k{i:03d}" for i in asked)


def test_maxmin_takes_the_farthest_model_next_and_stops_at_duplicates():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [5.0, 5.0], [1.0, 0.0]])
    row, _ = euclidean_rows(points)
    chosen, rows = maxmin(5, 5, row, start=0)
    assert chosen.tolist()[:3] == [0, 2, 3] and rows.shape == (len(chosen), 5)
    same, _ = euclidean_rows(np.zeros((4, 2)))
    assert maxmin(4, 3, same)[0].tolist() == [0]  # all at one point: one landmark is all there is
    with pytest.raises(ValueError, match="holds values"):
        maxmin(3, 2, lambda i: np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="expected 3"):
        maxmin(3, 2, lambda i: np.zeros(2))


def test_placing_many_at_once_is_placing_each_by_gower():
    from remapdsl.space.projection import place

    points = np.random.default_rng(2).normal(size=(30, 3))
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(axis=2))
    reference = embed([str(i) for i in range(20)], d[:20, :20])
    together = place_all(reference, d[:20, 20:])
    for j in range(10):
        np.testing.assert_allclose(together[j], place(reference, d[:20, 20 + j]), atol=1e-9)


@pytest.mark.slow
def test_a_large_population_costs_n_times_l_distances_and_is_close_to_full_mds(tmp_path, solves):  # noqa: F811
    models = population(60)
    store = Store(tmp_path / "remap.db")
    space = ModelSpace(store, workers=1, landmarks=12, landmark_threshold=40)
    members = space.structural(models)
    laid = space.layout(members)
    assert set(laid.relaid) == set(models)
    assert solves[0] <= 12 * 60  # rows of distances from the landmarks, not 60 * 59 / 2
    stored = space.layouts.positions("structural", "emd")
    assert len(stored) == 60 and sum(p.landmark for p in stored) == 12
    # only the landmarks' distances among themselves are kept
    assert store.conn.execute("SELECT COUNT(*) FROM distances").fetchone()[0] == 12 * 11 // 2
    # the picture is about as faithful as MDS of the whole matrix
    whole = ModelSpace(workers=1)
    keys, full = whole.matrix(whole.structural(models))
    names = list(models)
    order = [members.keys[n] for n in names]
    d = full[np.ix_([keys.index(k) for k in order], [keys.index(k) for k in order])]
    mine = stress(d, np.array([laid.positions[n] for n in names]))
    best = stress(d, classical_mds(d))
    assert mine < 1.5 * best + 0.05

    # a new model is placed among the landmarks: 12 distances, nothing else moves
    extra = population(61)
    name, model = "m60", extra["m60"]
    before = solves[0]
    grown = space.layout(space.structural({**models, name: model}))
    assert grown.placed == (name,) and solves[0] - before <= 12
    assert all(grown.positions[n] == laid.positions[n] for n in models)
    # and so in another process, which finds the landmarks in the store
    again = ModelSpace(Store(tmp_path / "remap.db"), workers=1, landmarks=12, landmark_threshold=40)
    more = population(62)
    before = solves[0]
    third = again.layout(again.structural({**models, name: model, "m61": more["m61"]}))
    assert third.placed == ("m61",) and solves[0] - before <= 12
    assert third.positions[name] == grown.positions[name]


def test_a_layout_grown_past_the_threshold_without_landmarks_gets_them(tmp_path, solves):  # noqa: F811
    models = population(45)
    first = dict(list(models.items())[:30])
    space = ModelSpace(Store(tmp_path / "remap.db"), workers=1)
    space.layout(space.structural(first))
    for name in list(models)[30:]:
        space.layout(space.structural({**first, name: models[name]}))
        first[name] = models[name]
    assert not any(p.landmark for p in space.layouts.positions("structural", "emd"))
    later = ModelSpace(Store(tmp_path / "remap.db"), workers=1, landmarks=8, landmark_threshold=40)
    extra = population(46)
    placed = later.layout(later.structural({**models, "m45": extra["m45"]}))
    assert placed.placed == ("m45",)
    assert sum(p.landmark for p in later.layouts.positions("structural", "emd")) == 8


def test_the_predictions_space_is_laid_out_by_landmarks_too():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 10, 200)
    runs = {}
    for i in range(80):
        wrong = rng.random(200) < rng.uniform(0.05, 0.6)
        runs[f"r{i}"] = RunPredictions(i + 1, np.where(wrong, rng.integers(0, 10, 200), truth))
    space = ModelSpace(workers=1, landmarks=10, landmark_threshold=50)
    members = space.predictions(runs)
    laid = space.layout(members)
    assert set(laid.relaid) == set(runs)
    assert sum(p.landmark for p in space.layouts.positions("predictions", "hamming")) == 10
    # the picture follows the distances about as well as MDS of the whole matrix does
    whole = ModelSpace(workers=1)
    keys, full = whole.matrix(whole.predictions(runs))
    names = [f"r{i}" for i in range(80)]
    fitted = pairwise(laid.positions, names)
    d = full[np.ix_([keys.index(members.keys[n]) for n in names], [keys.index(members.keys[n]) for n in names])]
    upper = np.triu_indices(80, 1)
    full_mds = classical_mds(d)
    best = np.sqrt(((full_mds[:, None] - full_mds[None]) ** 2).sum(axis=2))
    assert np.corrcoef(fitted[upper], d[upper])[0, 1] > np.corrcoef(best[upper], d[upper])[0, 1] - 0.1


def test_too_few_landmarks_are_refused():
    with pytest.raises(ValueError, match="at least 3 landmarks"):
        ModelSpace(landmarks=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_whole_rows_equal_the_pairs_solved_one_by_one(monkeypatch: pytest.MonkeyPatch, workers: int):
    from remapdsl.space import otmann

    profiles = [otmann.profile(m) for m in population(40).values()]
    monkeypatch.setattr(otmann, "_PARALLEL_MIN_ROW", 0)  # the worker processes, even for a small set
    batch = otmann._Batch(profiles)
    with otmann.RowPool(profiles, workers) as pool:
        for i in (0, 17, 39):
            row, expected = pool.row(i), batch.row(i, 0, 40)  # the pair-by-pair reference
            assert row.emd.tolist() == [0.0 if j == i else d.emd for j, d in enumerate(expected)]
            assert row.lp.tolist() == [0.0 if j == i else d.lp for j, d in enumerate(expected)]
    with pytest.raises(IndexError):
        otmann.RowPool(profiles, 1).row(40)
