"""Helpers of the language server tests: the server command, starting a session per editor snapshot in a
temp workspace with a store of its own, and waiting for what the server publishes.

A session runs `remap lsp` over stdio with initialization options naming the workspace's store (`storePath`),
auto-train off and a short debounce. Its `editor` (see tests.server.lsp.editor.Editor) keeps the client's copy
of each document, applies `workspace/applyEdit` as an editor does and records what it applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.server.lsp.editor import Editor

SERVER = [sys.executable, "-m", "remapdsl", "lsp"]
CLIENTS = ["visual-studio-code", "neovim"]


@dataclass
class Session:
    client: LanguageClient
    editor: Editor
    root: Path  # the workspace folder
    store: Path  # the store file the server was told to use (created by whoever writes first)
    name: str  # the client snapshot
    diagnostics_versions: dict[str, int | None] = field(default_factory=dict)  # by uri, of the last publication

    def path(self, name: str) -> Path:
        return self.root / name


def options(store: Path, **more: Any) -> dict[str, Any]:
    """Initialization options for a test session: this store, no training, a short debounce."""
    return {"storePath": str(store), "autoTrain": False, "startWorker": False, "debounceMs": 20, **more}


async def start(client: LanguageClient, name: str, root: Path, init: dict[str, Any] | None = None,
                client_info: types.ClientInfo | None = None,
                capabilities: types.ClientCapabilities | None = None) -> Session:
    """Initialize `client` as the editor `name` (its capability snapshot, unless `capabilities`) on the
    workspace `root`."""
    store = root / ".remap" / "test.db"
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities or client_capabilities(name), root_uri=root.as_uri(), client_info=client_info,
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), root.name)],
        initialization_options=options(store) if init is None else init))
    session = Session(client, Editor(client), root, store, name)
    _record_diagnostics_versions(session)
    return session


def _record_diagnostics_versions(session: Session) -> None:
    """pytest-lsp keeps the diagnostics of each uri but not the version they were computed for."""
    features = session.client.protocol.fm.features
    keep = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def publish(params: types.PublishDiagnosticsParams) -> None:
        session.diagnostics_versions[params.uri] = params.version
        keep(params)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish


async def published(session: Session, uri: str, timeout: float = 10.0) -> list[types.Diagnostic]:
    """The diagnostics last published for the editor's current version of `uri`."""
    version = session.editor.versions[uri]
    await session.editor.wait_for(lambda: session.diagnostics_versions.get(uri, -1) == version, timeout)
    return list(session.client.diagnostics[uri])


@contextlib.asynccontextmanager
async def own_session(root: Path, name: str = "visual-studio-code", init: dict[str, Any] | None = None,
                      client_info: types.ClientInfo | None = None,
                      capabilities: types.ClientCapabilities | None = None) -> AsyncIterator[Session]:
    """A server of its own, for a test that needs other initialization options, client information or
    capabilities."""
    client = await ClientServerConfig(server_command=SERVER).start()
    try:
        yield await start(client, name, root, init, client_info, capabilities)
    finally:
        # a failed test still ends its server, which `stop` waits for
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 10)
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


def line_of(text: str, prefix: str) -> int:
    """The number of the first line of `text` that starts with `prefix`."""
    return next(i for i, line in enumerate(text.splitlines()) if line.startswith(prefix))
