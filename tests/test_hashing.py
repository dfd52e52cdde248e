"""The architecture hash: what a model computes, not how it is written."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import sensible_models

from remapdsl.hashing import architecture_hash
from remapdsl.model import ModelSpec
from remapdsl.parser import parse
from remapdsl.printer import format_model


def model(text: str) -> ModelSpec:
    result = parse(text)
    assert result.diagnostics == ()
    (m,) = result.document.models
    return m


BASE = "model a:\n    conv2d 16 kernel=3\n    relu\n    maxpool 2\n    flatten\n    dropout 0.25\n    dense 10\n"


def test_hash_is_sixteen_hex_digits_and_stable():
    h = architecture_hash(model(BASE))
    assert len(h) == 16 and int(h, 16) >= 0
    assert architecture_hash(model(BASE)) == h


def test_names_comments_annotations_parents_and_layout_do_not_count():
    other = """\
# a comment
model renamed from a:   # trailing
  conv2d filters=16.0 stride=1 padding=same kernel=3   @keep
  # between
  relu @allow(remove)
        maxpool size=2 stride=2
  flatten
  dropout 0.250
  dense units=10
"""
    assert architecture_hash(model(other)) == architecture_hash(model(BASE))


def test_parameters_and_kinds_do_count():
    base = architecture_hash(model(BASE))
    for changed in (BASE.replace("16", "32"), BASE.replace("kernel=3", "kernel=5"), BASE.replace("relu", "tanh"),
                    BASE.replace("maxpool", "avgpool"), BASE.replace("    relu\n", ""),
                    BASE.replace("maxpool 2", "maxpool 2 stride=1"), BASE.replace("0.25", "0.5")):
        assert architecture_hash(model(changed)) != base


def test_layer_order_counts():
    swapped = BASE.replace("    flatten\n    dropout 0.25\n", "    dropout 0.25\n    flatten\n")
    assert architecture_hash(model(swapped)) != architecture_hash(model(BASE))


def test_unknown_kinds_hash_by_their_written_args():
    a = model("model a:\n    conv3d 8 depth=2 width=3\n")
    b = model("model b:\n    conv3d 8 width=3.0 depth=2\n")
    c = model("model c:\n    conv3d 8 width=4 depth=2\n")
    assert architecture_hash(a) == architecture_hash(b) != architecture_hash(c)


@settings(max_examples=100, deadline=None)
@given(sensible_models)
def test_printing_and_reparsing_keeps_the_hash(m):
    (again,) = parse(format_model(m)).document.models
    assert architecture_hash(again) == architecture_hash(m)
