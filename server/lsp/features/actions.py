"""Code actions: every REMAP operation on a model or a layer, one action away.

On a model (its `model` line or anywhere in its block): ablate all layers, ablate the layers on the
selected lines (the paper's brushing), generate variations, train, duplicate as a handcrafted child. On a
layer line: remove it, replace it with another type, reparameterize it to a neighbouring grid value,
insert a layer before or after it. Each spawning action inserts named children with `from PARENT`. On the
selected layers (or the layer at the cursor) of a valid model, when a block may hold them: wrap them in a
residual block, in place (the block line above them, the layers indented below it).

The list is made in the thread pool, never on the event loop: titles from the analysis at the cursor, the
quick fixes first. A client that resolves code actions lazily (`codeAction.resolveSupport.properties`) gets
each action with only its title, kind and data, and codeAction/resolve fills in exactly the properties it
listed (the edit, the command, or both), computed in the thread pool against the document version the action
was offered for: Eglot resolves only an action that carries neither an edit nor a command, so nothing it may
resolve goes out eagerly. Other clients get every action with its plain edit and its command in the list (an
ablation or five variations of a model in a 1,000-model file take about 20 ms each).

Training the children: with auto-train on, an action carries a `remap.enqueue` command, which the client runs
after applying the edit. The command names the spawn by a token under which the server keeps the children and
the text the edit makes, so it queues them even when it arrives before the client's didChange; an eager
action's command also lists the children's names, looked up in the document should the token have expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from remapdsl.editor.blocks import wrap_selection
from remapdsl.search.spawn import (
    Offer,
    Operation,
    layer_at,
    layer_offers,
    model_at,
    model_offers,
    selected_layers,
    spawn,
)

from ..commands import ENQUEUE, TRAIN
from ..quickfix import quick_fixes
from ..spawned import edited_text
from ..spawning import compute, tell, workspace_edit

if TYPE_CHECKING:
    from ..documents import DocumentState
    from ..server import RemapServer

# Spawning children extracts new models from a parent; layer edits rewrite one layer in a child.
KINDS = {
    "ablate": "refactor.extract.remap.ablate",
    "vary": "refactor.extract.remap.vary",
    "duplicate": "refactor.extract.remap.duplicate",
    "remove": "refactor.rewrite.remap.remove",
    "replace": "refactor.rewrite.remap.replace",
    "reparameterize": "refactor.rewrite.remap.reparameterize",
    "insert": "refactor.rewrite.remap.insert",
    "wrap": "refactor.rewrite.remap.wrap",
}
TRAIN_KIND = "source.remap.train"
CODE_ACTION_KINDS = [types.CodeActionKind.QuickFix, "refactor.extract.remap", "refactor.rewrite.remap", "source.remap"]

def register(server: RemapServer) -> None:
    options = types.CodeActionOptions(code_action_kinds=CODE_ACTION_KINDS, resolve_provider=True)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)
    async def code_action(ls: RemapServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        ls.watch_stores()
        return await ls.run_blocking(code_actions, ls, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: RemapServer, action: types.CodeAction) -> types.CodeAction:
        return await resolve(ls, action)


def code_actions(ls: RemapServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    """The actions at the request's range (run off the event loop: it may parse and spawn)."""
    state = ls.document_state(params.text_document.uri)
    if state is None:
        return None
    only = params.context.only
    actions: list[types.CodeAction] = []
    if _wanted(types.CodeActionKind.QuickFix, only):
        actions += quick_fixes(state, params.range, params.context.diagnostics, ls.workspace.position_codec)
    if any(_wanted(kind, only) for kind in (*KINDS.values(), TRAIN_KIND)):
        actions += [a for a in remap_actions(ls, state, params.range) if _wanted(a.kind, only)]
    return actions


def remap_actions(ls: RemapServer, state: DocumentState, selection: types.Range) -> list[types.CodeAction]:
    """The actions on the model (and layer) at the selection."""
    analysis = state.analysis
    first, last = selection.start.line, selection.end.line
    if last > first and selection.end.character == 0:
        last -= 1  # a selection of whole lines ends at the start of the next line
    model = model_at(analysis.document, first) or model_at(analysis.document, last)
    info = analysis.models.get(model.name) if model is not None else None
    if model is None or info is None or info.model.range != model.range:
        return []  # not in a model, or in a second definition of a name (the first one is the model)
    name = model.name
    spans = selection.start != selection.end
    offers = model_offers(analysis, name, selected_layers(model, first, last) if spans else (),
                          seed=state.version or 0)
    actions = [_action(ls, state, offer) for offer in offers]
    if info.valid:
        train = types.Command(f"Train {name}", TRAIN, arguments=[state.uri, [name]])
        actions.append(types.CodeAction(f"Train {name}", kind=TRAIN_KIND, command=train))
    index = layer_at(model, first) if first == last else None
    if index is not None:
        actions += [_action(ls, state, offer) for offer in layer_offers(analysis, name, index)]
    wrap = wrap_selection(info, selected_layers(model, first, last), state.lines)
    if wrap is not None:
        # every edit inserts at the start of a line: the position needs no conversion to the client's units
        edits = [types.TextEdit(types.Range(types.Position(e.range.start.line, 0), types.Position(e.range.start.line,
                                                                                                 0)), e.new_text)
                 for e in wrap.edits]
        actions.append(types.CodeAction(wrap.title, kind=KINDS["wrap"],
                                        edit=types.WorkspaceEdit(changes={state.uri: edits})))
    return [a for a in actions if a is not None]


async def resolve(ls: RemapServer, action: types.CodeAction) -> types.CodeAction:
    """The action's lazily resolved properties (those the client listed), for the document version it was
    offered for."""
    uri, version, operation, token = _read_data(action.data)
    state, result = await compute(ls, uri, version, operation)
    tell(ls, result, action.title)
    lazy = _lazy_properties(ls)
    if result.edit is None:
        if "edit" in lazy:
            action.edit = types.WorkspaceEdit(changes={})
        action.command = None  # nothing to queue
        return action
    if "edit" in lazy:
        action.edit = workspace_edit(ls, state, result.edit)
    if token is not None:
        ls.spawned.remember(token, uri, result.names, edited_text(state.text, result.edit))
        if "command" in lazy:
            action.command = _enqueue(uri, token)
    return action


def _action(ls: RemapServer, state: DocumentState, offer: Offer) -> types.CodeAction | None:
    operation = offer.operation
    kind = KINDS[operation.op]
    auto_train = ls.settings.auto_train
    lazy = _lazy_properties(ls)
    if "edit" in lazy:
        token = ls.spawned.new_token() if auto_train else None
        data = {"uri": state.uri, "version": state.version, "operation": operation.to_json(), "token": token}
        # a command the client does not resolve goes with the action; it queues what the resolve recorded
        command = _enqueue(state.uri, token) if token is not None and "command" not in lazy else None
        return types.CodeAction(offer.title, kind=kind, data=data, command=command)
    try:
        result = spawn(state.text, state.analysis, operation)
    except ValueError:  # offered from the same analysis, so not expected; left out rather than failing the list
        return None
    if result.edit is None:
        return None
    edit = workspace_edit(ls, state, result.edit)
    if "command" in lazy:  # the edit goes now, the command from the resolve, which records the children
        data = {"uri": state.uri, "version": state.version, "operation": operation.to_json(),
                "token": ls.spawned.new_token() if auto_train else None}
        return types.CodeAction(offer.title, kind=kind, edit=edit, data=data)
    command = None
    if auto_train:
        token = ls.spawned.new_token()
        ls.spawned.remember(token, state.uri, result.names, edited_text(state.text, result.edit))
        command = _enqueue(state.uri, token, list(result.names))
    return types.CodeAction(offer.title, kind=kind, edit=edit, command=command)


def _enqueue(uri: str, token: str, names: list[str] | None = None) -> types.Command:
    """The command that queues an action's children once its edit is applied: the token of its spawn, and
    the children's names when they are known already."""
    arguments: list[Any] = [uri, names, token] if names is not None else [uri, token]
    return types.Command("Queue the new models for training", ENQUEUE, arguments=arguments)


def _lazy_properties(ls: RemapServer) -> frozenset[str]:
    """The properties of a code action the client resolves lazily, of those resolve can fill in: "edit",
    "command"; none unless the client also keeps an action's data for the resolve."""
    text_document = ls.client_capabilities.text_document
    code_action = text_document.code_action if text_document else None
    if code_action is None or code_action.resolve_support is None or not code_action.data_support:
        return frozenset()
    return frozenset(code_action.resolve_support.properties) & {"edit", "command"}


def _wanted(kind: str | None, only: Sequence[str] | None) -> bool:
    """Whether an action of `kind` is among the kinds the client asked for (all when it names none)."""
    if not only:
        return True
    return kind is not None and any(kind == o or kind.startswith(f"{o}.") for o in only)


def _read_data(data: Any) -> tuple[str, int, Operation, str | None]:
    """(uri, version, operation, token) from an action's data; an error response for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("uri"), str) or not isinstance(data.get("version"), int):
        raise JsonRpcInvalidParams("this code action carries no data to resolve it from; ask for actions again")
    try:
        operation = Operation.from_json(data.get("operation"))
    except ValueError as e:
        raise JsonRpcInvalidParams(f"cannot resolve this code action: {e}") from None
    token = data.get("token")
    return data["uri"], data["version"], operation, token if isinstance(token, str) else None
