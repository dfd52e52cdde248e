"""Structural neighbours for the model hover: the models of the file closest to the one hovered.

A hover on a 1,000-model file has tens of milliseconds. One row of OTMANN distances against 1,000 models
costs about 10 ms once their profiles are prepared, but hashing and profiling them all costs more, and the
first import of POT about a second. So the server keeps one `ModelSpace` in memory for its whole life
(profiles per architecture hash, prepared profile sets, every distance computed), works out each open
file's members once per version, and imports POT on a thread of its own when it initializes. Hovers never
write to the store.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import weakref
from typing import TYPE_CHECKING

from remapdsl.language.gcpause import collection_paused
from remapdsl.space import otmann
from remapdsl.space.model_space import Members, ModelSpace

if TYPE_CHECKING:
    from .documents import DocumentState

log = logging.getLogger(__name__)
SHOWN = 3


class StructuralNeighbours:
    """The nearest models by OTMANN among those of one open file, for any thread of the server."""

    def __init__(self) -> None:
        # one process: a server forks no workers for a hover's row
        self.space = ModelSpace(workers=1)
        self._lock = threading.Lock()
        self._members: dict[str, tuple[weakref.ref[DocumentState], Members]] = {}
        self._available: bool | None = None

    def warm_up(self) -> None:
        """Import POT now on a thread of its own: neither the event loop nor the request pool waits for it."""
        if self.available():
            threading.Thread(target=otmann.warm_up, name="remap-warm-up", daemon=True).start()

    def available(self) -> bool:
        """Whether OTMANN can run here (POT comes with the optional `distance` extra)."""
        if self._available is None:
            self._available = importlib.util.find_spec("ot") is not None
        return self._available

    def closest(self, state: DocumentState, name: str, k: int = SHOWN) -> list[tuple[str, float]]:
        """The k models of the file closest in structure to `name`, with their distances (OTMANN emd)."""
        if not self.available():
            return []
        # thousands of small acyclic objects (keys, pairs): the cycle collector waits, as it does for parsing
        with collection_paused():
            members = self._members_of(state)
            if name not in members.keys or len(members.keys) < 2:
                return []
            try:
                return [(n.key, n.distance) for n in self.space.neighbours(members, name, k)]
            except Exception:  # the hover shows everything else
                log.exception("structural neighbours of '%s'", name)
                return []

    def _members_of(self, state: DocumentState) -> Members:
        with self._lock:
            cached = self._members.get(state.uri)
        if cached is not None and cached[0]() is state:
            return cached[1]
        members = self.space.structural(state.analysis.models, layer_texts(state))
        with self._lock:
            self._members[state.uri] = (weakref.ref(state), members)
        return members


def layer_texts(state: DocumentState) -> dict[str, str]:
    """Each model's layer lines as written: an edit elsewhere leaves them, and so the model's key, unchanged."""
    lines = state.lines
    return {name: "\n".join(lines[info.model.range.start.line + 1:info.model.range.end.line + 1])
            for name, info in state.analysis.models.items()}
