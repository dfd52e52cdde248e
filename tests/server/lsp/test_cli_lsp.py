"""`remap lsp`: stdio by default (the other tests), TCP on request, and clear usage errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from remapdsl.cli import main

pytestmark = pytest.mark.slow


REMAP = [sys.executable, "-m", "remapdsl", "lsp"]


@pytest.mark.parametrize(("args", "message"), [
    (["--tcp", "localhost"], "--tcp: the port must be a number from 0 to 65535; found 'localhost'"),
    (["--tcp", "127.0.0.1:99999"], "found '99999' in '127.0.0.1:99999'"),
    (["--log-file", "/nonexistent-folder/remap.log"], "cannot write the log file /nonexistent-folder/remap.log"),
])
def test_bad_options_are_usage_errors(args, message, capsys):
    assert main(["lsp", *args]) == 2
    assert message in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_answers_over_tcp(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    server = subprocess.Popen([*REMAP, "--tcp", f"127.0.0.1:{port}", "--log-file", str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        result = asyncio.run(hover_over_tcp(port, (tmp_path / "m.remap").as_uri()))
        assert result is not None and "**m**" in result.contents.value
    finally:
        server.terminate()
        server.wait(10)
    assert log.stat().st_size > 0


async def hover_over_tcp(port: int, uri: str) -> types.Hover | None:
    client = LanguageClient("tcp-test", "1")
    for _ in range(100):  # the server is still starting
        try:
            await client.start_tcp("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri, "remap", 1, "data digits\n\nmodel m:\n    flatten\n    dense 10\n")))
    result = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(2, 6)))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return result
