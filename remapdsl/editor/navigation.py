"""Model names as symbols: where a name is defined, where it is used (`from NAME`), and renaming it."""

from __future__ import annotations

from dataclasses import dataclass

from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Document, Position, Range
from remapdsl.language.parser import KEYWORDS, NAME_RE

# Words a model cannot be called: the statement keywords, and `from`, which the model line reads as the parent.
RESERVED = KEYWORDS | {"from"}


class RenameError(ValueError):
    """A rename that cannot be done; the message says why."""


@dataclass(frozen=True)
class NameAt:
    name: str
    range: Range  # the occurrence under the position


def name_at(document: Document, position: Position) -> NameAt | None:
    """The model name under `position`: on a `model NAME` line or after `from`."""
    for model in document.models:
        if model.name_range.contains(position):
            return NameAt(model.name, model.name_range)
        if model.parent is not None and model.parent_range is not None and model.parent_range.contains(position):
            return NameAt(model.parent, model.parent_range)
    return None


def definition(document: Document, name: str) -> Range | None:
    """Where `name` is defined: the name on its (first) `model` line."""
    model = document.model(name)
    return model.name_range if model is not None else None


def references(document: Document, name: str, include_definition: bool = True) -> list[Range]:
    out = []
    for model in document.models:
        if include_definition and model.name == name:
            out.append(model.name_range)
        if model.parent == name and model.parent_range is not None:
            out.append(model.parent_range)
    return sorted(out)


def rename(document: Document, position: Position, new_name: str) -> list[TextEdit]:
    """Edits that rename the model under `position` on its `model` line and after every `from`."""
    found = name_at(document, position)
    if found is None:
        raise RenameError("only model names can be renamed; put the cursor on a name after 'model' or 'from'")
    if not NAME_RE.fullmatch(new_name) or new_name in RESERVED:
        raise RenameError(f"'{new_name}' is not a valid model name: use letters, digits and _, starting with a "
                          "letter, and not a keyword")
    if new_name != found.name and document.model(new_name) is not None:
        raise RenameError(f"a model named '{new_name}' already exists")
    return [TextEdit(r, new_name) for r in references(document, found.name)]
