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
CLIENTS = ["visual-studio-code", "neovim", "eglot-1.9", "eglot-1.17"]


def _eglot(version: str) -> types.ClientCapabilities:
    """Eglot's capabilities, from `eglot-client-capabilities` in eglot.el: pytest-lsp's Emacs 29.1 snapshot,
    with code actions as that version declares them. 1.9 resolves nothing; from 1.16 on, Eglot resolves the
    edit and the command of an action that comes with neither, and keeps its data."""
    capabilities = client_capabilities("emacs")
    code_action = capabilities.text_document.code_action
    if version == "1.9":
        code_action.resolve_support, code_action.data_support = None, None
    else:
        code_action.resolve_support = types.ClientCodeActionResolveOptions(properties=["edit", "command"])
        code_action.data_support = True
    return capabilities


def snapshot(name: str) -> tuple[types.ClientCapabilities, types.ClientInfo | None]:
    """The capabilities and client information an editor sends in its initialize request. VS Code and Neovim
    name themselves; recent Eglot says "Eglot" (eglot.el's `:clientInfo`); the Eglot 1.9 snapshot sends no
    clientInfo, as a terminal Emacs was seen to do."""
    if name == "visual-studio-code":
        return client_capabilities(name), types.ClientInfo("Visual Studio Code", "1.65.2")
    if name == "neovim":
        return client_capabilities(name), types.ClientInfo("Neovim", "0.11.0")
    if name == "eglot-1.9":
        return _eglot("1.9"), None
    if name == "eglot-1.17":
        return _eglot("1.17"), types.ClientInfo("Eglot", "1.17")
    return client_capabilities(name), None


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
    """Initialize `client` as the editor `name` (its capability snapshot and client information, unless
    `capabilities` or `client_info`) on the workspace `root`."""
    store = root / ".remap" / "test.db"
    snapshot_capabilities, snapshot_info = snapshot(name)
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities or snapshot_capabilities, root_uri=root.as_uri(),
        client_info=client_info or snapshot_info,
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), root.name)],
        initialization_options=options(store) if init is None else init))
    session = Session(client, Editor(client, name), root, store, name)
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
