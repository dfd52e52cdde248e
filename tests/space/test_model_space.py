"""The model space: keys, cached distances, neighbours, and layouts that keep their places in the store."""

from __future__ import annotations

import numpy as np
import pytest

from remapdsl.language.datasets import describe
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import DataSpec, ModelSpec
from remapdsl.language.parser import parse
from remapdsl.search.sampler import sample_models
from remapdsl.space import otmann
from remapdsl.space.distance_cache import PairValue
from remapdsl.space.model_space import Members, ModelSpace, RunPredictions, check_measure
from remapdsl.store.db import Store

FILE = """\
data digits

model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model renamed:   # small again, written differently
    conv2d   16   kernel=3   stride=1
    relu
    maxpool 2
    flatten
    dense 10

model wide:
    conv2d 32 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model mlp:
    flatten
    dense 64
    tanh
    dense 10
"""


def stored_layout(space: ModelSpace, name: str, measure: str | None = None) -> dict[str, tuple[float, float]]:
    """The positions the store holds for a space and measure, by key."""
    return {p.key: (p.x, p.y) for p in space.layouts.positions(name, check_measure(name, measure))}


def file_models() -> dict[str, ModelSpec]:
    return {m.name: m for m in parse(FILE).document.models}


def population(n: int, seed: int = 0) -> dict[str, ModelSpec]:
    """n sampled models with distinct architectures, named m0, m1, ..."""
    seen: dict[str, ModelSpec] = {}
    for model in sample_models(3 * n, describe(DataSpec("digits")), seed):
        seen.setdefault(architecture_hash(model), model)
    drawn = list(seen.values())[:n]
    assert len(drawn) == n
    return {f"m{i}": m for i, m in enumerate(drawn)}


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the transport problems solved in this process (one per distance)."""
    count = [0]
    solve = otmann._solve

    def counted(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
        count[0] += 1
        return solve(a, b, m)

    monkeypatch.setattr(otmann, "_solve", counted)
    return count


def planar(n: int, seed: int = 0) -> tuple[Members, ModelSpace, np.ndarray]:
    """Models whose cached distances are those of points in the plane (so MDS and Gower are exact)."""
    points = np.random.default_rng(seed).normal(size=(n, 2)) * [3.0, 1.0]
    space = ModelSpace(workers=1)
    store_planar(space, points)
    return Members("structural", {f"p{i}": f"k{i:03d}" for i in range(n)}), space, points


def store_planar(space: ModelSpace, points: np.ndarray) -> None:
    space.cache.store("structural", {
        (f"k{i:03d}", f"k{j:03d}"): PairValue(float(np.linalg.norm(points[i] - points[j])), 0.0)
        for i in range(len(points)) for j in range(i + 1, len(points))})


def pairwise(positions: dict[str, tuple[float, float]], names: list[str]) -> np.ndarray:
    x = np.array([positions[n] for n in names])
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))


# --- keys and distances ---------------------------------------------------------------------------


def test_structural_keys_are_architecture_hashes_whatever_the_names_and_formatting():
    models = file_models()
    members = ModelSpace().structural(models)
    assert members.keys["small"] == members.keys["renamed"] == architecture_hash(models["small"])
    assert len(members.distinct()) == 3 and not members.problems


def test_a_model_otmann_cannot_read_is_left_out_with_the_reason():
    models = {m.name: m for m in parse("model odd:\n    conv3d 16\n    dense 10\n").document.models}
    members = ModelSpace().structural({**file_models(), **models})
    assert "odd" not in members.keys and "unknown layer type 'conv3d'" in members.problems["odd"]
    with pytest.raises(KeyError, match="'odd' is left out"):
        members.key("odd")


def test_neighbours_name_another_name_of_the_same_architecture_first():
    space = ModelSpace()
    members = space.structural(file_models())
    found = space.neighbours(members, "small", k=3)
    assert [n.key for n in found] == ["renamed", "wide", "mlp"]
    assert found[0].distance == 0.0
    pair = space.pair(members, "small", "wide")
    assert found[1].distance == pytest.approx(pair.value)
    assert pair.lp == pytest.approx(otmann.distance(otmann.profile(file_models()["small"]),
                                                    otmann.profile(file_models()["wide"])).lp)
    lp = space.neighbours(members, "small", k=1, measure="lp")
    assert lp[0].key == "renamed" and space.neighbours(members, "mlp", k=1, measure="lp")[0].distance > 1


@pytest.mark.parametrize("n", [12, 40])  # 40: the row comes from the prepared profile set
def test_adding_one_model_to_n_cached_computes_n_distances(tmp_path, solves, n):
    models = population(n + 1)
    names = list(models)
    with Store(tmp_path / "remap.db") as store:
        space = ModelSpace(store, workers=1)
        space.matrix(space.structural({k: models[k] for k in names[:n]}))
        assert solves[0] == n * (n - 1) // 2
        solves[0] = 0
        members = space.structural(models)
        found = space.neighbours(members, names[-1], k=3)
        assert solves[0] == n and len(found) == 3
        space.neighbours(members, names[-1], k=3)
        space.matrix(members)
        assert solves[0] == n  # everything else was read from the store
        count = store.conn.execute("SELECT COUNT(*) FROM distances").fetchone()[0]
        assert count == (n + 1) * n // 2


def test_hover_sized_rows_match_the_pair_distances_before_and_after_an_edit(monkeypatch):
    models = population(41)
    edited = {**{n: models[n] for n in list(models)[:40]}, "m39": models["m40"]}  # one model rewritten
    prepared: list[int] = []
    original = otmann.ProfileSet
    monkeypatch.setattr(otmann, "ProfileSet", lambda profiles: prepared.append(len(profiles)) or original(profiles))
    space = ModelSpace(workers=1)
    for name, version in (("m7", edited | {"m39": models["m39"]}), ("m8", edited)):
        row = space.row(space.structural(version), name)
        profiles = [otmann.profile(version[n]) for n in row]
        direct = otmann.distances_to(otmann.profile(version[name]), profiles).emd
        assert list(row.values()) == pytest.approx(direct.tolist(), abs=1e-12)
    assert prepared == [40]  # prepared once: after the edit only the rewritten model is solved apart


def test_predictions_are_keyed_by_run():
    space = ModelSpace()
    members = space.predictions({"a": RunPredictions(7, np.array([0, 1, 2, 3])),
                                 "b": RunPredictions(8, np.array([0, 1, 2, 0])),
                                 "c": RunPredictions(9, np.array([1, 0, 2, 0]))})
    assert members.keys == {"a": "7", "b": "8", "c": "9"}
    assert [(n.key, n.distance) for n in space.neighbours(members, "c", k=2)] == [("b", 0.5), ("a", 0.75)]
    assert space.pair(members, "a", "b") == PairValue(0.25)
    with pytest.raises(ValueError, match="the predictions space has no measure 'lp'; expected hamming"):
        space.neighbours(members, "a", measure="lp")
    assert check_measure("structural", None) == "emd" and check_measure("predictions", None) == "hamming"


# --- layouts --------------------------------------------------------------------------------------


def test_the_first_layout_is_mds_and_is_stored(tmp_path):
    members, space, points = planar(20)
    result = space.layout(members)
    assert result.relaid == tuple(members.keys) and not result.kept and not result.placed
    names = list(members.keys)
    true = np.sqrt(((points[:, None] - points[None, :]) ** 2).sum(axis=2))
    assert pairwise(result.positions, names) == pytest.approx(true, abs=1e-9)
    assert result.stress is not None and result.stress < 1e-9
    stored = stored_layout(space, "structural")
    assert stored == {members.keys[n]: result.positions[n] for n in names}


def test_a_kept_model_does_not_move_and_a_new_one_is_placed_among_them():
    members, space, points = planar(21)
    first = Members("structural", {n: k for n, k in list(members.keys.items())[:20]})
    before = space.layout(first)
    after = space.layout(members)
    assert after.kept == tuple(first.keys) and after.placed == ("p20",) and not after.relaid
    assert all(after.positions[n] == before.positions[n] for n in first.keys)  # not a bit moved
    # the distances are planar: Gower puts the new model exactly where it belongs
    true = np.linalg.norm(points[:20] - points[20], axis=1)
    placed = np.array(after.positions["p20"])
    assert np.linalg.norm(np.array([before.positions[n] for n in first.keys]) - placed, axis=1) == \
        pytest.approx(true, abs=1e-9)
    assert after.stress is None  # no MDS ran
    assert space.layout(members).kept == tuple(members.keys)


def test_re_embedding_a_model_lands_on_its_own_position():
    members, space, _ = planar(25)
    laid = space.layout(members)
    space.store.conn.execute("DELETE FROM layouts WHERE key = ?", (members.keys["p7"],))
    again = ModelSpace(space.store).layout(members)  # another process: nothing in memory but the store
    assert again.placed == ("p7",)
    assert again.positions["p7"] == pytest.approx(laid.positions["p7"], abs=1e-9)


def test_re_embedding_real_distances_lands_near_its_own_position():
    models = population(30)
    space = ModelSpace(workers=1)
    members = space.structural(models)
    laid = space.layout(members)
    span = np.ptp(np.array(list(laid.positions.values())), axis=0).max()
    for name in ("m3", "m17"):
        space.store.conn.execute("DELETE FROM layouts WHERE key = ?", (members.keys[name],))
        again = ModelSpace(space.store).layout(members)
        assert again.placed == (name,)
        assert np.linalg.norm(np.subtract(again.positions[name], laid.positions[name])) < 0.1 * span


def test_an_explicit_relayout_keeps_the_orientation_by_procrustes():
    members, space, points = planar(20)
    space.layout(members)
    # the stored picture is turned and shifted, as an earlier layout in another orientation would be
    turn = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    for key, (x, y) in stored_layout(space, "structural").items():
        u, v = np.array([x, y]) @ turn + [5.0, -2.0]
        space.store.conn.execute("UPDATE layouts SET x = ?, y = ? WHERE key = ?", (u, v, key))
    turned = {n: stored_layout(space, "structural")[k] for n, k in members.keys.items()}
    space.store.conn.execute("INSERT INTO layouts(space, measure, key, x, y, refined, updated) "
                             "VALUES ('structural', 'emd', 'gone', 0, 0, 0, 0)")
    result = space.layout(members, relayout=True)
    assert result.relaid == tuple(members.keys)
    for name in members.keys:
        assert result.positions[name] == pytest.approx(turned[name], abs=1e-9)
    # without the stored layout, MDS would have drawn it in its own orientation
    plain = ModelSpace()
    store_planar(plain, points)
    unaligned = plain.layout(members)
    assert max(abs(unaligned.positions[n][0] - turned[n][0]) for n in members.keys) > 1
    assert "gone" not in stored_layout(space, "structural")  # the re-layout replaced the stored one


def test_a_relayout_brings_in_refinement_and_the_new_models():
    members, space, _ = planar(20)
    first = Members("structural", dict(list(members.keys.items())[:15]))
    space.layout(first)
    result = space.layout(members, relayout=True, refine=10)
    assert result.relaid == tuple(members.keys) and result.stress is not None
    assert space.store.conn.execute("SELECT MIN(refined) FROM layouts").fetchone() == (1,)


def test_a_new_model_next_to_too_few_laid_out_ones_still_leaves_them_where_they_were():
    members, space, points = planar(6)
    one = Members("structural", {"p0": members.keys["p0"]})
    alone = space.layout(one)
    assert alone.relaid == ("p0",) and alone.positions["p0"] == (0.0, 0.0)
    two = Members("structural", {"p0": members.keys["p0"], "p1": members.keys["p1"]})
    pair = space.layout(two)
    assert pair.kept == ("p0",) and pair.placed == ("p1",) and pair.positions["p0"] == (0.0, 0.0)
    assert np.linalg.norm(pair.positions["p1"]) == pytest.approx(np.linalg.norm(points[0] - points[1]))
    everything = space.layout(members)  # more new models than laid-out ones: MDS turned onto those two
    assert everything.kept == ("p0", "p1") and everything.positions["p1"] == pair.positions["p1"]
    assert pairwise(everything.positions, list(members.keys))[0] == pytest.approx(
        np.linalg.norm(points - points[0], axis=1), abs=1e-6)


def test_two_names_of_one_architecture_share_a_position():
    space = ModelSpace()
    result = space.layout(space.structural(file_models()))
    assert result.positions["small"] == result.positions["renamed"]
    assert len(stored_layout(space, "structural")) == 3


def test_layouts_persist_across_store_reopen_and_cost_no_distance(tmp_path, solves):
    models = population(15)
    with Store(tmp_path / "remap.db") as store:
        space = ModelSpace(store, workers=1)
        first = space.layout(space.structural(models), "lp")
    solves[0] = 0
    with Store(tmp_path / "remap.db") as store:
        space = ModelSpace(store, workers=1)
        again = space.layout(space.structural(models), "lp")
        assert again.kept == tuple(models) and again.positions == first.positions
        assert solves[0] == 0
        assert stored_layout(space, "structural", "emd") == {}  # each measure has its own layout
        grown = {**models, **{f"x{i}": m for i, m in enumerate(population(18, seed=1).values())
                              if architecture_hash(m) not in {architecture_hash(v) for v in models.values()}}}
        more = space.layout(space.structural(grown), "lp")
        assert set(more.placed) == set(grown) - set(models)
        assert all(more.positions[n] == first.positions[n] for n in models)


def test_the_layout_reference_survives_in_memory_for_the_next_model(monkeypatch):
    members, space, _ = planar(22)
    space.layout(Members("structural", dict(list(members.keys.items())[:20])))
    space.layout(Members("structural", dict(list(members.keys.items())[:21])))

    def unexpected(*args: object) -> None:
        raise AssertionError("the matrix was read again for its row means")

    monkeypatch.setattr(space.cache, "get_matrix", unexpected)
    assert space.layout(members).placed == ("p21",)


def test_predictions_layouts_are_kept_apart_from_structural_ones():
    space = ModelSpace()
    rng = np.random.default_rng(3)
    members = space.predictions({f"r{i}": RunPredictions(i, rng.integers(0, 3, 50)) for i in range(6)})
    result = space.layout(members)
    assert result.measure == "hamming" and len(result.positions) == 6
    assert set(stored_layout(space, "predictions")) == {str(i) for i in range(6)}
    assert stored_layout(space, "structural") == {}


def test_a_layer_text_seen_before_gives_its_key_without_hashing_again(monkeypatch):
    import remapdsl.space.model_space as model_space

    models = file_models()
    lines = FILE.splitlines()
    texts = {m.name: "\n".join(lines[m.range.start.line + 1:m.range.end.line + 1]) for m in models.values()}
    space = ModelSpace()
    plain = space.structural(models)
    assert space.structural(models, texts).keys == plain.keys
    hashed: list[str] = []
    monkeypatch.setattr(model_space, "architecture_hash", lambda spec: hashed.append(spec.name) or "x")
    assert space.structural(models, texts).keys == plain.keys and hashed == []
