"""Folding ranges: each model, and each residual block from its line to its last layer; each space and each
choice in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.editor.blocks import folding_ranges
from remapdsl.editor.spaces import space_folding_ranges

if TYPE_CHECKING:
    from ..server import RemapServer


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_FOLDING_RANGE)
    async def folding_range(ls: RemapServer, params: types.FoldingRangeParams) -> list[types.FoldingRange] | None:
        state = await ls.run_blocking(ls.document_state, params.text_document.uri)
        if state is None:
            return None
        return [types.FoldingRange(start, end, kind=types.FoldingRangeKind.Region)
                for start, end in [*folding_ranges(state.analysis.document),
                                   *space_folding_ranges(state.analysis.document)]]
