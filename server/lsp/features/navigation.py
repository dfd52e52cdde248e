"""Go to definition, find references and rename, for model names and `from` parents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from remapdsl.editor.navigation import RenameError, definition, name_at, references, rename

from ..convert import from_lsp_position, to_lsp_range

if TYPE_CHECKING:
    from remapdsl.language.model import Range

    from ..documents import DocumentState
    from ..server import RemapServer


def register(server: RemapServer) -> None:
    # (state, name) or (None, None): callers test the name, which mypy cannot carry over to the state
    async def state_and_name(ls: RemapServer, uri: str, position: types.Position):  # type: ignore[no-untyped-def]
        state: DocumentState | None = await ls.run_blocking(ls.document_state, uri)
        if state is None:
            return None, None
        at = from_lsp_position(ls.workspace.position_codec, state.lines, position)
        return state, name_at(state.analysis.document, at)

    def location(ls: RemapServer, state: DocumentState, r: Range) -> types.Location:
        return types.Location(state.uri, to_lsp_range(ls.workspace.position_codec, state.lines, r))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def goto_definition(ls: RemapServer, params: types.DefinitionParams) -> types.Location | None:
        state, found = await state_and_name(ls, params.text_document.uri, params.position)
        if found is None:
            return None
        target = definition(state.analysis.document, found.name)
        return location(ls, state, target) if target is not None else None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def find_references(ls: RemapServer, params: types.ReferenceParams) -> list[types.Location]:
        state, found = await state_and_name(ls, params.text_document.uri, params.position)
        if found is None:
            return []
        return [location(ls, state, r) for r in references(state.analysis.document, found.name,
                                                           params.context.include_declaration)]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(ls: RemapServer, params: types.PrepareRenameParams) -> types.PrepareRenamePlaceholder:
        state, found = await state_and_name(ls, params.text_document.uri, params.position)
        if found is None:
            raise JsonRpcInvalidParams("only model names can be renamed; put the cursor on a name after 'model' "
                                       "or 'from'")
        return types.PrepareRenamePlaceholder(to_lsp_range(ls.workspace.position_codec, state.lines, found.range),
                                              found.name)

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    async def rename_model(ls: RemapServer, params: types.RenameParams) -> types.WorkspaceEdit:
        state = await ls.run_blocking(ls.document_state, params.text_document.uri)
        if state is None:
            raise JsonRpcInvalidParams(f"{params.text_document.uri} is not open")
        at = from_lsp_position(ls.workspace.position_codec, state.lines, params.position)
        try:
            edits = rename(state.analysis.document, at, params.new_name)
        except RenameError as e:
            raise JsonRpcInvalidParams(str(e)) from None
        codec = ls.workspace.position_codec
        return types.WorkspaceEdit(changes={state.uri: [
            types.TextEdit(to_lsp_range(codec, state.lines, e.range), e.new_text) for e in edits]})
