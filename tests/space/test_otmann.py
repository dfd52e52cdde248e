"""OTMANN, configured as REMAP computed it: profiles, hand-computed distances, properties, batches."""

from __future__ import annotations

import itertools

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remapdsl.language.analysis import analyze_model
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import describe
from remapdsl.language.model import Annotation, Arg, Comments, Layer, ModelSpec, Range
from remapdsl.space import otmann


def layer(line: str) -> Layer:
    """`conv2d 16 kernel=3` → Layer; the first bare value is the positional parameter."""
    kind, *words = line.split()
    args = []
    for word in words:
        name, _, text = word.rpartition("=")
        value: int | float | str = int(text) if text.isdigit() else float(text) if "." in text else text
        if name:
            args.append(Arg(name, value))
        else:
            args.append(Arg(LAYER_TYPES[kind].positional.name, value, positional=True))
    return Layer(kind, tuple(args))


def spec(*lines: str, name: str = "m") -> ModelSpec:
    return ModelSpec(name, tuple(layer(line) for line in lines))


def prof(*lines: str) -> otmann.OtmannProfile:
    return otmann.profile(spec(*lines))


SMALL = ("conv2d 16 kernel=3", "relu", "maxpool 2", "flatten", "dense 10")


# --- the profile ---------------------------------------------------------------------------------


def test_profile_chain_labels_and_masses_follow_remap():
    p = prof(*SMALL)
    assert p.labels == ("ip", "conv3", "relu", "pool2", "dense", "softmax", "op")
    # conv 1x16 (ip emits one channel), relu 16^2, pool 16 channels, dense 16x10 (not the flattened size)
    assert p.masses.tolist() == [100, 16, 256, 16, 160, 100, 100]


def test_frame_masses_are_a_tenth_of_the_layers_once_that_exceeds_100():
    p = prof("conv2d 128 kernel=5", "conv2d 128", "flatten", "dense 10")
    layers = 128 + 128 * 128 + 128 * 10
    assert p.masses[1:-2].sum() == layers
    assert p.masses[[0, -2, -1]].tolist() == pytest.approx([0.1 * layers] * 3)


def test_path_lengths_count_all_nodes_and_conv_nodes_to_ip_and_op():
    p = prof("conv2d 16", "relu", "conv2d 32 kernel=1", "flatten", "dense 10")
    # nodes: ip conv3 relu conv1 dense softmax op
    cols = {c: i for i, c in enumerate(otmann.PATH_COLUMNS)}
    for kind in otmann.PATH_TYPES:
        assert p.from_input[:, cols[f"all-{kind}"]].tolist() == [0, 1, 2, 3, 4, 5, 6]
        assert p.to_output[:, cols[f"all-{kind}"]].tolist() == [6, 5, 4, 3, 2, 1, 0]
        assert p.from_input[:, cols[f"conv-{kind}"]].tolist() == [0, 1, 1, 2, 2, 2, 2]
        assert p.to_output[:, cols[f"conv-{kind}"]].tolist() == [2, 2, 1, 1, 0, 0, 0]
        # REMAP's labels leave the pool and fc groups empty
        assert not p.from_input[:, cols[f"pool-{kind}"]].any()
        assert not p.to_output[:, cols[f"fc-{kind}"]].any()


def test_profile_of_an_analysed_model_equals_that_of_its_spec():
    m = spec(*SMALL)
    info = analyze_model(m, describe(None))
    assert otmann.profile(info) == otmann.profile(m)


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(otmann.OtmannError, match=r"model 'm', layer 2 \(conv3d\): unknown layer type 'conv3d'"):
        otmann.profile(ModelSpec("m", (layer("relu"), Layer("conv3d"), layer("dense 10"))))


def test_missing_parameter_is_a_clear_error():
    with pytest.raises(otmann.OtmannError, match=r"model 'm', layer 1 \(conv2d\): parameters cannot be read"):
        otmann.profile(ModelSpec("m", (Layer("conv2d"), layer("dense 10"))))


# --- hand-computed distances ---------------------------------------------------------------------


def test_more_filters_cost_the_unmatched_mass():
    # a: ip 100, conv3 16, dense 160, softmax 100, op 100 (476); b: conv 32, dense 320 (652).
    # Equal nodes match at cost 0; b's extra 16 + 160 comes from a's dummy at cost 1.
    d = otmann.distance(prof("conv2d 16", "flatten", "dense 10"), prof("conv2d 32", "flatten", "dense 10"))
    assert d.lp == pytest.approx(176.0)
    assert d.emd == pytest.approx(176.0 / (476 + 652))


def test_an_extra_layer_shifts_every_path_length():
    # a: ip dense softmax op (masses 100 10 100 100); b: ip relu dense softmax op (100 1 10 100 100).
    # Each same-label pair is one step apart towards ip or op: (3 columns x 1) / 12, halved = 0.125;
    # relu's unit of mass comes from a's dummy at cost 1: 0.125 x 310 + 1.
    d = otmann.distance(prof("dense 10"), prof("relu", "dense 10"))
    assert d.lp == pytest.approx(0.125 * 310 + 1)
    assert d.emd == pytest.approx((0.125 * 310 + 1) / (310 + 311))


@pytest.mark.parametrize("a, b, cost", [
    ("conv2d 16 kernel=3", "conv2d 16 kernel=5", 0.2),
    ("conv2d 16 kernel=1", "conv2d 16 kernel=5", 0.3),
    ("maxpool 2", "avgpool 3", 0.2),
    ("maxpool 2", "maxpool 5", 0.3),
])
def test_neighbouring_kernel_and_pool_sizes_cost_their_mismatch(a, b, cost):
    pa, pb = prof("conv2d 16", a, "flatten", "dense 10"), prof("conv2d 16", b, "flatten", "dense 10")
    moved = pa.masses[2]
    assert pa.masses.tolist() == pb.masses.tolist()
    assert otmann.distance(pa, pb).lp == pytest.approx(cost * moved)


@pytest.mark.parametrize("a, b, cost", [("tanh", "relu", 0.25), ("tanh", "sigmoid", 0.1), ("relu", "sigmoid", 0.25)])
def test_activation_mismatch_costs(a, b, cost):
    pa, pb = prof("dense 8", a, "dense 10"), prof("dense 8", b, "dense 10")
    assert otmann.distance(pa, pb).lp == pytest.approx(cost * 64)  # activation mass 8^2


def test_unmatchable_pairs_cost_the_large_constant_without_structure():
    c = otmann.cost_matrix(prof("conv2d 16", "flatten", "dense 10"), prof("dense 16", "dense 10"))
    # rows ip conv3 dense softmax op | dummy ; columns ip dense dense softmax op | dummy
    assert c[1, 1] == otmann.UNMATCHABLE_COST  # conv3 vs dense
    assert c[0, 3] == otmann.UNMATCHABLE_COST  # ip vs softmax
    assert c[-1, :-1].tolist() == [1.0] * 5 and c[:-1, -1].tolist() == [1.0] * 5 and c[-1, -1] == 0.0
    # a's dense (2 from ip, 1 conv behind it) vs b's last dense (2 from ip, no conv): 3 of 12 columns
    # differ by 1 backwards, none forwards → 0.25 / 2; vs b's first dense one step earlier: 0.375
    assert c[2, 2] == pytest.approx(0.125) and c[2, 1] == pytest.approx(0.375)


def test_channels_follow_the_chain_through_pass_through_layers():
    # dense after conv 8, pool, dropout: incoming count 8 (channels), not 8x4x4
    p = prof("conv2d 8", "maxpool 2", "dropout 0.5", "flatten", "dense 10")
    assert p.labels == ("ip", "conv3", "pool2", "dropout", "dense", "softmax", "op")
    assert p.masses[1:5].tolist() == [8, 8, 64, 80]


# --- what the profile ignores and what it sees ----------------------------------------------------


@pytest.mark.parametrize("other", [
    ("conv2d 16 kernel=3 stride=2 padding=valid", "relu", "maxpool 2", "flatten", "dense 10"),
    ("conv2d 16 kernel=3", "relu", "avgpool 2 stride=1", "flatten", "dense 10"),
    ("conv2d 16 kernel=3", "relu", "maxpool 2", "dense 10"),
])
def test_strides_padding_pool_kind_and_flatten_are_not_represented(other):
    assert otmann.distance(prof(*SMALL), prof(*other)) == otmann.OtmannDistance(0.0, 0.0)


def test_dropout_rates_are_not_represented():
    low, high = prof("dense 8", "dropout 0.125", "dense 10"), prof("dense 8", "dropout 0.875", "dense 10")
    assert otmann.distance(low, high).lp == 0


def test_names_comments_annotations_and_ranges_do_not_matter():
    plain = spec(*SMALL, name="a")
    dressed = ModelSpec("b", tuple(
        Layer(layer_.kind, layer_.args, (Annotation("keep"),), Comments(("# why",), "note"), Range.of(i, 4, 30))
        for i, layer_ in enumerate(plain.layers)), parent="a")
    assert otmann.profile(plain) == otmann.profile(dressed)
    assert otmann.distance(otmann.profile(plain), otmann.profile(dressed)).lp == 0


@pytest.mark.parametrize("other", [
    ("conv2d 32 kernel=3", "relu", "maxpool 2", "flatten", "dense 10"),  # filters
    ("conv2d 16 kernel=5", "relu", "maxpool 2", "flatten", "dense 10"),  # kernel
    ("conv2d 16 kernel=3", "tanh", "maxpool 2", "flatten", "dense 10"),  # activation
    ("conv2d 16 kernel=3", "relu", "maxpool 3", "flatten", "dense 10"),  # pool size
    ("conv2d 16 kernel=3", "relu", "maxpool 2", "flatten", "dense 64", "dense 10"),  # extra layer
    ("relu", "conv2d 16 kernel=3", "maxpool 2", "flatten", "dense 10"),  # order
    ("conv2d 16 kernel=3", "maxpool 2", "flatten", "dense 10"),  # removed layer
    ("conv2d 16 kernel=3", "relu", "dropout 0.5", "maxpool 2", "flatten", "dense 10"),  # dropout present
])
def test_architectures_that_differ_in_what_the_profile_represents_are_apart(other):
    a, b = prof(*SMALL), prof(*other)
    d = otmann.distance(a, b)
    assert d.lp > 0 and d.emd > 0
    assert otmann.distance(b, a).lp == pytest.approx(d.lp, rel=1e-12)


# --- an independent reference and random chains ---------------------------------------------------

REMAP_LABELS = ["ip", "op", "dense", "dropout", "softmax", "conv1", "conv3", "conv5", "tanh", "relu", "sigmoid",
                "pool2", "pool3", "pool5"]
REMAP_PAIRS = {("conv1", "conv3"): 0.2, ("conv3", "conv5"): 0.2, ("conv1", "conv5"): 0.3,
               ("pool2", "pool3"): 0.2, ("pool3", "pool5"): 0.2, ("pool2", "pool5"): 0.3,
               ("tanh", "relu"): 0.25, ("tanh", "sigmoid"): 0.1, ("relu", "sigmoid"): 0.25}


def reference_distance(p: otmann.OtmannProfile, q: otmann.OtmannProfile) -> tuple[float, float]:
    """REMAP's recipe written out with loops over a generic edge list and the public ot.emd."""

    def lengths(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        n = len(labels)
        edges = [(i, i + 1) for i in range(n - 1)]
        group = {lab: ("conv" if lab.startswith("conv") else None) for lab in labels}
        back, fwd = np.zeros((n, 12)), np.zeros((n, 12))
        for g_i, g in enumerate(["all", "conv", "pool", "fc"]):
            for t_i, reduce in enumerate([min, max, lambda xs: sum(xs) / len(xs)]):
                col = 3 * g_i + t_i
                for i in reversed(range(n - 1)):  # to op: via children
                    w = 1 if g == "all" or group[labels[i]] == g else 0
                    fwd[i, col] = reduce([fwd[c, col] + w for a, c in edges if a == i])
                for i in range(1, n):  # from ip: via parents, weight of the node left behind
                    w = 1 if g == "all" or group[labels[i]] == g else 0
                    back[i, col] = reduce([back[a, col] + w for a, c in edges if c == i])
        return back, fwd

    (pb, pf), (qb, qf) = lengths(p.labels), lengths(q.labels)
    n1, n2 = len(p.labels), len(q.labels)
    cost = np.zeros((n1 + 1, n2 + 1))
    for i, j in itertools.product(range(n1), range(n2)):
        a, b = p.labels[i], q.labels[j]
        label = 0.0 if a == b else REMAP_PAIRS.get((a, b), REMAP_PAIRS.get((b, a), np.inf))
        struct = (np.abs(pb[i] - qb[j]).sum() / 12 + np.abs(pf[i] - qf[j]).sum() / 12) / 2
        cost[i, j] = label + struct if np.isfinite(label) else 7.65432e5
    cost[n1, :] = cost[:, n2] = 1.0
    cost[n1, n2] = 0.0
    supply = np.append(p.masses, q.masses.sum())
    demand = np.append(q.masses, p.masses.sum())
    total = supply.sum()
    plan = ot.emd(supply / total, demand / demand.sum(), cost) * total
    lp = float((plan * cost).sum())
    return lp, lp / total


LAYER_LINES = ["conv2d 16 kernel=1", "conv2d 32 kernel=3", "conv2d 64 kernel=5", "maxpool 2", "avgpool 3",
               "maxpool 5", "relu", "tanh", "sigmoid", "dropout 0.25", "dense 16", "dense 64"]
chains = st.lists(st.sampled_from(LAYER_LINES), min_size=0, max_size=7).map(lambda ls: prof(*ls, "dense 10"))


@settings(max_examples=60, deadline=None)
@given(chains, chains)
def test_fast_distance_matches_the_written_out_recipe(p, q):
    assert set(p.labels) | set(q.labels) <= set(REMAP_LABELS)
    lp, emd = reference_distance(p, q)
    d = otmann.distance(p, q)
    row = otmann.distances_to(p, [q])
    assert d.lp == pytest.approx(lp, rel=1e-9, abs=1e-9)
    assert d.emd == pytest.approx(emd, rel=1e-9, abs=1e-12)
    assert row.lp[0] == pytest.approx(lp, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(chains, chains)
def test_distance_properties(p, q):
    assert otmann.distance(p, p).lp == 0
    d, e = otmann.distance(p, q), otmann.distance(q, p)
    assert d.lp == pytest.approx(e.lp, rel=1e-12, abs=1e-12)
    assert (d.lp > 1e-9) == (p != q)


# --- batches -------------------------------------------------------------------------------------


def _population(n: int, seed: int = 0) -> list[otmann.OtmannProfile]:
    rng = np.random.default_rng(seed)
    return [prof(*rng.choice(LAYER_LINES, size=rng.integers(0, 8)).tolist(), "dense 10") for _ in range(n)]


def test_distance_matrix_matches_pairwise_distances():
    profiles = _population(12)
    m = otmann.distance_matrix(profiles, workers=1)
    assert np.array_equal(m.lp, m.lp.T) and not np.diag(m.lp).any()
    for i, j in itertools.combinations(range(12), 2):
        d = otmann.distance(profiles[i], profiles[j])
        assert m.lp[i, j] == pytest.approx(d.lp, rel=1e-9) and m.emd[i, j] == pytest.approx(d.emd, rel=1e-9)


def test_two_workers_give_the_same_matrix():
    profiles = _population(110, seed=1)  # 5995 pairs: above the threshold for worker processes
    assert otmann.pair_count(110) >= otmann._PARALLEL_MIN_PAIRS
    one, two = otmann.distance_matrix(profiles, workers=1), otmann.distance_matrix(profiles, workers=2)
    assert np.array_equal(one.lp, two.lp) and np.array_equal(one.emd, two.emd)


def test_distances_to_is_a_row_of_the_matrix():
    profiles = _population(15, seed=2)
    m = otmann.distance_matrix(profiles, workers=1)
    row = otmann.distances_to(profiles[4], profiles)
    assert row.lp == pytest.approx(m.lp[4], abs=1e-9) and row.emd == pytest.approx(m.emd[4], abs=1e-12)


def test_pair_distances_by_key():
    profiles = {f"k{i}": p for i, p in enumerate(_population(6, seed=3))}
    m = otmann.distance_matrix(list(profiles.values()), workers=1)
    few = [("k0", "k3"), ("k5", "k0")]
    many = list(itertools.combinations(profiles, 2))
    for pairs in (few, many):
        got = otmann.pair_distances(profiles, pairs, workers=1)
        assert [d.lp for d in got] == pytest.approx([m.lp[int(a[1]), int(b[1])] for a, b in pairs], rel=1e-9)
    with pytest.raises(KeyError, match="k9"):
        otmann.pair_distances(profiles, [("k0", "k9")])


def test_a_prepared_profile_set_gives_the_rows_of_the_matrix():
    profiles = [prof("conv2d 16 kernel=3", "relu", "flatten", "dense 10"), prof("flatten", "dense 10"),
                prof("conv2d 32 kernel=5", "maxpool 2", "flatten", "dense 64", "tanh", "dense 10"),
                prof("conv2d 16 kernel=1", "flatten", "dense 10")]
    prepared = otmann.ProfileSet(profiles)
    matrices = otmann.distance_matrix(profiles, workers=1)
    assert len(prepared) == 4 and otmann.warm_up()
    for i in range(4):
        row = prepared.distances_from(i)
        assert row.emd.tolist() == pytest.approx(matrices.emd[i].tolist()) and row.lp[i] == 0.0
    with pytest.raises(IndexError):
        prepared.distances_from(4)


def test_the_mismatch_table_is_gathered_from_the_catalog_entries_and_is_remaps() -> None:
    from dataclasses import replace

    from remapdsl.language.catalog import LAYER_TYPES, OTMANN_MISMATCH, _mismatch_table

    expected = {("conv1", "conv3"): 0.2, ("conv3", "conv5"): 0.2, ("conv1", "conv5"): 0.3,
                ("pool2", "pool3"): 0.2, ("pool3", "pool5"): 0.2, ("pool2", "pool5"): 0.3,
                ("relu", "tanh"): 0.25, ("tanh", "sigmoid"): 0.1, ("relu", "sigmoid"): 0.25}
    assert {frozenset(pair): cost for pair, cost in expected.items()} == OTMANN_MISMATCH
    relu = LAYER_TYPES["relu"]
    disagreeing = replace(relu, otmann=replace(relu.otmann, mismatch=(("relu", "tanh", 0.5),)))
    with pytest.raises(ValueError, match="relu-tanh given twice"):
        _mismatch_table([*LAYER_TYPES.values(), disagreeing])
