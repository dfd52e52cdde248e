"""Carrying out a spawn operation for the editor: against the document version it was offered for, off the
event loop, and turned into a WorkspaceEdit the client applies only to that version.

Shared by code action resolve and the `remap.ablate` / `remap.vary` commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Position
from remapdsl.language.parser import split_lines
from remapdsl.search.spawn import Operation, Spawn, spawn

if TYPE_CHECKING:
    from .documents import DocumentState
    from .server import RemapServer


class SpawnFailed(JsonRpcInvalidParams):
    """The operation does not apply to the document as it is; the message says why, in the user's words."""

    MESSAGE = "cannot spawn children"

    @classmethod
    def of(cls, exc: object) -> SpawnFailed:
        return cls(message=str(exc))


async def current_state(ls: RemapServer, uri: str, version: int | None) -> DocumentState:
    """The open document's state (parsed in the thread pool); an error response when it is not open or no
    longer at `version`."""
    state = await ls.run_blocking(ls.document_state, uri)
    if state is None:
        raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
    if version is not None and state.version != version:
        raise JsonRpcContentModified("the document changed after this action was offered; ask for actions again")
    return state


async def compute(ls: RemapServer, uri: str, version: int | None, operation: Operation) -> tuple[DocumentState, Spawn]:
    """The operation's children for the document at `version` (None: as it is now), sampled and validated
    in the thread pool; ContentModified when the document changed meanwhile, so a stale edit never goes out."""
    state = await current_state(ls, uri, version)
    try:
        result = await ls.run_blocking(spawn, state.text, state.analysis, operation)
    except ValueError as e:
        raise SpawnFailed.of(e) from None
    await current_state(ls, uri, state.version)
    return state, result


def workspace_edit(ls: RemapServer, state: DocumentState, edit: TextEdit) -> types.WorkspaceEdit:
    """The edit for the client: versioned, so that the client refuses it on a changed document, where the
    client takes versioned edits; characters in the client's position encoding."""
    codec = ls.workspace.position_codec

    def position(p: Position) -> types.Position:
        if p.character == 0:
            return types.Position(p.line, 0)
        # lines split as the parser and the protocol split them (\r\n, \r, \n), whatever splits the state's
        lines = split_lines(state.text)
        return codec.position_to_client_units(lines, types.Position(p.line, p.character))

    change = types.TextEdit(types.Range(position(edit.range.start), position(edit.range.end)), edit.new_text)
    capabilities = ls.client_capabilities.workspace
    versioned = bool(capabilities and capabilities.workspace_edit and capabilities.workspace_edit.document_changes)
    if versioned:
        document = types.OptionalVersionedTextDocumentIdentifier(uri=state.uri, version=state.version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=document, edits=[change])])
    return types.WorkspaceEdit(changes={state.uri: [change]})


def tell(ls: RemapServer, result: Spawn, what: str) -> None:
    """Say what a spawn left out: a message when nothing was made (the user is waiting for something),
    the client's log otherwise."""
    if not result.children:
        reasons = "; ".join(result.notes) or "nothing to derive"
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, f"{what}: no new models ({reasons})"))
        return
    for note in result.notes:
        ls.window_log_message(types.LogMessageParams(types.MessageType.Info, f"{what}: {note}"))
