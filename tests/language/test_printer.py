"""The printer: canonical text, idempotent formatting, and parse(print(doc)) == doc."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from remapdsl.language.model import Arg, Budget, Comments, Document, Layer, ModelSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import (
    budget_limit_text,
    budget_text,
    format_document,
    format_model,
    format_text,
    value_text,
)
from tests.paths import EXAMPLES
from tests.strategies import documents, models

EXAMPLES = sorted(EXAMPLES.glob("*.remap"))

MESSY = """\
# banner
budget   latency<0.5ms
train seed=1 epochs=3   # quick
data digits

  model a :   # first
\tconv2d 16 padding=same kernel=3 @allow( remove,replace )   @keep
        # a comment line
   relu

model b from a:
    dense 1.5k


# trailing thoughts
"""

CANONICAL = """\
data digits
train epochs=3 seed=1  # quick
# banner
budget latency < 0.5ms

model a:  # first
    conv2d 16 kernel=3 padding=same  @allow(remove, replace) @keep
    # a comment line
    relu

model b from a:
    dense 1500

# trailing thoughts
"""


def test_messy_text_prints_canonically():
    assert format_text(MESSY) == CANONICAL


def test_formatting_is_idempotent_and_keeps_the_document():
    assert format_text(CANONICAL) == CANONICAL
    assert parse(CANONICAL).document == parse(MESSY).document


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_canonical(path):
    text = path.read_text(encoding="utf-8")
    assert format_text(text) == text


def test_text_with_syntax_errors_is_not_formatted():
    assert format_text("model m:\n    conv2d 16 kernel=\n") is None
    assert format_text("budget params <= 1k\nbudget params <= 2k\n") is None


@pytest.mark.parametrize("value, text", [
    (16, "16"), (-3, "-3"), (0.5, "0.5"), (1e-05, "1e-05"), (16.0, "16.0"), (1e16, "1e+16"), ("same", "same"),
    ("two words", '"two words"'), ('q"uo\\te\n', '"q\\"uo\\\\te\\n"'), ("16", '"16"'), ("", '""'),
    (("cat", "bird", 3), "cat,bird,3"), ("a-b.c", "a-b.c"), ("-x", '"-x"'),
])
def test_values_print_so_that_they_read_back(value, text):
    assert value_text(value) == text
    layer = parse(f"model m:\n    x v={text}\n").document.models[0].layers[0]
    assert layer.args == (Arg("v", value),)
    assert type(layer.args[0].value) is type(value)


@pytest.mark.parametrize("budget, text", [
    (Budget("params", 100_000, "k"), "budget params <= 100k"),
    (Budget("params", 1234, "k"), "budget params <= 1.234k"),
    (Budget("params", 100_000, ""), "budget params <= 100000"),
    (Budget("latency", 0.5, "ms", strict=True), "budget latency < 0.5ms"),
    (Budget("latency", 0.25, "us"), "budget latency <= 250us"),
    (Budget("size", 1.5 * 1024**2, "MiB"), "budget size <= 1.5MiB"),
    (Budget("size", 1000, "KiB"), "budget size <= 0.9765625KiB"),
])
def test_budgets_print_in_the_unit_they_were_written_in(budget, text):
    assert budget_text(budget) == text
    assert parse(text).document.budgets == (budget,)


@pytest.mark.parametrize("budget, text", [
    (Budget("params", 100_000, "k"), "100k"),
    (Budget("params", 1_000_000, ""), "1,000,000"),
    (Budget("params", 1234, "k"), "1.234k"),
    (Budget("latency", 0.05, "us", strict=True), "< 50us"),
    (Budget("latency", 0.5, ""), "0.5ms"),  # no unit written: the metric's first unit
    (Budget("size", 400_000, "KB"), "400KB"),
])
def test_messages_quote_a_budgets_limit_in_the_unit_it_was_written_in(budget, text):
    assert budget_limit_text(budget) == text


def test_args_print_positional_first_then_catalog_order_whatever_the_stored_order():
    layer = Layer("conv2d", (Arg("padding", "valid"), Arg("zoom", 1), Arg("kernel", 5), Arg("filters", 8, True)))
    model = ModelSpec("m", (layer,), comments=Comments(("note",), "end"))
    assert format_model(model) == "# note\nmodel m:  # end\n    conv2d 8 kernel=5 padding=valid zoom=1\n"


def test_empty_document_and_comment_only_document():
    assert format_document(Document()) == ""
    assert format_text("\n\n") == ""
    assert format_text("#a\n\n  #  b\n") == "# a\n#  b\n"


def test_output_ends_with_exactly_one_newline():
    assert format_text("model m:\n    relu\n\n\n\n").endswith("relu\n")
    assert format_text("model m:\n    relu").endswith("relu\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_round_trip_of_generated_documents(doc):
    text = format_document(doc)
    result = parse(text)
    assert result.diagnostics == ()
    assert result.document == doc
    assert format_document(result.document) == text


@settings(max_examples=50, deadline=None)
@given(models())
def test_format_model_is_one_block_that_parses_back(model):
    text = format_model(model)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert parse(text).document.models == (model,)


def test_an_indented_comment_at_the_end_of_a_model_stays_with_it():
    text = ("model a:\n    conv2d 16\n    dense 10\n      # tried dense 64 here\n\n"
            "# b: the wide one\nmodel b:\n    dense 10\n    # the end of b\n# the end of the file\n")
    formatted = format_text(text)
    assert formatted == ("model a:\n    conv2d 16\n    dense 10\n    # tried dense 64 here\n\n"
                         "# b: the wide one\nmodel b:\n    dense 10\n    # the end of b\n\n# the end of the file\n")
    assert format_text(formatted) == formatted
    doc = parse(text).document
    a, b = doc.models
    assert a.final_comments == ("tried dense 64 here",) and b.comments.leading == ("b: the wide one",)
    assert b.final_comments == ("the end of b",) and doc.final_comments == ("the end of the file",)
    # the model's block takes its closing comment in, so what is inserted after the model goes after it
    assert a.range.end == (3, len("      # tried dense 64 here"))


def test_a_model_without_layers_keeps_its_indented_comments():
    text = "model todo:\n    # conv2d 16, then pool\n"
    assert format_text(text) == text
    assert parse(text).document.models[0].final_comments == ("conv2d 16, then pool",)
