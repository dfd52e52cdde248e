"""Requests the server cannot read get an error response naming what was wrong, and the server carries on;
a client response it cannot read fails only the request that waited for it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from concurrent.futures import Future
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcMethodNotFound
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

SERVER = [sys.executable, "-m", "remapdsl", "lsp"]
TEXT = "data digits\n\nmodel m:\n    flatten\n    dense 10\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("protocol")
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=root.as_uri(),
        initialization_options={"autoTrain": False}))
    lsp_client.uri = (root / "m.remap").as_uri()
    lsp_client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(lsp_client.uri, "remap", 1, TEXT)))
    yield
    await lsp_client.shutdown_session()


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """A request sent as given: the client's own typing would refuse to send malformed params."""
    msg_id = str(uuid.uuid4())
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 10)


async def still_answers(client: LanguageClient) -> None:
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(client.uri), types.Position(2, 6)))
    assert hover is not None and "**m**" in hover.contents.value


@pytest.mark.parametrize(("params", "problem"), [
    ({"textDocument": {"uri": "file:///x.remap"}}, "required field missing @ $.params.position"),
    ({"textDocument": {"uri": "file:///x.remap"}, "position": {"line": "two", "character": 0}},
     "expected int @ $.params.position.line"),
    (None, "expected HoverParams @ $.params"),
])
async def test_unreadable_params_get_an_invalid_params_response(client: LanguageClient, params, problem):
    with pytest.raises(JsonRpcInvalidParams) as raised:
        await raw_request(client, types.TEXT_DOCUMENT_HOVER, params)
    assert problem in str(raised.value)
    await still_answers(client)


async def test_an_unknown_method_is_not_found_and_the_server_carries_on(client: LanguageClient):
    with pytest.raises(JsonRpcMethodNotFound):
        await raw_request(client, "remap/noSuchThing", {})
    await still_answers(client)


async def test_a_rename_at_a_negative_line_or_to_a_number_is_refused(client: LanguageClient):
    with pytest.raises(JsonRpcInvalidParams, match=r"\$\.params\.position"):
        await raw_request(client, types.TEXT_DOCUMENT_RENAME, {
            "textDocument": {"uri": client.uri}, "position": {"line": -1, "character": 0}, "newName": "n"})
    with pytest.raises(JsonRpcInvalidParams, match="'3' is not a valid model name"):
        await raw_request(client, types.TEXT_DOCUMENT_RENAME, {
            "textDocument": {"uri": client.uri}, "position": {"line": 2, "character": 6}, "newName": 3})
    await still_answers(client)


async def test_positions_past_the_end_and_unopened_documents_answer_nothing(client: LanguageClient):
    far = types.Position(10_000, 10_000)
    assert await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(client.uri), far)) is None
    assert await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(client.uri), far)) is None
    unknown = types.TextDocumentIdentifier("file:///nowhere/unopened.remap")
    assert await client.text_document_hover_async(types.HoverParams(unknown, types.Position(0, 0))) is None
    assert await client.text_document_document_symbol_async(types.DocumentSymbolParams(unknown)) == []
    await still_answers(client)


async def test_incremental_changes_count_lines_as_the_protocol_does(client: LanguageClient):
    """A form feed or a line separator inside a line does not end it: a change below it lands where the editor
    made it, and the diagnostics point at the editor's lines."""
    uri = client.uri.replace("m.remap", "separators.remap")
    text = "data digits  # a\x0cb\u2028c\n\nmodel m:\n    flatten\n    dense 10\n"
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "remap", 1, text)))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [types.TextDocumentContentChangePartial(types.Range(types.Position(4, 10), types.Position(4, 12)), "12")]))
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(4, 6)))
    assert hover is not None and "→ 12" in hover.contents.value  # the server's copy reads `dense 12`
    for _ in range(200):
        found = client.diagnostics.get(uri)
        if found:
            break
        await asyncio.sleep(0.05)
    [head] = client.diagnostics[uri]
    assert head.range.start == types.Position(4, 10) and "must have 10 units" in head.message
