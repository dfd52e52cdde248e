"""The architecture hash: what a model computes, not how it is written."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from remapdsl.language.catalog import LAYER_TYPES, conv_padding
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_model
from tests.samples import model
from tests.strategies import sensible_models

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


def test_equivalent_padding_spellings_hash_alike():
    def conv(args: str) -> str:
        return architecture_hash(model(f"model a:\n    conv2d 16 {args}\n    flatten\n    dense 10\n"))

    assert conv("") == conv("padding=1") == conv("kernel=3 padding=same") == conv("padding=1.0")
    assert conv("padding=valid") == conv("padding=0") != conv("")
    assert conv("kernel=5 padding=2") == conv("kernel=5") != conv("kernel=5 padding=1")
    # with a 1x1 kernel, same pads nothing: all three are one layer
    assert conv("kernel=1") == conv("kernel=1 padding=valid") == conv("kernel=1 padding=0")
    assert conv("padding=2") != conv("padding=3") != conv("")


PADDINGS = st.sampled_from(["same", "valid"]) | st.integers(0, 7)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 15), st.integers(1, 3), PADDINGS, PADDINGS)
def test_two_paddings_hash_alike_exactly_when_they_pad_as_many_pixels(kernel, stride, first, second):
    def layer(padding: object) -> str:
        return f"conv2d 8 kernel={kernel} stride={stride} padding={padding}"

    def valid(padding: object) -> bool:
        return not (padding == "same" and kernel % 2 == 0)

    assume(valid(first) and valid(second))  # padding=same with an even kernel is an error, hashed as written
    a, b = model(f"model a:\n    {layer(first)}\n"), model(f"model b:\n    {layer(second)}\n")
    same_pixels = conv_padding(kernel, first) == conv_padding(kernel, second)
    assert (architecture_hash(a) == architecture_hash(b)) == same_pixels


def test_an_invalid_padding_is_hashed_as_written():
    conv = LAYER_TYPES["conv2d"]
    odd = conv.resolve({"filters": 8, "kernel": 4, "padding": "same"})
    assert conv.canonical(odd) == odd  # not taken for padding=2: the layer is an error either way
    assert conv.canonical(conv.resolve({"filters": 8, "padding": "sme"}))["padding"] == "sme"
