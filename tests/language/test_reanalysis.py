"""Re-analysing an edited document gives exactly what a fresh analysis gives, ranges included, while the
models the edit did not touch keep their earlier results."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.parser import parse
from remapdsl.language.reanalysis import reanalyze, unchanged_lines
from tests.paths import EXAMPLES

TEXT = """\
data digits
train epochs=1
budget params <= 20k

# the baseline
model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model flat:
    dense 64
    dense 12

model wide from small:
    conv2d 64 kernel=7
    relu
    maxpool 2
    flatten
    dense 10
"""


def fresh(text: str) -> Analysis:
    result = parse(text)
    return analyze(result.document, result.diagnostics)


def again(before: str, after: str) -> Analysis:
    return reanalyze(fresh(before), before, after, parse(after))


def assert_same(found: Analysis, expected: Analysis) -> None:
    """Field by field, with the ranges that dataclass equality leaves out."""

    def diagnostics(a: Analysis) -> list[tuple[object, ...]]:
        return [(d.range, d.message, d.severity, d.code, d.model, d.fix) for d in a.diagnostics]

    assert diagnostics(found) == diagnostics(expected)
    assert found.dataset == expected.dataset and list(found.models) == list(expected.models)
    for name, info in found.models.items():
        want = expected.models[name]
        assert info.model.range == want.model.range and info.model.name_range == want.model.name_range
        assert info == want
        for got_layer, want_layer in zip(info.layers, want.layers, strict=True):
            assert got_layer.layer.range == want_layer.layer.range
        assert [(d.range, d.fix) for d in info.diagnostics] == [(d.range, d.fix) for d in want.diagnostics]
    # the later definitions of taken names, analysed on their own
    assert found.duplicates == expected.duplicates
    assert [d.model.range for d in found.duplicates] == [d.model.range for d in expected.duplicates]


def test_models_away_from_the_edit_keep_their_analysis_objects():
    before = fresh(TEXT)
    after_text = TEXT.replace("dense 64", "dense 32")
    result = parse(after_text)
    after = reanalyze(before, TEXT, after_text, result)
    assert_same(after, fresh(after_text))
    # above the edit: the same layer analyses; the edited model is new; below it: moved by no lines
    assert after.models["small"].layers is before.models["small"].layers
    assert after.models["flat"].layers is not before.models["flat"].layers
    # every model refers to the new document's objects, so callers may compare them by identity
    assert all(info.model is model for info, model in zip(after.models.values(), result.document.models,
                                                          strict=True))


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("model flat:\n", "model flat:\n    flatten\n"),  # a line added inside a model
    lambda t: t.replace("    relu\n", "", 1),  # a line removed
    lambda t: "\n\n" + t,  # everything moves down
    lambda t: t.replace("# the baseline\n", ""),  # everything below moves up
    lambda t: t.replace("kernel=7", "kernel=7 stride=2"),  # an error fixed... or made
    lambda t: t.replace("budget params <= 20k", "budget params <= 5k"),  # the budget: every model again
    lambda t: t.replace("data digits", "data cifar10 \"nowhere\""),  # the data: every model again
    lambda t: t.replace("model flat:", "model small:"),  # a duplicate name
    lambda t: t.replace("model flat:", "model small:") + "model small:\n    conv3d 1\n",  # and another, broken
    lambda t: t.replace("dense 12\n", "dense 12\nmodel x:\n"),  # a new model
    lambda t: t + "    relu\n",  # a layer appended to the last model
    lambda t: t.replace("\n", "\r\n"),  # other line breaks: every line differs
    lambda t: t.replace("    dense 12\n", "    dense 12\n\x0c\n"),  # a form feed is not a line break
])
def test_reanalysis_equals_a_fresh_analysis_after_an_edit(edit):
    after = edit(TEXT)
    assert_same(again(TEXT, after), fresh(after))
    assert_same(again(after, TEXT), fresh(TEXT))  # and back


def test_the_examples_survive_random_line_edits():
    rng = random.Random(7)
    for path in sorted(EXAMPLES.glob("*.remap")):
        text = path.read_text(encoding="utf-8")
        for _ in range(15):
            lines = text.split("\n")
            at = rng.randrange(len(lines))
            choice = rng.randrange(4)
            if choice == 0:
                lines.insert(at, rng.choice(["", "    relu", "    dense 10", "model extra:", "# note"]))
            elif choice == 1:
                del lines[at]
            elif choice == 2:
                lines[at] = lines[at].replace("16", "32").replace("relu", "tanh")
            else:
                lines[at] = lines[at][: rng.randrange(len(lines[at]) + 1)]
            edited = "\n".join(lines)
            assert_same(again(text, edited), fresh(edited))
            text = edited


LINES = st.sampled_from([*TEXT.split("\n"), "    dense 3", "model m:", "\tbad line", ""])


@settings(max_examples=60, deadline=None)
@given(st.lists(LINES, max_size=30), st.lists(LINES, max_size=30))
def test_any_pair_of_texts_reanalyses_like_a_fresh_analysis(first, second):
    before, after = "\n".join(first), "\n".join(second)
    assert_same(again(before, after), fresh(after))


def test_unchanged_lines_never_overlap():
    assert unchanged_lines(["a", "b", "a"], ["a", "b", "a"]) == (3, 0)
    assert unchanged_lines(["a", "a"], ["a", "a", "a"]) == (2, 0)
    assert unchanged_lines(["x", "a", "b"], ["y", "a", "b"]) == (0, 2)
    assert unchanged_lines([], ["a"]) == (0, 0)


def test_models_below_an_inserted_line_are_moved_not_analysed_again():
    before = fresh(TEXT)
    after_text = "# a new first line\n" + TEXT
    after = reanalyze(before, TEXT, after_text, parse(after_text))
    assert_same(after, fresh(after_text))
    for name, info in after.models.items():
        old = before.models[name]
        assert info.model.range.start.line == old.model.range.start.line + 1
        # the per-layer results are carried over (same objects), only their layers and ranges are new
        assert all(new.params is was.params for new, was in zip(info.layers, old.layers, strict=True))
