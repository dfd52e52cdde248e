"""OTMANN on models with residual blocks: the DAG's nodes, its path lengths, and distances that behave."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from remapdsl.language.analysis import analyze_model
from remapdsl.language.model import ModelSpec
from remapdsl.space import otmann
from tests.samples import DIGITS, model
from tests.strategies import residual_models, sensible_models

RES = """\
model res:
    conv2d 16 kernel=3
    relu
    residual:
        conv2d 16 kernel=3
        batchnorm
        relu
        conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""
BODY = RES.replace("    residual:\n", "").replace("        ", "    ")
PROJECTED = """\
model down:
    conv2d 16
    relu
    residual shortcut=conv:
        conv2d 32 stride=2
        relu
    flatten
    dense 10
"""
UNRELATED = ("model mlp:\n    flatten\n    dense 256\n    sigmoid\n    dropout 0.5\n    dense 64\n    tanh\n"
             "    dense 10\n")


def column(name: str) -> int:
    return otmann.PATH_COLUMNS.index(name)


def test_the_addition_is_a_node_after_the_body_with_the_input_as_a_second_parent():
    p = otmann.profile(model(RES))
    assert p.labels == ("ip", "conv3", "relu", "conv3", "batchnorm", "relu", "conv3", otmann.ADD, "relu", "pool2",
                        "dense", "softmax", "op")
    add = p.labels.index(otmann.ADD)
    assert p.masses[add] == 16  # its channels, as pooling weighs them
    # from ip: the skip from the first relu (2 nodes, then add) or the long way through the body's 4 nodes
    assert p.from_input[add, column("all-shortest")] == 3
    assert p.from_input[add, column("all-longest")] == 7
    assert p.from_input[add, column("all-rw")] == pytest.approx(1 + (2 + 6) / 2)  # a parent picked at random
    assert p.from_input[add, column("conv-shortest")] == 1 and p.from_input[add, column("conv-longest")] == 3
    # to op, the first relu (the block's input) has both ways too
    assert p.to_output[2, column("all-shortest")] == 6 and p.to_output[2, column("all-longest")] == 10


def test_a_projection_is_a_conv1_node_on_the_skip():
    p = otmann.profile(model(PROJECTED))
    assert p.labels == ("ip", "conv3", "relu", "conv3", "relu", "conv1", otmann.ADD, "dense", "softmax", "op")
    assert p.masses[5] == 16 * 32 and p.masses[6] == 32


def test_on_a_chain_the_dag_path_lengths_are_the_chains():
    labels = ["ip", "conv3", "relu", "pool2", "conv5", "dense", "softmax", "op"]
    chain = otmann.path_lengths(labels)
    dag = otmann.dag_path_lengths(labels, [()] + [(i,) for i in range(len(labels) - 1)])
    assert np.array_equal(chain[0], dag[0]) and np.array_equal(chain[1], dag[1])


@settings(max_examples=40, deadline=None)
@given(sensible_models)
def test_sequential_profiles_equal_their_dag_form(m: ModelSpec):
    try:
        p = otmann.profile(m)
    except otmann.OtmannError:
        return
    dag = otmann.dag_path_lengths(p.labels, [()] + [(i,) for i in range(len(p.labels) - 1)])
    assert np.array_equal(p.from_input, dag[0]) and np.array_equal(p.to_output, dag[1])


def test_a_residual_model_is_at_distance_zero_from_a_renamed_copy():
    a = otmann.profile(model(RES))
    b = otmann.profile(model(RES.replace("model res:", "model other:").replace("residual:", "residual:  @keep")))
    assert a == b
    d = otmann.distance(a, b)
    assert d.lp == pytest.approx(0, abs=1e-9) and d.emd == pytest.approx(0, abs=1e-12)


def test_a_residual_model_is_closer_to_its_body_than_to_an_unrelated_model():
    res, body, other = (otmann.profile(model(t)) for t in (RES, BODY, UNRELATED))
    to_body = otmann.distance(res, body).emd
    assert 0 < to_body < otmann.distance(res, other).emd
    projected = otmann.profile(model(PROJECTED))
    flat = PROJECTED.replace("    residual shortcut=conv:\n", "").replace("        ", "    ")
    unwrapped = otmann.profile(model(flat))
    assert 0 < otmann.distance(projected, unwrapped).emd < otmann.distance(projected, other).emd


def test_moving_the_block_changes_the_distance():
    moved = RES.replace("    residual:\n        conv2d 16 kernel=3\n", "    conv2d 16 kernel=3\n    residual:\n")
    assert otmann.distance(otmann.profile(model(RES)), otmann.profile(model(moved))).emd > 0


def test_an_analysed_residual_model_has_the_profile_of_its_spec():
    m = model(RES)
    assert otmann.profile(analyze_model(m, DIGITS)) == otmann.profile(m)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_models(), residual_models())
def test_distances_among_residual_models_are_symmetric_and_the_batch_agrees(a: ModelSpec, b: ModelSpec):
    p, q = otmann.profile(a), otmann.profile(b)
    pq, qp = otmann.distance(p, q), otmann.distance(q, p)
    assert pq.emd == pytest.approx(qp.emd, abs=1e-9) and pq.emd >= -1e-12
    matrix = otmann.distance_matrix([p, q], workers=1)
    assert matrix.emd[0, 1] == pytest.approx(pq.emd, abs=1e-9)
