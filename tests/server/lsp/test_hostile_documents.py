"""Documents whose data lines name what must not be read, or whose text is over the size limit, in a language
server whose address space is capped at 1 GiB (RLIMIT_AS): each gets its diagnostics, and hover, outline, lenses
and completion keep answering on it and on the documents beside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from remapdsl.language.sourcefile import MAX_SOURCE_BYTES
from tests.bombs import gzip_zeros, idx_header, npz_bomb, png_header_only
from tests.server.lsp.session import Session, published, start

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

LIMIT = 1 << 30
CAPPED_SERVER = [sys.executable, "-c", "import resource, runpy; resource.setrlimit(resource.RLIMIT_AS, "
                 f"({LIMIT}, {LIMIT})); runpy.run_module('remapdsl', run_name='__main__')", "lsp"]
MODELS = "\nmodel small:\n    flatten\n    dense 3\n"


@contextlib.asynccontextmanager
async def capped_session(root: Path) -> AsyncIterator[Session]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    client = await ClientServerConfig(server_command=CAPPED_SERVER, server_env=env).start()
    try:
        yield await start(client, "visual-studio-code", root)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 10)
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


async def still_answers(session: Session, uri: str) -> None:
    """Hover, outline, lenses and completion answer on `uri` (whose `model small:` is on line 2)."""
    client = session.client
    document = types.TextDocumentIdentifier(uri)
    hover = await client.text_document_hover_async(types.HoverParams(document, types.Position(2, 7)))
    assert hover is not None and "small" in str(hover.contents)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(document))
    assert "small" in [s.name for s in symbols or []]
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(document))
    assert lenses is not None
    completion = await client.text_document_completion_async(types.CompletionParams(
        document, types.Position(3, 4)))
    assert completion is not None and any(item.label == "conv2d" for item in completion.items)


async def test_hostile_data_lines_get_diagnostics_and_every_feature_keeps_answering(tmp_path):
    npz_bomb(tmp_path / "bomb.npz", (2 << 30) // 64)  # 2 GiB of zeros in about 2 MB
    os.mkfifo(tmp_path / "fifo.npz")
    (tmp_path / "mnist").mkdir()
    for name, dims in (("train-images-idx3-ubyte", (2_000_000, 28, 28)), ("train-labels-idx1-ubyte", (2_000_000,)),
                       ("t10k-images-idx3-ubyte", (4, 28, 28)), ("t10k-labels-idx1-ubyte", (4,))):
        (tmp_path / "mnist" / f"{name}.gz").write_bytes(gzip_zeros(idx_header(0x08, dims), int(np.prod(dims))))
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
    (tmp_path / "imgs" / "a" / "0.png").write_bytes(png_header_only(8, 8))
    (tmp_path / "imgs" / "b" / "0.png").write_bytes(png_header_only(100_000, 100_000))
    long = "a" * 300
    lines = {
        "long.remap": (f'data npz "{long}/d.npz"', "File name too long"),
        "long-mnist.remap": (f'data mnist "{long}"', "File name too long"),
        "stdin.remap": ('data npz "/proc/self/fd/0"', "/proc/self/fd/0 is a "),
        "devstdin.remap": ('data npz "/dev/stdin"', "/dev/stdin is a "),
        "fifo.remap": ('data npz "fifo.npz"', "fifo.npz is a pipe (FIFO)"),
        "bomb.remap": ('data npz "bomb.npz"', "would take 2.0 GiB, over the limit of 1.0 GiB"),
        "list.remap": ('data npz "d.npz" channels=1 size=8 classes=4,5', "classes must be an integer"),
        "mnist.remap": ('data mnist "mnist"', "values would take 1.5 GiB, over the limit of 1.0 GiB"),
        "imgs.remap": ('data folder "imgs"', "imgs/b/0.png declares more pixels than the limit of 89,478,485"),
    }
    async with capped_session(tmp_path) as session:
        for name, (data, expected) in lines.items():
            path = tmp_path / name
            text = f"{data}\n{MODELS}"
            path.write_text(text)
            uri = session.editor.open(path, text)
            found = await published(session, uri, timeout=30)
            assert any(expected in d.message and d.range.start.line == 0 for d in found), (name, found)
            await still_answers(session, uri)
        # the server's own input was never read as data: it still answers a document opened last
        path = tmp_path / "plain.remap"
        path.write_text(f"data digits\n{MODELS}")
        uri = session.editor.open(path, path.read_text())
        assert [d.message for d in await published(session, uri)] == [
            "the classifier head must have 10 units, one per class; found 3"]


async def test_a_text_over_the_size_limit_gets_one_diagnostic_on_open_and_on_change(tmp_path):
    async with capped_session(tmp_path) as session:
        path = tmp_path / "big.remap"
        big = "model m:\n    dense 10\n" * (MAX_SOURCE_BYTES // 20)
        uri = session.editor.open(path, big)
        found = await published(session, uri, timeout=30)
        assert len(found) == 1 and "a .remap file may hold at most 8.0 MiB" in found[0].message
        session.editor.change(uri, f"data digits\n{MODELS}")
        assert len(await published(session, uri)) == 1  # the head's units, analysed again
        session.editor.change(uri, big + "model n:\n")
        found = await published(session, uri, timeout=30)
        assert len(found) == 1 and "so it is not analysed" in found[0].message
