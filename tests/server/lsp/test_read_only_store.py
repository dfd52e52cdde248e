"""The language server reads a store it cannot write (a read-only folder): hovers and code lenses show what was
trained, and training from the editor says why it cannot queue there."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.read_only import read_only
from tests.samples import TRAINED, finished_store
from tests.server.lsp.session import SERVER, start

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def test_hovers_and_lenses_read_a_store_in_a_read_only_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    file = ws / "models.remap"
    file.write_text(TRAINED)
    store = ws / ".remap" / "remap.db"
    finished_store(file, store)
    before = sorted(p.name for p in store.parent.iterdir())
    with read_only(store.parent) as wrap:
        client = await ClientServerConfig(server_command=wrap(SERVER)).start()
        try:
            session = await start(client, "visual-studio-code", ws,
                                  {"autoTrain": False, "startWorker": False, "debounceMs": 20})
            uri = session.editor.open(file, TRAINED)
            line = TRAINED.splitlines().index("model small:")
            hover = await client.text_document_hover_async(types.HoverParams(
                types.TextDocumentIdentifier(uri), types.Position(line, 7)))
            assert hover is not None and "validation accuracy **40.0%**" in hover.contents.value
            lenses = await client.text_document_code_lens_async(types.CodeLensParams(types.TextDocumentIdentifier(uri)))
            titles = [lens.command.title for lens in lenses if lens.command and lens.range.start.line == line]
            assert any("40.0%" in title for title in titles), titles
            with pytest.raises(Exception, match="read-only"):
                await session.editor.execute(types.Command("train", "remap.train", arguments=[uri, ["small"]]))
            assert any("cannot train: the store at" in m.message and "read-only" in m.message
                       for m in client.messages)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_session(), 10)
            await client.stop()
    assert sorted(p.name for p in store.parent.iterdir()) == before
