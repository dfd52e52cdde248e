"""The Markov-chain sampler: valid, distinct, deterministic models that follow the chain's rules."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remapdsl.language.analysis import analyze_model
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import DataSpec, Document
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document
from remapdsl.search.sampler import HEAD, REFERENCE_TABLE, TransitionTable, sample_models
from tests.samples import DIGITS

MNIST = DatasetInfo("mnist", (1, 28, 28), 10, tuple(str(i) for i in range(10)))
CIFAR10 = DatasetInfo("cifar10", (3, 32, 32), 10, tuple(str(i) for i in range(10)))
DATASETS = {"digits": DIGITS, "mnist": MNIST, "cifar10": CIFAR10}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.sampled_from(sorted(DATASETS)))
def test_every_sampled_model_is_valid_within_the_cap_and_bounds(seed, data):
    dataset = DATASETS[data]
    for model in sample_models(6, dataset, seed, max_params=200_000, min_layers=3, max_layers=9):
        info = analyze_model(model, dataset)
        assert info.valid, [d.message for d in info.diagnostics]
        assert not info.diagnostics  # not even a warning (a stray flatten)
        assert info.param_count <= 200_000
        assert 3 <= len(model.layers) <= 9


@pytest.mark.parametrize("dataset", DATASETS.values(), ids=DATASETS)
def test_chain_rules_hold(dataset):
    for model in sample_models(60, dataset, seed=7):
        kinds = [layer.kind for layer in model.layers]
        first_dense = kinds.index("dense")
        assert not {"conv2d", "maxpool", "avgpool", "flatten"} & set(kinds[first_dense + 1:]), kinds
        assert kinds[first_dense - 1] == "flatten" and kinds.count("flatten") == 1, kinds
        head = model.layers[-1]
        assert head.kind == "dense" and head.args[0].value == dataset.num_classes and len(head.args) == 1
        assert "dense" not in kinds[:first_dense] and "batchnorm" not in kinds


def test_parameters_come_from_the_grids_and_only_non_defaults_are_written():
    for model in sample_models(80, MNIST, seed=3):
        for layer in model.layers[:-1]:
            ltype = LAYER_TYPES[layer.kind]
            for arg in layer.args:
                spec = ltype.param(arg.name)
                assert spec is not None and arg.value in spec.grid
                assert arg.positional == spec.positional
                if not spec.positional:
                    assert arg.value != spec.default, f"{layer.kind} writes its default {arg.name}"
            missing = [p.name for p in ltype.params if p.positional and layer.arg(p.name) is None]
            assert not missing


def test_same_seed_same_models_and_a_longer_sample_extends_a_shorter_one():
    first = sample_models(20, DIGITS, seed=11)
    assert sample_models(20, DIGITS, seed=11) == first
    assert sample_models(30, DIGITS, seed=11)[:20] == first
    assert sample_models(20, DIGITS, seed=12) != first


def test_the_global_random_state_is_neither_used_nor_changed():
    random.seed(1)
    state = random.getstate()
    a = sample_models(10, DIGITS, seed=5)
    assert random.getstate() == state
    random.seed(2)
    assert sample_models(10, DIGITS, seed=5) == a


def test_no_two_sampled_models_share_an_architecture():
    models = sample_models(150, DIGITS, seed=0)
    hashes = [architecture_hash(m) for m in models]
    assert len(set(hashes)) == 150


def test_names_and_the_sampled_comment():
    models = sample_models(12, DIGITS, seed=4, name_prefix="pop")
    assert [m.name for m in models] == [f"pop{i:03d}" for i in range(12)]
    assert all(m.comments.leading == ("sampled, seed 4",) and m.parent is None for m in models)
    assert [m.name for m in sample_models(1001, DIGITS, seed=0, max_params=10**7)][-1] == "m1000"


def test_parameter_cap_redraws_large_networks():
    models = sample_models(30, CIFAR10, seed=2, max_params=20_000)
    counts = [analyze_model(m, CIFAR10).param_count for m in models]
    assert max(counts) <= 20_000


def test_depth_bounds_are_exact_when_min_equals_max():
    models = sample_models(25, MNIST, seed=9, min_layers=6, max_layers=6)
    assert {len(m.layers) for m in models} == {6}


def test_the_reference_table_starts_mostly_with_convolutions():
    firsts = Counter(m.layers[0].kind for m in sample_models(200, MNIST, seed=1))
    assert firsts.most_common(1)[0][0] == "conv2d"


def test_a_replaced_table_changes_what_is_drawn():
    conv_then_head = TransitionTable(spatial={"start": {"conv": 1}, "conv": {HEAD: 1}}, flat={})
    models = sample_models(12, DIGITS, seed=0, table=conv_then_head)
    assert {tuple(layer.kind for layer in m.layers) for m in models} == {("conv2d", "flatten", "dense")}
    # 4 filter counts x 3 kernels: exactly 12 architectures, and a 13th does not exist
    with pytest.raises(ValueError, match="found only 12 distinct models of 13"):
        sample_models(13, DIGITS, seed=0, table=conv_then_head)


def test_tables_that_break_the_rules_are_refused():
    with pytest.raises(ValueError, match="no conv or pool may follow a dense layer"):
        TransitionTable(spatial=REFERENCE_TABLE.spatial, flat={**REFERENCE_TABLE.flat, "dense": {"conv": 1}})
    with pytest.raises(ValueError, match="needs a 'start' row"):
        TransitionTable(spatial={"conv": {HEAD: 1}}, flat={})
    with pytest.raises(ValueError, match="unknown state 'lstm'"):
        TransitionTable(spatial={"start": {"lstm": 1}}, flat={})
    with pytest.raises(ValueError, match="negative weight"):
        TransitionTable(spatial={"start": {HEAD: -1}}, flat={})
    with pytest.raises(ValueError, match="'dense', which has no row after the first dense layer"):
        TransitionTable(spatial={"start": {"dense": 1}}, flat={})


def test_impossible_requests_say_why():
    with pytest.raises(ValueError, match="found only 1 distinct models of 2"):
        sample_models(2, DIGITS, max_layers=2)  # only `flatten, dense 10` is that short
    with pytest.raises(ValueError, match="1 <= min <= max"):
        sample_models(2, DIGITS, min_layers=5, max_layers=4)
    with pytest.raises(ValueError, match="at least 2 for digits"):
        sample_models(2, DIGITS, min_layers=1, max_layers=1)
    with pytest.raises(ValueError, match="0 or more"):
        sample_models(-1, DIGITS)
    assert sample_models(0, DIGITS) == []


def test_an_impossible_request_fails_fast_however_many_models_are_wanted():
    started = time.perf_counter()
    # no network fits under 200 parameters and 3 layers but a handful of tiny ones (avgpool 5, flatten,
    # dense 10: 50 parameters): the cap of 1,000 draws per model would take 100 million draws
    with pytest.raises(ValueError, match=r"found only \d+ distinct models of 100000 in [\d,]+ draws \(none new in "
                                         r"the last 20,000\) within 200 parameters and 2\.\.3 layers"):
        sample_models(100_000, DIGITS, max_params=200, max_layers=3)
    assert time.perf_counter() - started < 5


def test_the_printed_sample_parses_back_to_the_same_models():
    models = tuple(sample_models(40, DIGITS, seed=21))
    document = Document(models=models, data=DataSpec("digits"))
    result = parse(format_document(document))
    assert result.ok and result.document.models == models
