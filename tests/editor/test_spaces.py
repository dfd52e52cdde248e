"""Editor texts for spaces: hovers of space lines and choices, completion inside a space."""

from __future__ import annotations

from remapdsl.editor.completion import complete
from remapdsl.editor.spaces import choice_hover, in_space, position_label, space_folding_ranges, space_hover
from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse

TEXT = ("data digits\nbudget params <= 5k\n\nspace s:\n    choice:\n        conv2d 16 kernel=3\n"
        "        conv2d 32 kernel=5\n        skip\n    relu\n    maxpool 2|4\n    flatten\n    dense 10\n\n"
        "model m from space s:\n    flatten\n    dense 10\n")


def test_a_space_hover_gives_size_validity_parameters_and_budget():
    analysis = analyze(parse(TEXT).document)
    text = space_hover(analysis.spaces["s"])
    assert "**space s** — 5 positions, 2 of them choices" in text
    assert "6 paths" in text and "6 valid models" in text
    assert " parameters" in text and "over it and left out" in text


def test_a_space_with_an_unreadable_option_says_why_validity_is_unknown():
    analysis = analyze(parse(TEXT.replace("    relu\n", "    relux\n")).document)
    assert "known once the data line names a data set and every option reads" in space_hover(analysis.spaces["s"])


def test_a_choice_hover_lists_its_alternatives_and_cuts_long_lists():
    space = parse(TEXT).document.spaces[0]
    text = choice_hover(space, 0)
    assert "3 alternatives" in text and "`skip`" in text and "1/3 of the paths" in text
    many = parse("space t:\n    dense " + "|".join(str(i) for i in range(1, 31)) + "\n").document.spaces[0]
    assert "and 18 more" in choice_hover(many, 0)


def test_completion_offers_choice_and_skip_in_a_space_and_spaces_after_from_space():
    document = parse(TEXT).document
    assert in_space(document, 8) and not in_space(document, 15) and not in_space(document, 0)
    inside = [c.label for c in complete("    ", document, in_space=True)]
    assert "choice" in inside and "skip" in inside and "residual" not in inside
    assert [c.label for c in complete("model n from space ", document)] == ["s"]
    assert [c.label for c in complete("model n from ", document)] == ["m", "space"]
    assert "space" in [c.label for c in complete("", document)]


def test_spaces_and_their_choices_fold_and_list_their_positions():
    document = parse(TEXT).document
    assert space_folding_ranges(document) == [(3, 11), (4, 7)]
    space = document.spaces[0]
    assert position_label(space, 0) == "0 choice of 3: conv2d 16 kernel=3 | conv2d 32 kernel=5 | skip"
    assert position_label(space, 1) == "1 relu"
    assert position_label(space, 2) == "2 choice of 2: maxpool 2 | maxpool 4"
