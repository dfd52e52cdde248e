"""The parser: text to Document, with every syntax error at once and exact ranges."""

from __future__ import annotations

import pytest

from remapdsl.language.model import Annotation, Arg, Comments, Range
from remapdsl.language.parser import clear_caches, parse

EXAMPLE = """\
# digits, the bundled default
data digits val=0.25
train epochs=10 batch=128 lr=0.001 optimizer=adam seed=0
budget params <= 100k

model small:
    conv2d 16 kernel=3 padding=same
    relu
    maxpool 2
    flatten
    dense 10

model small_wide from small:   # filters at 0 from 16 to 32
    conv2d 32 kernel=3 padding=same   @keep
    relu
    # pool less aggressively
    maxpool 2                         @allow(reparameterize, remove)
    flatten
    dense 10
# the end
"""


def span(r: Range) -> tuple[int, int, int]:
    assert r.start.line == r.end.line
    return (r.start.line, r.start.character, r.end.character)


def only_document(text: str):
    result = parse(text)
    assert result.diagnostics == (), result.diagnostics
    return result.document


def messages(text: str) -> list[str]:
    return [d.message for d in parse(text).diagnostics]


def test_example_file_reads_into_header_models_layers_and_comments():
    doc = only_document(EXAMPLE)
    assert doc.data is not None and doc.data.name == "digits" and doc.data.option("val") == 0.25
    assert doc.data.comments.leading == ("digits, the bundled default",)
    assert doc.train is not None and doc.train.option("optimizer") == "adam" and doc.train.option("lr") == 0.001
    (budget,) = doc.budgets
    assert (budget.metric, budget.limit, budget.unit, budget.strict) == ("params", 100_000, "k", False)
    small, wide = doc.models
    assert [layer.kind for layer in small.layers] == ["conv2d", "relu", "maxpool", "flatten", "dense"]
    assert small.layers[0].args == (Arg("filters", 16, True), Arg("kernel", 3), Arg("padding", "same"))
    assert wide.parent == "small"
    assert wide.comments == Comments((), "filters at 0 from 16 to 32")
    assert wide.layers[0].annotations == (Annotation("keep"),)
    assert wide.layers[2].annotations == (Annotation("allow", ("reparameterize", "remove")),)
    assert wide.layers[2].comments.leading == ("pool less aggressively",)
    assert doc.final_comments == ("the end",)


def test_ranges_of_layers_args_and_models():
    doc = only_document(EXAMPLE)
    small, wide = doc.models
    conv = wide.layers[0]
    assert span(conv.kind_range) == (13, 4, 10)
    # the layer's range covers its text with the annotations, not the comment
    assert span(conv.range) == (13, 4, 43)
    kernel = conv.arg("kernel")
    assert kernel is not None and span(kernel.range) == (13, 14, 22) and span(kernel.value_range) == (13, 21, 22)
    filters = conv.arg("filters")
    assert filters is not None and span(filters.range) == span(filters.value_range) == (13, 11, 13)
    assert span(conv.annotations[0].range) == (13, 38, 43)
    assert span(wide.name_range) == (12, 6, 16)
    assert wide.parent_range is not None and span(wide.parent_range) == (12, 22, 27)
    assert (small.range.start.line, small.range.start.character) == (5, 0)
    assert (small.range.end.line, small.range.end.character) == (10, 12)
    assert span(doc.budgets[0].range) == (3, 0, 21)


def test_values_numbers_suffixes_words_strings_and_lists():
    doc = only_document('model m:\n  x 1e-3 a=.5 b=100k c=1.5M d=-2 e=16.0 f=same g="a \\"b\\" \\\\ c" h=cat,bird,3\n')
    layer = doc.models[0].layers[0]
    got = layer.written()
    assert got == {"": 0.001, "a": 0.5, "b": 100_000, "c": 1_500_000, "d": -2, "e": 16.0, "f": "same",
                   "g": 'a "b" \\ c', "h": ("cat", "bird", 3)}
    assert isinstance(got["b"], int) and isinstance(got["e"], float)


def test_positional_value_takes_the_catalog_name_or_empty_for_unknown_kinds():
    doc = only_document("model m:\n    dense 10\n    relu 3\n    conv3d 8\n")
    dense, relu, conv3d = doc.models[0].layers
    assert dense.args == (Arg("units", 10, True),)
    assert relu.args == (Arg("", 3, True),)
    assert conv3d.args == (Arg("", 8, True),)


def test_args_are_stored_in_catalog_order_whatever_the_written_order():
    a = only_document("model m:\n    conv2d 16 padding=valid zoom=2 kernel=5 stride=2 alpha=1\n")
    b = only_document("model m:\n    conv2d 16 stride=2 zoom=2 kernel=5 alpha=1 padding=valid\n")
    assert a == b
    assert [arg.name for arg in a.models[0].layers[0].args] == ["filters", "kernel", "stride", "padding", "zoom",
                                                                 "alpha"]


def test_train_and_data_options_are_ordered_too():
    a = only_document("data digits seed=3 val=0.1\ntrain seed=1 epochs=3\n")
    b = only_document("data digits val=0.1 seed=3\ntrain epochs=3 seed=1\n")
    assert a == b


@pytest.mark.parametrize("text, metric, limit, unit, strict", [
    ("budget params <= 100k", "params", 100_000, "k", False),
    ("budget params < 2M", "params", 2_000_000, "M", True),
    ("budget params <= 12345", "params", 12_345, "", False),
    ("budget latency <= 0.5ms", "latency", 0.5, "ms", False),
    ("budget latency <= 250us", "latency", 0.25, "us", False),
    ("budget latency <= 2", "latency", 2, "ms", False),
    ("budget size <= 400KB", "size", 400_000, "KB", False),
    ("budget size <= 1.5MiB", "size", 1.5 * 1024 * 1024, "MiB", False),
])
def test_budgets_store_base_units_and_the_unit_as_written(text, metric, limit, unit, strict):
    (b,) = only_document(text).budgets
    assert (b.metric, b.limit, b.unit, b.strict) == (metric, limit, unit, strict)


def test_several_budgets_of_different_metrics():
    doc = only_document("budget params <= 100k\nbudget latency <= 1ms\nbudget size <= 1MB\n")
    assert [b.metric for b in doc.budgets] == ["params", "latency", "size"]


@pytest.mark.parametrize("text, message, where", [
    ("model m:\n    conv2d 16 kernel=\n", "expected a value after 'kernel='", (1, 14, 21)),
    ("model m\n    relu\n", "expected ':' at the end of the model line", (0, 6, 7)),
    ("model m:\n    relu }\n", "unexpected '}'", (1, 9, 10)),
    ("budget flops <= 3\n", "unknown budget metric 'flops'; expected 'params', 'latency' or 'size'", (0, 7, 12)),
    ("budget latency <= 3KB\n", "unknown unit 'KB' for budget latency", (0, 18, 21)),
    ("budget params >= 3\n", "expected '<=' or '<' after 'budget params'; found '>'", (0, 14, 15)),
    ('data cifar10 "~/data\n', "unterminated string: add the closing '\"'", (0, 13, 20)),
    ("model m:\n    conv2d kernel=3 16\n", "unexpected '16': a layer takes one unnamed value", (1, 20, 22)),
    ("model m:\n    maxpool 2 @allow(remove\n", "expected ')' to close '@allow('", (1, 14, 27)),
    ("model m:\n    dense 10ms\n", "units such as 'ms' belong in budget lines", (1, 10, 14)),
    ("model m:\n    dense 3x3\n", "unknown suffix 'x3' in '3x3'", (1, 10, 13)),
    ("model m:\n    dense 1e999\n", "'1e999' is out of range", (1, 10, 15)),
    ("train 10\n", "unexpected '10': train takes name=value settings", (0, 6, 8)),
    ("model:\n", "expected a model name after 'model'; found ':'", (0, 5, 6)),
    ("model m from:\n", "expected the parent model's name after 'from'; found ':'", (0, 12, 13)),
    ("modle m:\n", "a model line starts with 'model'", (0, 7, 8)),
])
def test_syntax_errors_say_what_was_expected_where(text, message, where):
    (d,) = parse(text).diagnostics
    assert message in d.message
    assert span(d.range) == where
    assert d.code == "syntax"


def test_every_broken_line_is_reported_and_the_rest_still_parses():
    text = """\
model a:
    conv2d 16 kernel=
    relu
    dense }
    flatten
model b:
    dense 10 @allow(
    relu
"""
    result = parse(text)
    assert [d.range.start.line for d in result.diagnostics] == [1, 3, 6]
    a, b = result.document.models
    assert [layer.kind for layer in a.layers] == ["relu", "flatten"]
    assert [layer.kind for layer in b.layers] == ["relu"]


def test_a_broken_model_line_keeps_its_layers_with_it():
    result = parse("model a:\n    relu\nmodel b from a\n    dense 10\n")
    assert [d.range.start.line for d in result.diagnostics] == [2]
    a, b = result.document.models
    assert (a.name, len(a.layers), b.name, b.parent, len(b.layers)) == ("a", 1, "b", "a", 1)


def test_layers_under_an_unreadable_model_line_join_no_model():
    result = parse("model a:\n    relu\nmodle b:\n    dense 10\n")
    assert len(result.diagnostics) == 1
    (a,) = result.document.models
    assert [layer.kind for layer in a.layers] == ["relu"]


def test_header_lines_come_first_and_only_once():
    text = "data digits\ntrain epochs=1\ndata mnist \"/m\"\nbudget params <= 1k\nbudget params <= 2k\n" \
           "model m:\n    dense 10\ntrain epochs=2\n"
    ds = parse(text).diagnostics
    assert [d.message for d in ds] == [
        "a second data line; the first is at line 1",
        "a second budget params line; the first is at line 4",
        "header lines (data, train, budget) must come before the first model",
        "a second train line; the first is at line 2",
    ]
    assert [d.range.start.line for d in ds] == [2, 4, 7, 7]


def test_layer_before_any_model_is_an_error():
    (d,) = parse("relu\nmodel m:\n    dense 10\n").diagnostics
    assert "must follow a model line" in d.message and span(d.range) == (0, 0, 4)


def test_layer_kinds_are_not_keywords_and_keywords_are_values():
    doc = only_document("model m:\n    fancy_layer 3 mode=model\n    data-layer from=train\n")
    layers = doc.models[0].layers
    assert [layer.kind for layer in layers] == ["fancy_layer", "data-layer"]
    assert layers[0].arg("mode") == Arg("mode", "model")


def test_indentation_is_free_and_tabs_and_crlf_work():
    a = only_document("model m:\n    relu\n    dense 10\n")
    b = only_document("model m:\r\n\trelu\r\ndense 10\r\n")
    c = only_document("model m:\rrelu\r      dense 10")
    assert a == b == c
    assert span(b.models[0].layers[0].kind_range) == (1, 1, 5)


def test_comments_attach_to_the_next_statement_and_the_end():
    doc = only_document("# a\n# b\nmodel m:  # c\n    # d\n    relu  # e\n\n# f\n")
    m = doc.models[0]
    assert m.comments == Comments(("a", "b"), "c")
    assert m.layers[0].comments == Comments(("d",), "e")
    assert doc.final_comments == ("f",)


def test_hash_inside_a_string_is_not_a_comment():
    doc = only_document('data folder "~/data/#1"  # real comment\n')
    assert doc.data is not None and doc.data.path == "~/data/#1"
    assert doc.data.comments.trailing == "real comment"


def test_equal_whatever_the_formatting():
    a = only_document("model m:\n    conv2d 16 kernel=3\n    relu\n")
    b = only_document("\n\n# hi\nmodel   m :\n  conv2d   16   kernel = 3  # x\n\n    relu\n")
    assert a.models[0].layers == tuple(
        type(layer)(layer.kind, layer.args, layer.annotations) for layer in b.models[0].layers)


@pytest.mark.parametrize("text", [
    "", "\n", "\x00\x01\x02", "\ufeffmodel m:", "model m:\n" + "    relu\n" * 3 + "\r", "x" * 100_000,
    "model m:\n    conv2d " + "1," * 5000 + "1\n", "@@@@\n###\n\"\"\"", "model é:\n    dense 10 ñ=ü\n",
    "budget params <= 1e999999999k\n", "model m:\n    dense " + "9" * 5000 + "\n", "\t\v\f\u2028\x85",
])
def test_never_raises(text):
    result = parse(text)
    for d in result.diagnostics:
        assert d.message and d.range.start <= d.range.end


def test_cached_and_uncached_parses_agree():
    clear_caches()
    cold = parse(EXAMPLE)
    warm = parse(EXAMPLE)
    assert cold == warm
    # ranges are not part of equality: compare them explicitly
    assert [layer.range for m in cold.document.models for layer in m.layers] == \
           [layer.range for m in warm.document.models for layer in m.layers]


def test_same_line_text_at_another_line_or_indent_gets_its_own_ranges():
    doc = only_document("model m:\n    relu\n  relu\nrelu\n")
    assert [span(layer.range) for layer in doc.models[0].layers] == [(1, 4, 8), (2, 2, 6), (3, 0, 4)]
