"""Model names as symbols: definition, references, rename, and the model around a position."""

from __future__ import annotations

import pytest

from remapdsl.editor.navigation import RenameError, definition, name_at, references, rename
from remapdsl.language.model import Position
from remapdsl.language.parser import parse

TEXT = """\
data digits

model small:
    flatten
    dense 10

model wide from small:
    flatten
    dense 10

model wider from wide:
    flatten
    dense 10
"""
DOC = parse(TEXT).document


def apply(text: str, edits) -> str:  # type: ignore[no-untyped-def]
    lines = text.splitlines(keepends=True)
    for e in sorted(edits, key=lambda e: e.range.start, reverse=True):
        line = lines[e.range.start.line]
        lines[e.range.start.line] = line[:e.range.start.character] + e.new_text + line[e.range.end.character:]
    return "".join(lines)


def test_names_on_model_lines_and_after_from():
    assert name_at(DOC, Position(2, 8)).name == "small"
    assert name_at(DOC, Position(6, len("model wide from sm"))).name == "small"
    assert name_at(DOC, Position(3, 5)) is None and name_at(DOC, Position(0, 0)) is None


def test_definition_and_references():
    assert definition(DOC, "small") == DOC.model("small").name_range
    assert [r.start.line for r in references(DOC, "wide")] == [6, 10]
    assert [r.start.line for r in references(DOC, "wide", include_definition=False)] == [10]
    assert definition(DOC, "nothing") is None and references(DOC, "nothing") == []


def test_rename_changes_the_definition_and_every_from():
    renamed = apply(TEXT, rename(DOC, Position(10, len("model wider from w")), "base"))
    assert "model base from small:" in renamed and "model wider from base:" in renamed
    assert parse(renamed).document.model("base") is not None


@pytest.mark.parametrize(("new", "why"), [("wider", "already exists"), ("9x", "not a valid"), ("from", "not a valid"),
                                          ("a b", "not a valid")])
def test_bad_renames_say_why(new: str, why: str):
    with pytest.raises(RenameError, match=why):
        rename(DOC, Position(6, 7), new)
    with pytest.raises(RenameError, match="only model names"):
        rename(DOC, Position(3, 5), "x")
