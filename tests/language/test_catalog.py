"""The layer catalog: parameter checks, defaults and per-layer rules."""

from __future__ import annotations

import pytest

from remapdsl.language.catalog import LAYER_TYPES, ShapeError, nearest_odd_kernel


def test_every_layer_type_of_the_language_is_in_the_catalog():
    assert set(LAYER_TYPES) >= {"conv2d", "maxpool", "avgpool", "dense", "dropout", "relu", "tanh", "sigmoid",
                                "flatten", "batchnorm"}


def test_reference_grids():
    conv = LAYER_TYPES["conv2d"]
    assert conv.param("kernel").grid == (1, 3, 5)
    assert conv.param("filters").grid == (16, 32, 64, 128)
    assert LAYER_TYPES["dense"].param("units").grid == (16, 64, 128, 256)
    assert LAYER_TYPES["dropout"].param("rate").grid == (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)
    assert LAYER_TYPES["maxpool"].param("size").grid == (2, 3, 5)


@pytest.mark.parametrize("layer, param, value, message", [
    ("conv2d", "filters", 0, "filters must be an integer in [1, 4096]; found 0"),
    ("conv2d", "filters", 2.5, "filters must be a whole number; found 2.5"),
    ("conv2d", "padding", "full", "padding must be an integer in [0, 7] or 'same' or 'valid'; found 'full'"),
    ("dropout", "rate", 1, "rate must be a number in (0, 1); found 1"),
    # values far out of range are quoted short, not digit by digit
    ("conv2d", "filters", 1e308, "filters must be an integer in [1, 4096]; found 1e+308"),
    ("conv2d", "filters", -(10**400), "filters must be an integer in [1, 4096]; found -1e+400"),
    ("conv2d", "filters", 123456789012345678, "filters must be an integer in [1, 4096]; found 1.23457e+17"),
    ("conv2d", "filters", 999_999_999_999_999, "filters must be an integer in [1, 4096]; found 999999999999999"),
    ("conv2d", "padding", "x" * 100, f"padding must be an integer in [0, 7] or 'same' or 'valid'; found '{'x' * 39}…'"),
])
def test_out_of_range_values_say_what_is_allowed(layer, param, value, message):
    assert LAYER_TYPES[layer].param(param).check(value) == message


def test_resolve_fills_defaults_and_normalises_whole_floats():
    assert LAYER_TYPES["conv2d"].resolve({"filters": 16.0}) == {"filters": 16, "kernel": 3, "stride": 1,
                                                                 "padding": "same"}
    assert LAYER_TYPES["maxpool"].resolve({"size": 3}) == {"size": 3, "stride": 2}


def test_same_padding_needs_an_odd_kernel():
    conv = LAYER_TYPES["conv2d"]
    with pytest.raises(ShapeError, match="odd kernel") as raised:
        conv.output_shape((1, 8, 8), conv.resolve({"filters": 4, "kernel": 2}))
    assert raised.value.fix == ("kernel", 3)
    assert conv.output_shape((1, 8, 8), conv.resolve({"filters": 4, "kernel": 2, "padding": "valid"})) == (4, 7, 7)


def test_every_type_has_a_style_and_an_otmann_role():
    for t in LAYER_TYPES.values():
        assert t.snac.colour.startswith("#") and t.snac.symbol
        assert (t.otmann.label is None) == (t.name == "flatten")


@pytest.mark.parametrize("kernel, odd", [(2, 3), (4, 5), (6, 5), (8, 9), (14, 15)])
def test_the_nearest_odd_kernel_prefers_grid_sizes_then_the_larger(kernel, odd):
    assert nearest_odd_kernel(kernel) == odd
