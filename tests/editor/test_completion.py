"""Completion from the text before the cursor, on lines that may not parse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from remapdsl.editor.completion import complete, token_start
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.parser import parse

DOC = parse("data digits\n\nmodel a:\n    flatten\n    dense 10\n\n"
            "model b from a:\n    flatten\n    dense 10\n").document


def labels(before: str) -> list[str]:
    return [c.label for c in complete(before, DOC)]


def test_what_each_place_offers():
    assert labels("") == ["data", "train", "budget", "model", "space"]
    assert labels("    ") == [*LAYER_TYPES, "residual"]
    assert labels("    residual ") == ["shortcut="] and labels("    residual: ") == []
    assert labels("    conv2d ")[:4] == ["16", "32", "64", "128"] and "kernel=" in labels("    conv2d ")
    assert labels("    conv2d 16 kernel=") == ["kernel=1", "kernel=3", "kernel=5"]
    assert labels("    conv2d 16 padding=") == ["padding=same", "padding=valid"]
    assert labels("    dropout ") == ["0.125", "0.25", "0.375", "0.5", "0.625", "0.75", "0.875"]
    assert "optimizer=" in labels("train epochs=3 ") and labels("train optimizer=") == \
        ["optimizer=adam", "optimizer=adamw", "optimizer=sgd"]
    assert labels("data ")[0] == "digits" and labels("budget ") == ["params", "latency", "size"]
    assert labels("model c from ") == ["a", "b"] and labels("model b from ") == ["a"]
    assert labels("    relu @") == ["@keep", "@allow", "@deny"]
    assert labels("    relu @allow(remove, ") == ["prepend", "remove", "replace", "reparameterize", "wrap", "unwrap"]
    assert labels("    relu  # note ") == [] and labels("    conv3d ") == []


def test_the_replaced_word_starts_after_the_last_space_or_bracket():
    assert token_start("    conv2d 16 ker") == 14
    assert token_start("    relu @allow(remove, rep") == 24


@given(st.text(max_size=40))
def test_any_text_gives_items_never_an_error(before: str):
    for item in complete(before, DOC):
        assert item.label
    assert 0 <= token_start(before) <= len(before)


def test_budgets_offer_the_comparison_then_the_limit_in_each_unit_and_each_one_parses():
    assert labels("budget params ") == ["<=", "<"]
    assert labels("budget params <= 100") == ["100k", "100K", "100M"]
    assert labels("budget latency <= 0.5")[:2] == ["0.5ms", "0.5us"]
    assert labels("budget size <= ") == [] and labels("budget weight <= 5") == []
    for metric in ("params", "latency", "size"):
        for limit in labels(f"budget {metric} <= 2"):
            result = parse(f"budget {metric} <= {limit}\n")
            assert result.ok and result.document.budget(metric) is not None, limit
