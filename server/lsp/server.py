"""The remap language server and what one server keeps: settings, analysed documents, store connections, the
thread pool, the store watcher and its workers, and the children of resolved code actions.

Features (`features/`) take a `RemapServer`; `app.build_server` registers them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from remapdsl import __version__
from remapdsl.store.db import Store, StoreError, default_store_path
from remapdsl.store.status import QueueProgress

from .documents import DocumentCache, DocumentState
from .framing import FrameReader, serve_messages
from .logs import ClientLog
from .neighbours import StructuralNeighbours
from .protocol import RemapProtocol
from .settings import Settings, confined_store, parse_settings
from .spawned import SpawnedChildren
from .watcher import ProgressWatcher
from .worker_process import Workers

T = TypeVar("T")
log = logging.getLogger(__name__)


class RemapServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("remap", __version__, protocol_cls=RemapProtocol)
        self.settings = Settings()
        self.documents = DocumentCache()
        self._documents_lock = threading.Lock()
        # SQLite queries, SVG drawing and variation sampling run here, never on the event loop
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="remap")
        self.refreshers: list[Callable[[str], None]] = []  # called with a URI whose results may have changed
        self.client_log = ClientLog(self)  # attached once the event loop runs (on initialize)
        self.client_info: types.ClientInfo | None = None  # the client's name, from initialize
        self._stores = threading.local()  # a Store connection must not be shared between threads
        self._refused_stores: set[str] = set()  # configured store paths said to be outside the workspace
        self.neighbours = StructuralNeighbours()  # for the model hover; POT is imported on initialize
        self.spawned = SpawnedChildren()  # for the `remap.enqueue` command of resolved code actions
        self.workers = Workers(self._log_worker_line)
        self.watcher = ProgressWatcher(self, self.run_blocking, self.open_stores, self._keep_worker, self.refresh_all)

    def document_state(self, uri: str) -> DocumentState | None:
        """The open document at `uri`, parsed and analysed (cached per version); None if it is not open."""
        document = self.workspace.text_documents.get(uri)
        if document is None:
            return None
        path = to_fs_path(uri) if uri.startswith("file:") else None
        with self._documents_lock:
            return self.documents.get(uri, document.version, document.source, path)

    def documents_cached(self, uri: str) -> DocumentState | None:
        return self.documents.latest(uri)

    def workspace_folders(self) -> list[Path]:
        """The folders the editor opened (the root first), as paths."""
        uris = [self.workspace.root_uri, *(f.uri for f in self.workspace.folders.values())]
        paths = (to_fs_path(uri) for uri in uris if uri and uri.startswith("file:"))
        return [Path(p) for p in dict.fromkeys(p for p in paths if p)]

    def store_path(self, uri: str | None = None) -> Path | None:
        """The store file for the document at `uri`: the configured path (relative to the workspace folder, and
        only inside one), else `.remap/remap.db` beside the file, where `remap train` puts it; without `uri`, the
        workspace's."""
        configured = self.settings.store_path
        if configured:
            path, refused = confined_store(configured, self.workspace_folders())
            if path is not None:
                return path
            # accepted when set, outside the folders now that they changed: the default, said once
            if configured not in self._refused_stores:
                self._refused_stores.add(configured)
                log.warning("the store path %s", refused)
        file = to_fs_path(uri) if uri is not None and uri.startswith("file:") else None
        if file:
            return default_store_path(file)
        folders = self.workspace_folders()
        return folders[0] / ".remap" / "remap.db" if folders else None

    def may_write_store(self, path: Path) -> str:
        """Why the server must not create or write the store at `path` (queue into it, start a worker on it), or ""
        when it may: a store inside a workspace folder, or any when the editor opened no folder (a file on its own,
        whose store lies beside it as `remap train` makes it)."""
        folders = [f.resolve() for f in self.workspace_folders()]
        resolved = path.resolve()
        if not folders or any(resolved.is_relative_to(f) for f in folders):
            return ""
        return (f"the store {resolved} lies outside the workspace folders ({', '.join(map(str, folders))}); the "
                "server creates and trains stores only inside them")

    def store(self, uri: str | None = None) -> Store | None:
        """The store for `uri` (see `store_path`), opened read-only once per thread, for use off the event loop (in
        `run_blocking`). None when there is none yet (reading features never create the `.remap` folder) or when
        it cannot be opened; the reason goes to the client's log."""
        path = self.store_path(uri)
        if path is None or not path.is_file():
            return None
        opened: dict[Path, Store] = self._stores.__dict__.setdefault("by_path", {})
        store = opened.get(path)
        if store is None:
            try:
                store = opened[path] = Store.open_read_only(path)
            except StoreError as e:
                log.warning("%s", e)
                return None
        return store

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def refresh_document(self, uri: str) -> None:
        for refresh in self.refreshers:
            refresh(uri)

    def refresh_all(self) -> None:
        """Recompute what depends on the store (diagnostics of measured budgets) for every open document."""
        for uri in list(self.workspace.text_documents):
            self.refresh_document(uri)

    def watch_stores(self) -> None:
        """Start the store watcher (and with it the worker, when enabled): from the `initialized` handler, and
        again, to no effect, from the code lens and code action handlers and after queueing, so that watching
        begins with the first of them whatever the order. Needs the running event loop."""
        self.watcher.start()

    def open_stores(self) -> set[Path]:
        """The stores of the open documents."""
        paths = (self.store_path(uri) for uri in list(self.workspace.text_documents))
        return {p for p in paths if p is not None}

    def _keep_worker(self, store: Path, progress: QueueProgress) -> None:
        """Keep a worker running while jobs are queued, when the user lets the server start one (on a store it
        may write)."""
        if not (progress.queued and self.settings.start_worker):
            return
        refused = self.may_write_store(store)
        if refused:
            if str(store) not in self._refused_stores:
                self._refused_stores.add(str(store))
                self.log(f"no training worker started: {refused}", types.MessageType.Warning)
            return
        if self.workers.ensure(store):
            self.window_log_message(types.LogMessageParams(types.MessageType.Info,
                                                           f"started a training worker on {store}"))

    def _log_worker_line(self, line: str) -> None:
        # worker output arrives on a reader thread; the client is written to from the event loop only
        loop = self.watcher.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.window_log_message,
                                      types.LogMessageParams(types.MessageType.Log, f"worker: {line}"))

    def apply_settings(self, raw: Any) -> None:
        previous = self.settings
        self.settings, problems = parse_settings(raw, previous)
        configured = self.settings.store_path
        if configured and configured != previous.store_path:
            _, refused = confined_store(configured, self.workspace_folders())
            if refused:  # refused before anything is created there
                kept = previous.store_path or "the default, .remap/remap.db beside each file"
                problems.append(f"remap setting 'storePath': {refused}; keeping {kept}")
                self.settings = replace(self.settings, store_path=previous.store_path)
        for problem in problems:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, problem))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(kind, message))

    def shutdown_pool(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve the client on stdin and stdout until it exits, reading its frames through `framing` (bounded,
        and found again after a broken one) instead of pygls's reader."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        source = stdin or sys.stdin.buffer
        read_some = getattr(source, "read1", source.read)  # what is there, not n bytes: a frame may be short

        async def read(n: int) -> bytes:
            return await asyncio.get_running_loop().run_in_executor(self.thread_pool, read_some, n)

        try:
            asyncio.run(serve_messages(FrameReader(read), self.protocol, self._stop_event,
                                       self.report_server_error))
        except BrokenPipeError:
            log.error("the connection to the client is lost; the server stops")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        raise NotImplementedError("a TCP server gives each client a server of its own: use "
                                  "remapdsl_server.lsp.tcp.serve with a factory (`remap lsp --tcp`)")

    def end_session(self) -> None:
        """Let go of what this server's client started (a TCP client that left): the watcher, the workers, the
        thread pools and the log forwarding."""
        self.watcher.stop()
        self.workers.stop()
        self.client_log.detach()
        self.shutdown_pool()
        self.shutdown()

