"""The children code actions spawned, remembered by token for the `remap.enqueue` command that follows.

A code action's edit is applied by the client, and its `remap.enqueue` command may reach the server before
the client's didChange does (Eglot 1.9 sends the command first). So the command names its spawn by a token,
and the server keeps, under that token, the children's names and the text the edit makes: the children can be
queued from that text without waiting for the document to catch up.
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from remapdsl.language.diagnostics import TextEdit

# Spawns remembered for their `remap.enqueue` command: the most recent ones, within both bounds.
REMEMBERED = 256
REMEMBERED_CHARACTERS = 32_000_000

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Spawned:
    """What one code action adds to the document at `uri`: its children, and the whole text once added."""

    uri: str
    names: tuple[str, ...]
    text: str


class SpawnedChildren:
    """One server's tokens and the spawns recorded under them (the most recent, within the bounds)."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        self._spawned: OrderedDict[str, Spawned] = OrderedDict()
        self._characters = 0

    def new_token(self) -> str:
        return f"spawn-{next(self._tokens)}"

    def remember(self, token: str, uri: str, names: Sequence[str], text: str) -> None:
        """Record the children an action adds to the document at `uri`, and the text holding them."""
        if not names:
            return
        self._drop(token)
        self._spawned[token] = Spawned(uri, tuple(names), text)
        self._characters += len(text)
        while len(self._spawned) > REMEMBERED or self._characters > REMEMBERED_CHARACTERS:
            self._drop(next(iter(self._spawned)))

    def recall(self, token: str, uri: str) -> Spawned | None:
        """The spawn recorded under `token` for the document at `uri`; None when unknown, expired or for
        another document."""
        spawned = self._spawned.get(token)
        return spawned if spawned is not None and spawned.uri == uri else None

    def _drop(self, token: str) -> None:
        spawned = self._spawned.pop(token, None)
        if spawned is not None:
            self._characters -= len(spawned.text)


def edited_text(text: str, edit: TextEdit) -> str:
    """`text` with `edit` applied (positions in characters, lines split as the parser splits them)."""
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    def offset(line: int, character: int) -> int:
        return min(starts[line] + character, len(text)) if line < len(starts) else len(text)

    start = offset(edit.range.start.line, edit.range.start.character)
    end = offset(edit.range.end.line, edit.range.end.character)
    return text[:start] + edit.new_text + text[end:]
