"""The editor's side of the protocol, for tests: open documents, apply edits as a client does (refusing an
edit for another version), run a code action as the client named runs it (resolve, apply, then its command),
and record what the server sends on its own: applied edits, code lens refreshes, `remap/queueProgress`
notifications.

How clients run a code action: VS Code and Neovim resolve one that lacks an edit or a command; Eglot 1.16+ resolves only
one that has neither an edit nor a command; Eglot 1.9 never resolves, and sends the action's command before
the didChange of the edit it applied.

Test documents are ASCII, so positions in UTF-16 units are string indexes.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pytest_lsp import LanguageClient

QUEUE_PROGRESS = "remap/queueProgress"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Editor:
    def __init__(self, client: LanguageClient, name: str = "visual-studio-code") -> None:
        self.client = client
        self.name = name  # the client snapshot, whose way of running code actions this editor follows
        _read_code_actions_as_clients_do(client)
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.lens_refreshes = 0
        self.queue_progress: list[dict[str, Any]] = []
        self.applied: list[types.WorkspaceEdit] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(_: LanguageClient, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            applied = self.apply(params.edit)
            return types.ApplyWorkspaceEditResult(applied=applied,
                                                  failure_reason=None if applied else "the document changed")

        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def code_lens_refresh(_: LanguageClient, params: None) -> None:
            self.lens_refreshes += 1

        @client.feature(QUEUE_PROGRESS)
        def queue_progress(_: LanguageClient, params: Any) -> None:
            self.queue_progress.append(params if isinstance(params, dict) else _plain(params))

    def open(self, path: Path, text: str) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        self.texts[uri], self.versions[uri] = text, 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="remap", version=1, text=text)))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        del self.texts[uri], self.versions[uri]

    def edited(self, edit: types.WorkspaceEdit) -> dict[str, str] | None:
        """The texts the edit would leave, by uri; None when it is for a version the editor no longer has."""
        out: dict[str, str] = {}
        changes: list[tuple[str, int | None, list[types.TextEdit]]] = []
        for uri, edits in (edit.changes or {}).items():
            changes.append((uri, None, list(edits)))
        for change in edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            changes.append((change.text_document.uri, change.text_document.version, list(change.edits)))
        for uri, version, edits in changes:
            if version is not None and version != self.versions[uri]:
                return None
            out[uri] = apply_text_edits(out.get(uri, self.texts[uri]), edits)
        return out

    def apply(self, edit: types.WorkspaceEdit) -> bool:
        texts = self.edited(edit)
        if texts is None:
            return False
        self.applied.append(edit)
        for uri, text in texts.items():
            self.change(uri, text)
        return True

    async def actions(self, uri: str, start: tuple[int, int], end: tuple[int, int] | None = None,
                      only: list[str] | None = None) -> list[types.CodeAction]:
        end = end or start
        result = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=types.Range(types.Position(*start), types.Position(*end)),
            context=types.CodeActionContext(diagnostics=[], only=only)))
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    async def resolved(self, action: types.CodeAction) -> types.CodeAction:
        if self.name == "eglot-1.9" or action.data is None:
            return action
        if self.name.startswith("eglot") and action.command is not None:
            return action  # Eglot resolves only an action that carries neither an edit nor a command
        if action.edit is None or action.command is None:
            return await self.client.code_action_resolve_async(action)
        return action

    async def execute(self, command: types.Command) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command.command, arguments=command.arguments))

    async def run(self, action: types.CodeAction) -> Any:
        """What a client does when the user picks the action: resolve, apply the edit, run the command."""
        action = await self.resolved(action)
        if self.name == "eglot-1.9" and action.edit is not None and action.command is not None:
            texts = self.edited(action.edit)  # applied in the buffer; the didChange follows the command
            assert texts is not None
            self.applied.append(action.edit)
            result = await self.execute(action.command)
            for uri, text in texts.items():
                self.change(uri, text)
            return result
        if action.edit is not None:
            assert self.apply(action.edit)
        if action.command is not None:
            return await self.execute(action.command)
        return None

    async def wait_for(self, condition: Any, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                raise TimeoutError("the server did not get there in time")
            await asyncio.sleep(0.05)


def _read_code_actions_as_clients_do(client: LanguageClient) -> None:
    """lsprotocol reads any code action with a `command` key as a Command, even a CodeAction whose command is
    an object; clients tell them apart by whether `command` is a string (a Command's identifier)."""
    converter = client.protocol._converter

    def read(value: Any, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(value.get("command"), str) else types.CodeAction
        return converter.structure(value, kind)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], read)  # noqa: UP007


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    def offset(p: types.Position) -> int:
        return min(starts[p.line] + p.character, len(text)) if p.line < len(starts) else len(text)

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


def _plain(value: Any) -> Any:
    """A notification's params as plain JSON-like data (the client may hand over an attrs object)."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
