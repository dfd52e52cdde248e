"""`/?model=HASH` selects a model (a hash, or a prefix of one that names one model, or a model's name): the
language server's "show in overview" link and the editor's "Open model overview" command open such pages."""

from __future__ import annotations

import numpy as np
from remapdsl_server.overview.state import OverviewState

MAX_ARGUMENT = 200


def resolve(state: OverviewState, wanted: str) -> str | None:
    """The hash the link names, or None when the population has no such model or several."""
    hashes = np.asarray(state.population.hash, dtype=str)
    exact = hashes[hashes == wanted]
    if len(exact):
        return str(exact[0])
    if len(wanted) >= 4:
        prefixed = hashes[np.char.startswith(hashes, wanted)]
        if len(prefixed) == 1:
            return str(prefixed[0])
    named = hashes[np.asarray(state.population.name, dtype=str) == wanted]
    return str(named[-1]) if len(named) else None


def apply(state: OverviewState, arguments: dict[str, list[bytes]]) -> None:
    values = arguments.get("model") or []
    if not values:
        return
    raw = values[0][:MAX_ARGUMENT]
    wanted = raw.decode("utf-8", "replace").strip()
    found = resolve(state, wanted) if wanted else None
    if found is None:
        state.report("link", f"?model={wanted!r} names no model of this store (a hash, a unique hash prefix of 4 or "
                             "more characters, or a model's name)")
        return
    state.select(found)
