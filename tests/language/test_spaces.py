"""Search spaces: `space NAME:` blocks of layers and choices, their canonical text, and their analysis (size,
validity of every path, parameter range, budget pruning) checked against enumerating the paths."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remapdsl.language import spaces
from remapdsl.language.analysis import analyze, analyze_model
from remapdsl.language.datasets import describe
from remapdsl.language.model import Choice, Layer
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document, format_text
from remapdsl.language.spaces import SpaceInfo, path_model, paths, show_count
from tests.strategies import documents_with_spaces

SMALL_CNN = """\
data digits
budget params <= 20k

# the first space
space small_cnn:
    choice:  # widths
        conv2d 16 kernel=3
        conv2d 32 kernel=3
        # wide
        conv2d 32 kernel=5
    relu
    choice:
        maxpool 2
        avgpool 2
        skip  # identity: the position may be left out
    conv2d 8|16 kernel=3|5 padding=same
    flatten
    dense 10
    # the end of the space

model m from space small_cnn:
    conv2d 16 kernel=3
    flatten
    dense 10
"""


def space_info(text: str, name: str) -> SpaceInfo:
    result = parse(text)
    assert not result.diagnostics, result.diagnostics
    return analyze(result.document).spaces[name]


def enumerated(text: str, name: str) -> tuple[int, list[int]]:
    """The valid paths' parameter counts, by building and analysing every path as a model."""
    document = parse(text).document
    space = document.space(name)
    assert space is not None
    dataset = describe(document.data)
    counts = []
    total = 0
    for path in paths(space):
        total += 1
        info = analyze_model(path_model(space, path, "p"), dataset)
        if info.valid:
            counts.append(info.param_count)
    return total, counts


def test_a_space_holds_layers_choices_and_shorthand_choices():
    space = parse(SMALL_CNN).document.spaces[0]
    assert space.name == "small_cnn"
    assert [len(space.options(i)) for i in range(len(space.positions))] == [3, 1, 3, 4, 1, 1]
    pool = space.positions[2]
    assert isinstance(pool, Choice) and not pool.shorthand
    assert [o.kind for o in pool.options] == ["maxpool", "avgpool", "skip"]
    shorthand = space.positions[3]
    assert isinstance(shorthand, Choice) and shorthand.shorthand
    assert [(o.arg("filters").value, o.arg("kernel").value) for o in shorthand.options] == [  # type: ignore[union-attr]
        (8, 3), (8, 5), (16, 3), (16, 5)]
    assert isinstance(space.positions[1], Layer)


def test_the_canonical_text_keeps_comments_and_reads_back_equal():
    result = parse(SMALL_CNN)
    text = format_document(result.document)
    assert text == SMALL_CNN
    assert parse(text).document == result.document
    model = result.document.model("m")
    assert model is not None and model.parent == "small_cnn" and model.parent_space


def test_a_shorthand_inside_a_choice_adds_its_alternatives():
    text = "space s:\n    choice:\n        conv2d 8|16\n        skip\n"
    space = parse(text).document.spaces[0]
    assert len(space.options(0)) == 3


def test_size_validity_parameter_range_and_budget_agree_with_every_path():
    info = space_info(SMALL_CNN, "small_cnn")
    total, counts = enumerated(SMALL_CNN, "small_cnn")
    assert info.size == total == 36
    assert info.valid == len(counts) == 36
    assert (info.min_params, info.max_params) == (min(counts), max(counts))
    within = sum(1 for c in counts if c <= 20_000)
    assert 0 < within < len(counts)
    assert info.within_budget == info.within_budget_high == within
    analysis = analyze(parse(SMALL_CNN).document)
    pruned = [d for d in analysis.diagnostics if d.code == "budget-pruned"]
    assert len(pruned) == 1 and f"{36 - within} of 36 valid paths are over the budget" in pruned[0].message


def test_the_first_invalid_combination_is_named_at_its_line():
    text = ("data digits\n\nspace s:\n    conv2d 8 kernel=3\n    choice:\n        maxpool 2\n        flatten\n"
            "    choice:\n        conv2d 8 kernel=3\n        dense 16\n    flatten\n    dense 10\n")
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    bad = [d for d in analysis.diagnostics if d.code == "space-path"]
    assert len(bad) == 1
    assert bad[0].range.start.line == 9  # the first in order: dense 16 after maxpool
    assert "2 of 4 paths are not valid models" in bad[0].message
    assert "maxpool 2 (line 6), dense 16 (line 10)" in bad[0].message
    assert "dense needs a flat input" in bad[0].message
    info = analysis.spaces["s"]
    _, counts = enumerated(text, "s")
    assert info.valid == len(counts) == 2


def test_a_path_that_misses_the_head_is_reported():
    text = "data digits\nspace s:\n    flatten\n    choice:\n        dense 10\n        dense 12\n"
    analysis = analyze(parse(text).document)
    bad = [d for d in analysis.diagnostics if d.code == "space-path"]
    assert bad and "dense 12 (line 6)" in bad[0].message and "classifier head: dense 10" in bad[0].message


def test_bad_options_are_reported_once_per_line():
    text = "data digits\nspace s:\n    conv2d 8|16 kernel=0|3\n    choice:\n        convv 3\n        skip 2\n"
    analysis = analyze(parse(text).document)
    messages = [d.message for d in analysis.diagnostics]
    assert sum("kernel" in m for m in messages) == 1
    assert any("found 'convv'" in m for m in messages)
    assert any("skip takes no parameters" in m for m in messages)


def test_a_space_of_ten_to_the_thirty_paths_is_counted_without_enumerating_it():
    body = "".join("    choice:\n        relu\n        tanh\n        skip\n" for _ in range(63))
    text = f"data digits\nbudget params <= 60k\nspace huge:\n    conv2d 8 kernel=3\n{body}    flatten\n    dense 10\n"
    start = time.perf_counter()
    info = space_info(text, "huge")
    assert time.perf_counter() - start < 2
    assert info.size == 3**63 > 10**30
    assert info.valid == info.size
    assert info.within_budget == info.size  # no choice changes the parameters
    assert show_count(info.size) == "about 10^30"
    assert "about 10^30 paths" in info.summary()


def test_parameter_sums_beyond_the_kept_sizes_give_bounds(monkeypatch):
    body = "".join(f"    choice:\n        dense {1 + i}\n        dense {1 + i + 2**(i % 16)}\n    dense 64\n"
                   for i in range(16))
    text = f"data digits\nbudget params <= 200k\nspace wide:\n    flatten\n    dense 64\n{body}    dense 10\n"
    exact = space_info(text, "wide")
    assert exact.valid == 2**16 and exact.budget_exact
    assert exact.within_budget is not None and 0 < exact.within_budget < exact.valid
    monkeypatch.setattr(spaces, "MAX_SIZES", 100)
    bounded = space_info(text, "wide")
    assert bounded.within_budget is not None and bounded.within_budget_high is not None
    assert bounded.within_budget <= exact.within_budget <= bounded.within_budget_high
    assert not bounded.budget_exact and " to " in bounded.summary()


def test_syntax_errors_of_spaces_say_what_is_wrong():
    cases = {
        "model m:\n    conv2d 8|16\n": "choices belong in a space",
        "data digits k=1|2\n": "only in the layers of a space",
        "space s:\n    choice:\n    relu\n": "this choice is empty",
        "space s:\n    choice:\n        choice:\n            relu\n": "cannot hold another choice",
        "space s:\n    residual:\n        relu\n": "residual blocks are not written inside a space",
        "space s:\n    conv2d 8|8\n": "written twice",
        "space s:\n    choice x:\n        relu\n": "a choice line is just 'choice:'",
        "space s:\n    dense " + "|".join(str(i) for i in range(1, 70)) + " bias=" + "|".join(
            str(i) for i in range(70)) + "\n": "at most 1,024",
    }
    for text, expected in cases.items():
        result = parse(text)
        assert any(expected in d.message for d in result.diagnostics), (text, result.diagnostics)


def test_lineage_names_an_existing_space():
    text = "space s:\n    dense 10\nmodel a from space t:\n    dense 10\nmodel b from s:\n    dense 10\n"
    analysis = analyze(parse(text).document)
    parents = [d for d in analysis.diagnostics if d.code == "parent"]
    assert any("unknown space 't'" in d.message for d in parents)
    assert any("'s' is a space: write 'from space s'" in d.message for d in parents)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents_with_spaces)
def test_documents_with_spaces_print_canonically_and_read_back_equal(document):
    text = format_document(document)
    result = parse(text)
    assert not result.diagnostics, (text, result.diagnostics)
    assert result.document == document
    assert format_text(text) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["space s:", "choice:", "    ", "        ", "skip", "conv2d 8|16", "kernel=3|5",
                                 "dense 10", "flatten", "|", ":", "\n", "model m from space s:", "relu",
                                 "residual:", "# c", "budget params <= 10k", "data digits", "choice", "1|"]),
                max_size=30))
def test_hostile_spaces_give_diagnostics_never_exceptions(pieces):
    text = "".join(p if p in ("\n", "    ", "        ") else p + " " for p in pieces)
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    lines = text.split("\n")
    for d in analysis.diagnostics:
        assert d.message and 0 <= d.range.start.line < len(lines)
    for info in analysis.spaces.values():
        info.summary()
    if not result.diagnostics:
        formatted = format_document(result.document)
        assert parse(formatted).document == result.document


def test_a_model_from_a_space_is_checked_to_be_one_of_its_paths():
    text = SMALL_CNN.replace("model m from space small_cnn:\n    conv2d 16 kernel=3\n    flatten\n    dense 10\n",
                             "model m from space small_cnn:\n    conv2d 32 kernel=5\n    relu\n"
                             "    conv2d 16 kernel=5 padding=same\n    flatten\n    dense 10\n"
                             "model n from space small_cnn:\n    conv2d 32 kernel=5\n    relu\n    maxpool 3\n")
    document = parse(text).document
    space = document.spaces[0]
    m, n = document.models
    assert spaces.find_path(space, m.layers) == (2, 0, 2, 3, 0, 0)
    assert spaces.find_path(space, n.layers) == 2
    analysis = analyze(document)
    warnings = [d for d in analysis.diagnostics if d.code == "parent"]
    assert len(warnings) == 1 and warnings[0].model == "n"
    assert "not a path of space 'small_cnn': its layer 3 (maxpool) is where it leaves the space" in warnings[0].message
    assert spaces.path_model(space, (2, 0, 2, 3, 0, 0), "m").layers == m.layers


def test_hostile_sizes_stay_bounded_in_time_and_memory():
    wide = "dense " + "|".join(str(i) for i in range(1, 1025))
    lines = "".join(f"    {wide}\n" for _ in range(70))
    text = f"data digits\nbudget params <= 1M\nspace s:\n    flatten\n{lines}    dense 10\n"
    start = time.perf_counter()
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    assert time.perf_counter() - start < 20
    # 64 lines of 1,024 alternatives fill the file's 65,536; the rest are refused, each at its line
    refused = [d for d in result.diagnostics if "hold more than 65,536 alternatives" in d.message]
    assert [d.range.start.line for d in refused] == list(range(4 + 64, 4 + 70))
    info = analysis.spaces["s"]
    assert info.size == 1024**64
    assert any(d.code == "space-size" for d in analysis.diagnostics)  # too many shapes: checked as far as it can
    assert info.valid is None and "about 10^192 paths" in info.summary()


def test_the_work_of_checking_a_space_is_bounded_over_all_its_positions():
    # 300 shapes meet 300 options at each of twenty positions: the check stops at its step budget
    wide = "dense " + "|".join(str(i) for i in range(1, 301))
    lines = "".join(f"    {wide}\n" for _ in range(20))
    text = f"data digits\nspace s:\n    flatten\n{lines}    dense 10\n"
    start = time.perf_counter()
    analysis = analyze(parse(text).document)
    assert time.perf_counter() - start < 10
    (warning,) = [d for d in analysis.diagnostics if d.code == "space-size"]
    # 90,000 steps a position after the first: the third such position (line 7) passes 200,000
    assert warning.range.start.line == 6 and "more than 200,000 steps" in warning.message
