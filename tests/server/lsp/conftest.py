"""Fixtures of the language server tests: a session per editor snapshot, shared by a module, and an example
document opened in it (see session.py for the helpers they use)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.paths import EXAMPLES
from tests.server.lsp.session import CLIENTS, SERVER, Session, start


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=CLIENTS, scope="module")
async def session_client(lsp_client: LanguageClient, request: pytest.FixtureRequest,
                         tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    lsp_client.session = await start(lsp_client, request.param, tmp_path_factory.mktemp(request.param))
    yield
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(session_client: LanguageClient) -> Session:
    return session_client.session


@pytest_asyncio.fixture(loop_scope="module")
async def example(session: Session) -> AsyncIterator[str]:
    """The uri of a copy of examples/digits.remap, open in the session's editor; closed afterwards."""
    path = session.path("digits.remap")
    shutil.copyfile(EXAMPLES / "digits.remap", path)
    uri = session.editor.open(path, path.read_text(encoding="utf-8"))
    yield uri
    session.editor.close(uri)
