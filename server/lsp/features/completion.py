"""Completion: layers, parameters, grid values, data sets, model names, annotations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.editor.completion import complete, token_start
from remapdsl.editor.spaces import in_space
from remapdsl.language.parser import split_lines

from ..convert import from_lsp_position

if TYPE_CHECKING:
    from ..server import RemapServer

KINDS = {
    "keyword": types.CompletionItemKind.Keyword,
    "layer": types.CompletionItemKind.Class,
    "parameter": types.CompletionItemKind.Property,
    "value": types.CompletionItemKind.Value,
    "dataset": types.CompletionItemKind.Module,
    "model": types.CompletionItemKind.Reference,
    "annotation": types.CompletionItemKind.Event,
}


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[" ", "=", "@", "(", ","]))
    async def completion(ls: RemapServer, params: types.CompletionParams) -> types.CompletionList | None:
        document = ls.workspace.text_documents.get(params.text_document.uri)
        if document is None:
            return None
        lines = split_lines(document.source)
        at = from_lsp_position(ls.workspace.position_codec, lines, params.position)
        line = lines[at.line] if at.line < len(lines) else ""
        before = line[:at.character]
        # model names may come from an older version of the text: never wait for a new analysis while typing
        uri = params.text_document.uri
        state = ls.documents_cached(uri) or await ls.run_blocking(ls.document_state, uri)
        document_now = state.analysis.document if state else None
        items = complete(before, document_now, document_now is not None and in_space(document_now, at.line))
        start = ls.workspace.position_codec.position_to_client_units(
            lines, types.Position(at.line, token_start(before)))
        replace = types.Range(start, params.position)
        return types.CompletionList(is_incomplete=False, items=[
            types.CompletionItem(label=c.label, kind=KINDS.get(c.kind), detail=c.detail or None,
                                 text_edit=types.TextEdit(replace, c.insert_text or c.label))
            for c in items])
