"""Formatting with the canonical printer; a document with syntax errors is left as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.language.parser import split_lines
from remapdsl.language.printer import format_text

if TYPE_CHECKING:
    from ..server import RemapServer


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    async def formatting(ls: RemapServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        document = ls.workspace.text_documents.get(params.text_document.uri)
        if document is None:
            return None
        text = document.source
        formatted = await ls.run_blocking(format_text, text)
        if formatted is None:
            ls.log(f"{params.text_document.uri} has syntax errors; not formatted")
            return []
        if "\r\n" in text:
            formatted = formatted.replace("\n", "\r\n")
        if formatted == text:
            return []
        # one edit over the whole text, ending exactly at its end in the client's units
        lines = split_lines(text)
        end = ls.workspace.position_codec.position_to_client_units(
            lines, types.Position(len(lines) - 1, len(lines[-1])))
        return [types.TextEdit(types.Range(types.Position(0, 0), end), formatted)]
