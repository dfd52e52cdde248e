"""Training from the editor: the commands (see `commands` for their arguments), and queueing models in the
store; the server's store watcher reports training as it goes.

Models only just added by an edit are queued from the text the server spawned when the document does not
hold them yet: a client may run an action's command before its didChange arrives, and nothing waits for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path

from remapdsl.language.model import Document
from remapdsl.search.children import model_errors
from remapdsl.search.spawn import DEFAULT_VARIATIONS, Operation
from remapdsl.store.db import StoreError

from ..commands import ABLATE, ENQUEUE, TRAIN, VARY
from ..documents import DocumentState, analyze_document
from ..server import RemapServer
from ..spawned import edited_text
from ..spawning import compute, tell, workspace_edit


def register(server: RemapServer) -> None:
    # the store is watched from the start; the code lens and code action handlers also start the watching,
    # for a factory where another feature already handles `initialized`
    if types.INITIALIZED not in server.protocol.fm.features:

        @server.feature(types.INITIALIZED)
        def initialized(ls: RemapServer, params: types.InitializedParams) -> None:
            ls.watch_stores()

    # pygls reads command handlers' annotations at run time to convert the arguments: the arguments are
    # taken as they come, and checked here
    @server.command(TRAIN)
    async def train(ls: RemapServer, *args: Any) -> list[dict[str, Any]]:
        uri, names = _uri_and_names(args)
        return await queue(ls, uri, names, retry=True)

    @server.command(ENQUEUE)
    async def enqueue(ls: RemapServer, *args: Any) -> list[dict[str, Any]]:
        uri, names, token = _enqueue_arguments(args)
        spawned = ls.spawned.recall(token, uri) if token is not None else None
        if spawned is not None:
            return await queue(ls, uri, spawned.names, retry=False, spawned_text=spawned.text)
        if not names:
            message = (f"cannot train the new models: the server no longer knows what this action made "
                       f"(token {token!r}); train them with the `Train` action")
            ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, message))
            raise JsonRpcInvalidParams(message)
        return await queue(ls, uri, names, retry=False)

    @server.command(ABLATE)
    async def ablate(ls: RemapServer, *args: Any) -> list[str]:
        uri, model = _uri_and_model(args)
        layers = args[2] if len(args) > 2 and args[2] is not None else []
        if not isinstance(layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
            raise JsonRpcInvalidParams(f"{ABLATE} expects a list of layer indices; got {layers!r}")
        return await spawn_and_apply(ls, uri, Operation("ablate", model, tuple(layers)), f"Ablate {model}")

    @server.command(VARY)
    async def vary(ls: RemapServer, *args: Any) -> list[str]:
        uri, model = _uri_and_model(args)
        n = args[2] if len(args) > 2 and args[2] is not None else DEFAULT_VARIATIONS
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
            raise JsonRpcInvalidParams(f"{VARY} expects a number of variations from 1 to 100; got {n!r}")
        document = ls.workspace.text_documents.get(uri)
        seed = document.version if document is not None and document.version is not None else 0
        return await spawn_and_apply(ls, uri, Operation("vary", model, n=n, seed=seed), f"Vary {model}")


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
                spawned_text: str | None = None) -> list[dict[str, Any]]:
    """Queue the models `names` of the document at `uri`; `retry` queues failed and cancelled ones again.
    `spawned_text`: the text an edit that added them makes, used while the document does not hold them."""
    state = await _holding(ls, uri, names, spawned_text)
    problems = _problems(state, names)
    if problems:
        message = f"cannot train: {'; '.join(problems)}"
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, message))
        raise JsonRpcInvalidParams(message)
    store = ls.store_path(uri)
    file = to_fs_path(uri)
    if store is None or file is None:
        raise JsonRpcInvalidParams(f"{uri} is not a file: save it first, or set a store path")
    refused = ls.may_write_store(store)
    if refused:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"cannot train: {refused}"))
        raise JsonRpcInvalidParams(refused)
    try:
        queued = await ls.run_blocking(enqueue_document, store, Path(file), state.analysis.document, list(names),
                                       retry)
    except ValueError as e:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"cannot train: {e}"))
        raise JsonRpcInvalidParams(str(e)) from None
    ls.watch_stores()
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
    from remapdsl.jobs.enqueue import Checked, EnqueueError, data_key, enqueue_models, settings_of
    from remapdsl.store.db import Store
    from remapdsl.store.queue import Queue

    try:
        settings = settings_of(document)
        key = data_key(document, file.resolve().parent)
        with Store(store) as opened:
            registered, enqueued = enqueue_models(opened, Checked(file, document, names), settings, key)
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
    except (EnqueueError, StoreError) as e:
        raise ValueError(str(e)) from None


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
        await queue(ls, uri, result.names, retry=False, spawned_text=edited_text(state.text, result.edit))
    return list(result.names)


# --- helpers ------------------------------------------------------------------------------------------


async def _holding(ls: RemapServer, uri: str, names: Sequence[str], spawned_text: str | None) -> DocumentState:
    """The document's state when it holds all of `names`; else, given the text an edit adding them makes,
    that text's state (the client's didChange is still on its way); else the document as it is."""
    state = await ls.run_blocking(ls.document_state, uri)
    if state is None:
        raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
    if spawned_text is None or all(name in state.analysis.models for name in names):
        return state
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return await ls.run_blocking(analyze_document, uri, None, spawned_text, path)


def _problems(state: DocumentState, names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        info = state.analysis.models.get(name)
        if info is None:
            out.append(f"there is no model '{name}'")
        elif errors := model_errors(state.analysis, info):
            out.append(f"{name} has errors (line {errors[0].range}: {errors[0].message})")
    return out


def _uri_and_names(args: Sequence[Any]) -> tuple[str, list[str]]:
    """(uri, model names) from a command's arguments: a list of names, or one name."""
    if len(args) < 2 or not isinstance(args[0], str):
        raise JsonRpcInvalidParams("expected the document's uri and the names of its models")
    names = [args[1]] if isinstance(args[1], str) else args[1]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise JsonRpcInvalidParams(f"expected a list of model names; got {names!r}")
    return args[0], list(dict.fromkeys(names))


def _enqueue_arguments(args: Sequence[Any]) -> tuple[str, list[str], str | None]:
    """(uri, model names, spawn token) from `remap.enqueue`'s arguments: [uri, token], or [uri, names, token]
    where the names are looked up in the document should the token be unknown, or [uri, names]."""
    if len(args) < 2 or not isinstance(args[0], str):
        raise JsonRpcInvalidParams(f"{ENQUEUE} expects the document's uri and a spawn token or model names")
    if isinstance(args[1], str):
        return args[0], [], args[1]
    token = args[2] if len(args) > 2 else None
    if token is not None and not isinstance(token, str):
        raise JsonRpcInvalidParams(f"{ENQUEUE} expects a spawn token; got {token!r}")
    uri, names = _uri_and_names(args[:2]) if args[1] is not None else (args[0], [])
    return uri, names, token


def _uri_and_model(args: Sequence[Any]) -> tuple[str, str]:
    if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        raise JsonRpcInvalidParams("expected the document's uri and a model name")
    return args[0], args[1]
