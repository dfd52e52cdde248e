"""The children of resolved code actions, remembered by token for the `remap.enqueue` command that follows.

A code action's edit is applied by the client later, so an action that should train its children carries a
`remap.enqueue` command naming its edit by a token; the resolve records the children under that token.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

# Resolved code actions whose children are remembered for their `remap.enqueue` command.
REMEMBERED = 256


class SpawnedChildren:
    """One server's tokens and the children recorded under them (the most recent `REMEMBERED`)."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        self._children: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()

    def new_token(self) -> str:
        return f"spawn-{next(self._tokens)}"

    def remember(self, token: str, uri: str, names: Sequence[str]) -> None:
        """Record the children a resolved code action adds to the document at `uri`."""
        if not names:
            return
        self._children[token] = (uri, tuple(names))
        while len(self._children) > REMEMBERED:
            self._children.popitem(last=False)

    def recall(self, token: str, uri: str) -> tuple[str, ...]:
        """The children recorded under `token` for the document at `uri` (none when the resolve failed)."""
        recorded_uri, names = self._children.pop(token, ("", ()))
        return names if recorded_uri == uri else ()
