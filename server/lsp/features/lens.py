"""Code lenses: above each model, `params · accuracy · status`, and Train, Ablate and Vary.

The status comes from the store: not trained, queued, training epoch k of n, done, failed (the reason),
cancelled. All of a document's models are looked up in one query, in the thread pool, on a read-only
connection of the request's own; the progress watcher asks the client to refresh the lenses when the store changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.language.analysis import Analysis
from remapdsl.search.changes import over_budget
from remapdsl.snac.geometry import si_number
from remapdsl.store.db import Store
from remapdsl.store.status import NOT_TRAINED, ModelStatus, model_hashes, model_statuses, run_key

from ..commands import ABLATE, TRAIN, VARY

if TYPE_CHECKING:
    from ..server import RemapServer

# Lenses with this command only show their title: the status is text, not a button.
NO_COMMAND = ""


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    async def code_lens(ls: RemapServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        ls.watch_stores()
        uri = params.text_document.uri
        state = await ls.run_blocking(ls.document_state, uri)
        if state is None:
            return []
        return await ls.run_blocking(document_lenses, uri, ls.store_path(uri), state.analysis)


def document_lenses(uri: str, store: Path | None, analysis: Analysis) -> list[types.CodeLens]:
    return lenses(uri, analysis, read_statuses(store, analysis))


def read_statuses(store: Path | None, analysis: Analysis) -> dict[str, ModelStatus]:
    """The status of each valid model of the document, by name (from the store at `store`, if there is one)."""
    valid = [info.model for info in analysis.models.values() if info.valid]
    if store is None or not store.exists() or not valid:
        return {}
    hashes = model_hashes(valid)
    data_text, settings_key = run_key(analysis.document)
    with Store.open_read_only(store, timeout=1.0) as opened:
        by_hash = model_statuses(opened, set(hashes.values()), data_text, settings_key)
    return {name: by_hash[h] for name, h in hashes.items() if h in by_hash}


def lenses(uri: str, analysis: Analysis, statuses: dict[str, ModelStatus]) -> list[types.CodeLens]:
    out: list[types.CodeLens] = []
    for name, info in analysis.models.items():
        line = info.model.range.start.line
        where = types.Range(types.Position(line, 0), types.Position(line, 0))

        def lens(title: str, command: str = NO_COMMAND, arguments: list[object] | None = None,
                 at: types.Range = where) -> types.CodeLens:
            return types.CodeLens(at, types.Command(title, command, arguments=arguments))

        oversized = over_budget(info)  # what ablation is for: the model can still have children
        if not info.valid and not oversized:
            out.append(lens("has errors: fix them to train or vary it"))
            continue
        status = statuses.get(name, NOT_TRAINED)
        parts = [f"{si_number(info.param_count)} params"]
        if status.accuracy is not None:
            parts.append(f"{100 * status.accuracy:.1f}%")
        parts.append("over the budget" if oversized else status.text())
        out.append(lens(" · ".join(parts)))
        if info.valid and status.state not in ("queued", "training", "done"):
            out.append(lens("Train", TRAIN, [uri, [name]]))
        if analysis.dataset is not None:  # the commands say why, should a syntax error in the block stop them
            out.append(lens("Ablate", ABLATE, [uri, name]))
            out.append(lens("Vary", VARY, [uri, name]))
    return out
