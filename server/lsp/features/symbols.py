"""The outline: header lines, and each model with its layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from remapdsl.editor.spaces import position_label
from remapdsl.language.model import Document, Range
from remapdsl.language.printer import layer_text

from ..convert import to_lsp_range

if TYPE_CHECKING:
    from ..server import RemapServer


def outline(document: Document, codec: PositionCodec, lines: Sequence[str],
            params: dict[str, int], sizes: dict[str, str] | None = None) -> list[types.DocumentSymbol]:
    """Header lines, spaces (their size as detail, positions as children) and models (layers as children)."""
    sizes = sizes or {}

    def r(x: Range) -> types.Range:
        return to_lsp_range(codec, lines, x)

    out: list[types.DocumentSymbol] = []
    if document.data is not None:
        out.append(types.DocumentSymbol("data", types.SymbolKind.Module, r(document.data.range),
                                        r(document.data.range), detail=document.data.name))
    if document.train is not None:
        out.append(types.DocumentSymbol("train", types.SymbolKind.Property, r(document.train.range),
                                        r(document.train.range)))
    for budget in document.budgets:
        out.append(types.DocumentSymbol(f"budget {budget.metric}", types.SymbolKind.Constant, r(budget.range),
                                        r(budget.range)))
    for space in document.spaces:
        positions = [types.DocumentSymbol(position_label(space, i), types.SymbolKind.Field, r(p.range),
                                          r(p.kind_range)) for i, p in enumerate(space.positions)]
        out.append(types.DocumentSymbol(space.name, types.SymbolKind.Namespace, r(space.range), r(space.name_range),
                                        detail=sizes.get(space.name), children=positions))
    for model in document.models:
        layers = [types.DocumentSymbol(f"{i} {layer_text(layer)}", types.SymbolKind.Field, r(layer.range),
                                       r(layer.kind_range))
                  for i, layer in enumerate(model.layers)]
        detail = " · ".join(filter(None, (f"from {model.parent}" if model.parent else "",
                                          f"{params[model.name]:,} params" if model.name in params else "")))
        out.append(types.DocumentSymbol(model.name, types.SymbolKind.Class, r(model.range), r(model.name_range),
                                        detail=detail or None, children=layers))
    return out


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(ls: RemapServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        state = await ls.run_blocking(ls.document_state, params.text_document.uri)
        if state is None:
            return []
        counts = {name: info.param_count for name, info in state.analysis.models.items() if info.valid}
        sizes = {name: info.summary() for name, info in state.analysis.spaces.items()}
        return outline(state.analysis.document, ls.workspace.position_codec, state.lines, counts, sizes)
