"""Training from the editor: the commands, queueing models in the store, the worker the server may start,
and the store watcher that reports training as it goes.

Commands (arguments in order):
- `remap.train` (uri, model names): queue the models; a failed or cancelled training is queued again.
- `remap.enqueue` (uri, model names, or the token of a resolved code action): queue children an applied
  code action added; a code action carries it when `auto_train` is on.
- `remap.ablate` (uri, model, [layer indices]) and `remap.vary` (uri, model, [n]): compute the children,
  send them with `workspace/applyEdit`, and queue them when `auto_train` is on.

A command whose models were only just added by an edit waits briefly for the document to hold them: the
client applies an edit and then runs the action's command, and the server may still be catching up.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from remapdsl.language.model import Document
from remapdsl.search.children import model_errors
from remapdsl.search.spawn import DEFAULT_VARIATIONS, Operation
from remapdsl.store.db import StoreError
from remapdsl.store.status import QueueProgress

from .spawning import compute, tell, workspace_edit
from .watcher import ProgressWatcher
from .worker_process import WorkerProcess

if TYPE_CHECKING:
    from .documents import DocumentState
    from .server import RemapServer

TRAIN = "remap.train"
ENQUEUE = "remap.enqueue"
ABLATE = "remap.ablate"
VARY = "remap.vary"
# How long a command waits for an edit it follows to reach the document.
EDIT_WAIT_SECONDS = 3.0
# Resolved code actions whose children are remembered for their `remap.enqueue` command.
REMEMBERED = 256


def register(server: RemapServer) -> None:
    # the store is watched from the start; the code lens and code action handlers also start the watching,
    # for a factory where another feature already handles `initialized`
    if types.INITIALIZED not in server.protocol.fm.features:

        @server.feature(types.INITIALIZED)
        def initialized(ls: RemapServer, params: types.InitializedParams) -> None:
            start(ls)

    # pygls reads command handlers' annotations at run time to convert the arguments: they must resolve, so
    # the server is typed as pygls' LanguageServer here, and the arguments are taken as they come
    @server.command(TRAIN)
    async def train(ls: LanguageServer, *args: Any) -> list[dict[str, Any]]:
        uri, names = _uri_and_names(args)
        return await queue(_remap(ls), uri, names, retry=True, after_edit=False)

    @server.command(ENQUEUE)
    async def enqueue(ls: LanguageServer, *args: Any) -> list[dict[str, Any]]:
        uri, names = _uri_and_names(args, token_of=lambda uri, token: _of(_remap(ls)).recall(token, uri))
        return await queue(_remap(ls), uri, names, retry=False, after_edit=True) if names else []

    @server.command(ABLATE)
    async def ablate(ls: LanguageServer, *args: Any) -> list[str]:
        uri, model = _uri_and_model(args)
        layers = args[2] if len(args) > 2 and args[2] is not None else []
        if not isinstance(layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
            raise JsonRpcInvalidParams(f"{ABLATE} expects a list of layer indices; got {layers!r}")
        return await spawn_and_apply(_remap(ls), uri, Operation("ablate", model, tuple(layers)), f"Ablate {model}")

    @server.command(VARY)
    async def vary(ls: LanguageServer, *args: Any) -> list[str]:
        uri, model = _uri_and_model(args)
        n = args[2] if len(args) > 2 and args[2] is not None else DEFAULT_VARIATIONS
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
            raise JsonRpcInvalidParams(f"{VARY} expects a number of variations from 1 to 100; got {n!r}")
        document = ls.workspace.text_documents.get(uri)
        seed = document.version if document is not None and document.version is not None else 0
        return await spawn_and_apply(_remap(ls), uri, Operation("vary", model, n=n, seed=seed), f"Vary {model}")


def _remap(ls: LanguageServer) -> RemapServer:
    return cast("RemapServer", ls)


# --- per server ---------------------------------------------------------------------------------------


class Training:
    """What one server keeps for training: remembered children, its workers and the store watcher."""

    def __init__(self, ls: RemapServer) -> None:
        self.ls = ls
        self.spawned: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict()
        self.workers: dict[Path, WorkerProcess] = {}
        self.watcher = ProgressWatcher(ls, self.stores, self.progressed)

    def start(self) -> None:
        """Start watching the stores (once; needs the running event loop)."""
        self.watcher.start()

    def stores(self) -> set[Path]:
        """The stores of the open documents."""
        paths = (self.ls.store_path(uri) for uri in list(self.ls.workspace.text_documents))
        return {p for p in paths if p is not None}

    def progressed(self, store: Path, progress: QueueProgress) -> None:
        """Keep a worker running while jobs are queued, when the user lets the server start one."""
        if progress.queued and self.ls.settings.start_worker:
            worker = self.workers.get(store)
            if worker is None:
                worker = self.workers[store] = WorkerProcess(self._log)
            if worker.ensure(store):
                self.ls.window_log_message(types.LogMessageParams(types.MessageType.Info,
                                                                  f"started a training worker on {store}"))

    def remember(self, token: str, uri: str, names: Sequence[str]) -> None:
        self.spawned[token] = (uri, tuple(names))
        while len(self.spawned) > REMEMBERED:
            self.spawned.popitem(last=False)

    def recall(self, token: str, uri: str) -> tuple[str, ...]:
        """The children recorded under `token` for the document at `uri` (none when the resolve failed)."""
        recorded_uri, names = self.spawned.pop(token, ("", ()))
        return names if recorded_uri == uri else ()

    def _log(self, line: str) -> None:
        # worker output arrives on a reader thread; the client is written to from the event loop only
        loop = self.watcher.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.ls.window_log_message,
                                      types.LogMessageParams(types.MessageType.Log, f"worker: {line}"))


_training: weakref.WeakKeyDictionary[Any, Training] = weakref.WeakKeyDictionary()


def _of(ls: RemapServer) -> Training:
    training = _training.get(ls)
    if training is None:
        training = _training[ls] = Training(ls)
    training.start()
    return training


def start(ls: RemapServer) -> None:
    """Start the store watcher (and with it the worker, when enabled) of this server: from the
    `initialized` handler, and again, to no effect, from the code lens and code action handlers, so that
    watching begins with the first of them whatever the order."""
    _of(ls)


def remember(ls: RemapServer, token: str, uri: str, names: Sequence[str]) -> None:
    """Record the children a resolved code action adds, for its `remap.enqueue` command."""
    if names:
        _of(ls).remember(token, uri, names)


# --- queueing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """What became of a model asked to train: `queued`, `queued again`, `already queued`, ..."""

    model: str
    job: int
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "job": self.job, "outcome": self.outcome}


async def queue(ls: RemapServer, uri: str, names: Sequence[str], *, retry: bool,
                after_edit: bool) -> list[dict[str, Any]]:
    """Queue the models `names` of the document at `uri`; `retry` queues failed and cancelled ones again.
    `after_edit`: the models were just added by an edit, which may not have reached the document yet."""
    state = await _holding(ls, uri, names, EDIT_WAIT_SECONDS if after_edit else 0.0)
    problems = _problems(state, names)
    if problems:
        message = f"cannot train: {'; '.join(problems)}"
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, message))
        raise JsonRpcInvalidParams(message)
    store = ls.store_path(uri)
    file = to_fs_path(uri)
    if store is None or file is None:
        raise JsonRpcInvalidParams(f"{uri} is not a file: save it first, or set a store path")
    try:
        queued = await ls.run_blocking(enqueue_document, store, Path(file), state.analysis.document, list(names),
                                       retry)
    except ValueError as e:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"cannot train: {e}"))
        raise JsonRpcInvalidParams(str(e)) from None
    _of(ls)
    message = "; ".join(f"{q.model}: {q.outcome}" for q in queued)
    if retry:
        hint = "" if ls.settings.start_worker or not any(q.outcome.startswith("queued") for q in queued) else \
            " (run `remap worker` to train, or let the editor start one)"
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, message + hint))
    else:
        ls.window_log_message(types.LogMessageParams(types.MessageType.Info, message))
    return [q.to_json() for q in queued]


def enqueue_document(store: Path, file: Path, document: Document, names: list[str], retry: bool) -> list[Queued]:
    """Register and queue models of a document in the store (created if need be), as `remap train` does;
    ValueError saying why when the settings, the data or the store cannot be used."""
    from remapdsl.cli import UsageError
    from remapdsl.cli.train import Checked, enqueue_models, settings_of
    from remapdsl.store.db import Store
    from remapdsl.store.queue import Queue

    try:
        settings = settings_of(document, None)
        data_key = _data_key(document, file.resolve().parent)
        with Store(store) as opened:
            registered, enqueued = enqueue_models(opened, Checked(file, document, names), settings, data_key)
            jobs = Queue(opened)
            out = []
            for m, e in zip(registered, enqueued, strict=True):
                job = e.job
                if e.created:
                    outcome = "queued"
                elif retry and job.status in ("failed", "cancelled"):
                    job = jobs.retry(job.id)
                    outcome = "queued again"
                else:
                    outcome = {"queued": "already queued", "running": "already training",
                               "done": "already trained"}.get(job.status, f"already {job.status}")
                out.append(Queued(m.name, job.id, outcome))
            return out
    except (UsageError, StoreError) as e:
        raise ValueError(str(e)) from None


_data_keys: dict[tuple[str, str], str] = {}


def _data_key(document: Document, base_dir: Path) -> str:
    """The store's key of the document's data. Loading the data is what gives the key, and a big data set
    takes seconds to load, so keys are kept for the server's life by data line and folder."""
    from remapdsl.cli.train import dataset_of
    from remapdsl.store.queue import data_line

    where = (data_line(document), str(base_dir))
    if where not in _data_keys:
        _data_keys[where] = dataset_of(document, base_dir).key
    return _data_keys[where]


async def spawn_and_apply(ls: RemapServer, uri: str, operation: Operation, what: str) -> list[str]:
    """Compute an operation's children, send the edit, and queue them when `auto_train` is on."""
    state, result = await compute(ls, uri, None, operation)
    tell(ls, result, what)
    if result.edit is None:
        return []
    params = types.ApplyWorkspaceEditParams(edit=workspace_edit(ls, state, result.edit), label=what)
    applied = await ls.workspace_apply_edit_async(params)
    if not applied.applied:
        reason = f": {applied.failure_reason}" if applied.failure_reason else ""
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning,
                                                       f"{what}: the editor did not apply the edit{reason}"))
        return []
    if ls.settings.auto_train:
        await queue(ls, uri, result.names, retry=False, after_edit=True)
    return list(result.names)


# --- helpers ------------------------------------------------------------------------------------------


async def _holding(ls: RemapServer, uri: str, names: Sequence[str], wait: float) -> DocumentState:
    """The document's state once it holds all of `names` (or after `wait` seconds: then as it is)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        state = await ls.run_blocking(ls.document_state, uri)
        if state is None:
            raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
        if all(name in state.analysis.models for name in names) or loop.time() > deadline:
            return state
        await asyncio.sleep(0.05)


def _problems(state: DocumentState, names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        info = state.analysis.models.get(name)
        if info is None:
            out.append(f"there is no model '{name}'")
        elif errors := model_errors(state.analysis, info):
            out.append(f"{name} has errors (line {errors[0].range}: {errors[0].message})")
    return out


def _uri_and_names(args: Sequence[Any],
                   token_of: Callable[[str, str], Sequence[str]] | None = None) -> tuple[str, list[str]]:
    """(uri, model names) from a command's arguments; with `token_of`, the names may be a token to look up."""
    if len(args) < 2 or not isinstance(args[0], str):
        raise JsonRpcInvalidParams("expected the document's uri and the names of its models")
    names = args[1]
    if isinstance(names, str) and token_of is not None:
        names = list(token_of(args[0], names))
    elif isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise JsonRpcInvalidParams(f"expected a list of model names; got {names!r}")
    return args[0], list(dict.fromkeys(names))


def _uri_and_model(args: Sequence[Any]) -> tuple[str, str]:
    if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        raise JsonRpcInvalidParams("expected the document's uri and a model name")
    return args[0], args[1]
