"""Distances cached in the store's table and extended incrementally; the prediction distance."""

from __future__ import annotations

import numpy as np
import pytest

from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.model import Arg, Layer, ModelSpec
from remapdsl.space import otmann
from remapdsl.space.distance_cache import ComputePairs, DistanceCache, Pair, PairValue, predictions_compute
from remapdsl.space.neighbours import nearest
from remapdsl.space.prediction_distance import (
    PredictionError,
    prediction_distance_matrix,
    prediction_distances_to,
)
from remapdsl.store.db import Store
from remapdsl.store.distances import DistanceTable


@pytest.fixture
def store() -> Store:
    return Store.in_memory()


class Counting:
    """A distance callback that records the pairs it is asked for; |a − b| on numeric keys."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, pairs: list[tuple[str, str]]) -> list[PairValue]:
        self.asked += pairs
        return [PairValue(abs(float(a) - float(b)), lp=10 * abs(float(a) - float(b))) for a, b in pairs]


def test_matrix_is_computed_once_then_read(store):
    compute = Counting()
    cache = DistanceCache(DistanceTable(store))
    keys = ["1", "4", "9"]
    m = cache.get_matrix("structural", keys, compute)
    assert m.tolist() == [[0, 3, 8], [3, 0, 5], [8, 5, 0]]
    assert sorted(compute.asked) == [("1", "4"), ("1", "9"), ("4", "9")]
    rows = store.conn.execute("SELECT a, b, lp, value FROM distances ORDER BY a, b").fetchall()
    assert rows == [("1", "4", 30.0, 3.0), ("1", "9", 80.0, 8.0), ("4", "9", 50.0, 5.0)]
    compute.asked.clear()
    again = cache.get_matrix("structural", list(reversed(keys)), compute, measure="lp")
    assert compute.asked == []
    assert again.tolist() == [[0, 50, 80], [50, 0, 30], [80, 30, 0]]


def test_adding_one_key_costs_n_distances(store):
    compute = Counting()
    cache = DistanceCache(DistanceTable(store))
    keys = [str(i) for i in range(30)]
    cache.get_matrix("structural", keys, compute)
    compute.asked.clear()
    m = cache.get_matrix("structural", [*keys, "100"], compute)
    assert len(compute.asked) == 30 and all("100" in pair for pair in compute.asked)
    assert m[-1, :-1].tolist() == [100.0 - i for i in range(30)]
    compute.asked.clear()
    row = cache.get_row("structural", "200", keys, compute)
    assert len(compute.asked) == 30 and row.tolist() == [200.0 - i for i in range(30)]


def test_spaces_are_separate(store):
    cache = DistanceCache(DistanceTable(store))
    cache.get_matrix("structural", ["1", "2"], Counting())
    compute = Counting()
    cache.get_matrix("predictions", ["1", "2"], compute)
    assert compute.asked == [("1", "2")]
    with pytest.raises(ValueError, match="unknown distance space 'shapes'"):
        cache.get_matrix("shapes", ["1", "2"], Counting())


def test_a_repeated_key_is_at_distance_zero_from_itself(store):
    m = DistanceCache(DistanceTable(store)).get_matrix("structural", ["3", "5", "3"], Counting())
    assert m.tolist() == [[0, 2, 0], [2, 0, 2], [0, 2, 0]]


def test_writes_happen_in_one_transaction_and_leave_none_open(store):
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    DistanceCache(DistanceTable(store)).get_matrix("structural", ["1", "2", "3"], Counting())
    assert not store.conn.in_transaction
    writes = [s for s in statements if s.startswith(("BEGIN", "COMMIT", "INSERT"))]
    assert writes[0] == "BEGIN IMMEDIATE" and writes[-1] == "COMMIT" and len(writes) == 5


def test_a_failing_callback_stores_nothing(store):
    def broken(pairs: list[tuple[str, str]]) -> list[PairValue]:
        raise RuntimeError("solver failed")

    with pytest.raises(RuntimeError):
        DistanceCache(DistanceTable(store)).get_matrix("structural", ["1", "2"], broken)
    assert store.conn.execute("SELECT COUNT(*) FROM distances").fetchone() == (0,)


def test_forget_drops_every_pair_of_a_key(store):
    cache = DistanceCache(DistanceTable(store))
    cache.get_matrix("structural", ["1", "2", "3"], Counting())
    cache.forget("structural", "2")
    assert store.conn.execute("SELECT a, b FROM distances").fetchall() == [("1", "3")]


def test_many_keys_are_read_in_chunks(store):
    cache = DistanceCache(DistanceTable(store))
    keys = [str(i) for i in range(1200)]
    cache.store("structural", {("0", k): PairValue(1.0) for k in keys[1:]})
    found = cache.lookup("structural", [(k, "0") for k in keys[1:]] + [("5", "6")])
    assert len(found) == 1199


def test_lp_is_required_for_the_lp_measure(store):
    cache = DistanceCache(DistanceTable(store))
    cache.store("predictions", {("1", "2"): PairValue(0.5)})
    with pytest.raises(ValueError, match="no raw transport cost"):
        cache.get_matrix("predictions", ["1", "2"], Counting(), measure="lp")


# --- the two spaces' callbacks -------------------------------------------------------------------


def _model(*lines: str) -> ModelSpec:
    layers = []
    for line in lines:
        kind, *values = line.split()
        args = tuple(Arg(LAYER_TYPES[kind].positional.name, int(v), positional=True) for v in values)
        layers.append(Layer(kind, args))
    return ModelSpec("m", tuple(layers))


def structural_compute(profiles: dict[str, otmann.OtmannProfile]) -> ComputePairs:
    def compute(pairs: list[Pair]) -> list[PairValue]:
        return [PairValue(d.emd, d.lp) for d in otmann.pair_distances(profiles, pairs, 1)]

    return compute


def test_structural_distances_store_emd_as_value_and_lp(store):
    profiles = {k: otmann.profile(_model(*m)) for k, m in {
        "h1": ("conv2d 16", "flatten", "dense 10"), "h2": ("conv2d 32", "flatten", "dense 10"),
        "h3": ("dense 64", "relu", "dense 10")}.items()}
    cache = DistanceCache(DistanceTable(store))
    m = cache.get_matrix("structural", list(profiles), structural_compute(profiles))
    lp = cache.get_matrix("structural", list(profiles), structural_compute({}), measure="lp")
    d = otmann.distance(profiles["h1"], profiles["h2"])
    assert m[0, 1] == pytest.approx(d.emd) and lp[0, 1] == pytest.approx(d.lp) == 176.0
    closest = nearest(list(profiles), m[0], k=1, exclude=["h1"])
    assert closest[0].key == "h2" and closest[0].distance == pytest.approx(m[0, 1])


def test_predictions_callback_and_neighbours(store):
    preds = {"7": [0, 1, 2, 3], "8": [0, 1, 2, 0], "9": [1, 0, 2, 0]}
    cache = DistanceCache(DistanceTable(store))
    m = cache.get_matrix("predictions", list(preds), predictions_compute(preds))
    assert m.tolist() == [[0, 0.25, 0.75], [0.25, 0, 0.5], [0.75, 0.5, 0]]
    row = cache.get_row("predictions", "10", list(preds), predictions_compute({**preds, "10": [0, 1, 2, 3]}))
    assert row.tolist() == [0, 0.25, 0.75]
    assert [n.key for n in nearest(list(preds), m[2], k=2, exclude=["9"])] == ["8", "7"]


# --- the prediction distance itself --------------------------------------------------------------


def prediction_distance(a, b, truth=None, classes=None) -> float:
    return float(prediction_distances_to(a, [b], truth, classes)[0])


def test_prediction_distance_is_the_normalised_hamming_distance():
    assert prediction_distance([0, 1, 2, 3], [0, 1, 0, 0]) == 0.5
    assert prediction_distance([4, 4], [4, 4]) == 0.0


def test_prediction_distance_restricted_to_classes():
    truth = [0, 0, 1, 1, 2]
    a, b = [0, 1, 1, 1, 2], [0, 0, 0, 1, 0]
    assert prediction_distance(a, b, truth, classes=[0]) == 0.5
    assert prediction_distance(a, b, truth, classes=[1, 2]) == pytest.approx(2 / 3)
    m = prediction_distance_matrix([a, b, a], truth, classes=[1, 2])
    assert m[0, 1] == pytest.approx(2 / 3) and m[0, 2] == 0.0
    assert prediction_distances_to(a, [b, a], truth, classes=[0]).tolist() == [0.5, 0.0]


def test_prediction_matrix_matches_pairs():
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 10, size=(25, 200))
    m = prediction_distance_matrix(preds)
    for i, j in [(0, 1), (3, 17), (24, 5)]:
        assert m[i, j] == m[j, i] == np.mean(preds[i] != preds[j])
    assert not np.diag(m).any()


@pytest.mark.parametrize("call, message", [
    (lambda: prediction_distance([0, 1], [0, 1, 2]), "differ in length"),
    (lambda: prediction_distance([0, 1], [0, 1], classes=[1]), "needs the true labels"),
    (lambda: prediction_distance([0, 1], [0, 1], [0, 0], classes=[3]), "no validation example belongs"),
    (lambda: prediction_distance_matrix([[0, 1], [1]]), "differ in length"),
    (lambda: prediction_distance([], []), "no validation predictions"),
])
def test_incomparable_predictions_are_refused(call, message):
    with pytest.raises(PredictionError, match=message):
        call()
