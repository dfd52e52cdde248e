"""Code actions over stdio, as VS Code (resolves edits), Neovim (resolves edits, no lens refresh), Eglot 1.17
(resolves edits and commands, and only an action with neither) and Eglot 1.9 (no resolve: plain edits and
commands, the command sent before the edit's didChange) drive them: every action applied leaves a file that
validates, with children `from` their parent, and auto-train queues the children."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from tests.server.lsp.editor import Editor
from tests.server.lsp.session import CLIENTS, SERVER, own_session
from tests.server.lsp.session import start as start_session

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

TEXT = """\
data digits
train epochs=1 batch=128

model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model mlp:
    flatten
    dense 64
    tanh
    dropout 0.125
    dense 10
"""
SMALL, RELU, MLP, TANH = 3, 5, 10, 13  # lines of `model small:`, its relu, `model mlp:`, its tanh


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=CLIENTS, scope="module")
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(request.param)
    lsp_client.root = root
    lsp_client.session = await start_session(lsp_client, request.param, root,
                                             init={"autoTrain": True, "startWorker": False})
    yield
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(client: LanguageClient) -> Editor:
    return client.session.editor


def resolved_lazily(client: LanguageClient) -> list[str]:
    """The code action properties the client resolves (none unless it keeps an action's data)."""
    code_action = client.capabilities.text_document.code_action
    support = code_action.resolve_support
    return list(support.properties) if support is not None and code_action.data_support else []


def resolves(client: LanguageClient) -> bool:
    return "edit" in resolved_lazily(client)


def children_of(text: str, parent: str) -> list[str]:
    return [m.name for m in parse(text).document.models if m.parent == parent]


async def outcome(editor: Editor, uri: str, action: types.CodeAction) -> str:
    """The text the action leaves; the document is put back afterwards (commands apply their edit)."""
    before = editor.texts[uri]
    action = await editor.resolved(action)
    if action.edit is not None:
        texts = editor.edited(action.edit)
        assert texts is not None
        return texts[uri]
    assert action.command is not None and action.command.command in ("remap.ablate", "remap.vary")
    await editor.execute(action.command)
    after = editor.texts[uri]
    editor.change(uri, before)
    return after


def assert_valid_with_children(text: str, parent: str, before: str) -> list[str]:
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.valid, [d.message for d in analysis.diagnostics]
    new = set(children_of(text, parent)) - set(children_of(before, parent))
    assert new
    return sorted(new)


async def test_model_actions_offer_every_remap_operation(client: LanguageClient, editor: Editor):
    uri = editor.open(client.root / "offers.remap", TEXT)
    actions = await editor.actions(uri, (SMALL, 2))
    titles = [a.title for a in actions]
    assert titles == ["Ablate all layers of small", "Generate 5 variations of small",
                      "Duplicate small as a handcrafted child", "Train small"]
    kinds = [a.kind for a in actions]
    assert kinds == ["refactor.extract.remap.ablate", "refactor.extract.remap.vary",
                     "refactor.extract.remap.duplicate", "source.remap.train"]
    if resolves(client):
        assert all(a.edit is None and a.data["operation"]["model"] == "small" for a in actions[:3])
        # what the client resolves is left out, so that Eglot, which resolves only a bare action, resolves it
        commands = [a.command.command if a.command else None for a in actions[:3]]
        assert commands == [None if "command" in resolved_lazily(client) else "remap.enqueue"] * 3
    else:  # no resolve: every spawning action comes with its plain edit, and queues its children after it
        assert all(a.edit is not None and a.data is None for a in actions[:3])
        assert [a.command.command for a in actions[:3]] == ["remap.enqueue"] * 3
        assert actions[0].command.arguments[1] == ["small_abl0", "small_abl1", "small_abl2"]
    # brushing: a selection over the relu and maxpool lines ablates those two
    brushed = await editor.actions(uri, (RELU, 0), (RELU + 2, 0))
    assert "Ablate selected layers of small (relu at 1, maxpool at 2)" in [a.title for a in brushed]
    # only what was asked for
    assert [a.title for a in await editor.actions(uri, (SMALL, 0), only=["source"])] == ["Train small"]
    assert await editor.actions(uri, (SMALL, 0), only=[types.CodeActionKind.QuickFix]) == []
    assert await editor.actions(uri, (1, 0)) == []  # the header is no model
    editor.close(uri)


async def test_every_action_applied_leaves_a_valid_file_with_children_from_the_parent(client: LanguageClient,
                                                                                     editor: Editor):
    uri = editor.open(client.root / "apply.remap", TEXT)
    places = [((SMALL, 0), None, "small"), ((RELU, 4), None, "small"), ((RELU, 0), (RELU + 2, 0), "small"),
              ((TANH, 2), None, "mlp"), ((TANH + 1, 0), None, "mlp"), ((MLP + 2, 0), None, "mlp")]
    seen: set[str] = set()
    for start, end, parent in places:
        # asked again after each action: an action run as a command changes the document's version
        while new := [a for a in await editor.actions(uri, start, end)
                      if not a.kind.startswith("source") and not a.kind.endswith(".wrap") and a.title not in seen]:
            seen.add(new[0].title)
            assert_valid_with_children(await outcome(editor, uri, new[0]), parent, TEXT)
    assert {"Ablate all layers of small", "Ablate selected layers of small (relu at 1, maxpool at 2)",
            "Generate 5 variations of mlp", "Duplicate mlp as a handcrafted child",
            "Child of small: remove relu at 1", "Child of small: replace relu at 1 with tanh",
            "Child of small: insert batchnorm before relu at 1", "Child of mlp: rate of dropout at 3: 0.125 → 0.25",
            "Child of mlp: insert batchnorm after tanh at 2", "Child of mlp: units of dense at 1: 64 → 128"} <= seen
    editor.close(uri)


async def test_auto_train_queues_the_children_once_the_edit_is_applied(client: LanguageClient, editor: Editor):
    uri = editor.open(client.root / "queue" / "auto.remap", TEXT)
    duplicate = next(a for a in await editor.actions(uri, (MLP, 0)) if a.title.startswith("Duplicate"))
    started = asyncio.get_running_loop().time()
    result = await editor.run(duplicate)  # Eglot 1.9 sends the command before the edit's didChange
    assert asyncio.get_running_loop().time() - started < 2.0  # the command does not wait for the document
    assert "mlp_copy" in children_of(editor.texts[uri], "mlp")
    assert result == [{"model": "mlp_copy", "job": 1, "outcome": "queued"}]
    with Store(client.root / "queue" / ".remap" / "remap.db") as store:
        jobs = Queue(store).jobs()
        assert [(j.model_name, j.status, j.epochs_planned) for j in jobs] == [("mlp_copy", "queued", 1)]
        assert store.model(jobs[0].model_hash).origin == "handcrafted"
    # the ablation command (Emacs' path) applies its edit with workspace/applyEdit and queues what it made
    names = await editor.execute(types.Command("Ablate", "remap.ablate", arguments=[uri, "small", [1]]))
    assert names == ["small_abl1"] and "small_abl1" in children_of(editor.texts[uri], "small")
    with Store(client.root / "queue" / ".remap" / "remap.db") as store:
        assert [j.model_name for j in Queue(store).jobs()] == ["mlp_copy", "small_abl1"]
    editor.close(uri)


async def test_train_queues_a_model_and_again_after_it_failed(client: LanguageClient, editor: Editor):
    uri = editor.open(client.root / "train" / "train.remap", TEXT)
    train = next(a for a in await editor.actions(uri, (SMALL, 0)) if a.title == "Train small")
    assert await editor.run(train) == [{"model": "small", "job": 1, "outcome": "queued"}]
    assert await editor.run(train) == [{"model": "small", "job": 1, "outcome": "already queued"}]
    with Store(client.root / "train" / ".remap" / "remap.db") as store:
        queue = Queue(store)
        queue.claim("w")
        queue.complete(1, "w", "failed", "boom")
    assert await editor.run(train) == [{"model": "small", "job": 1, "outcome": "queued again"}]
    assert any("small: queued" in m.message for m in client.messages)
    editor.close(uri)


async def test_a_stale_or_broken_request_gets_an_error_and_the_file_is_never_touched(client: LanguageClient,
                                                                                     editor: Editor):
    uri = editor.open(client.root / "stale.remap", TEXT)
    applied = len(editor.applied)
    if resolves(client):
        action = (await editor.actions(uri, (SMALL, 0)))[0]
        editor.change(uri, TEXT + "\n")
        with pytest.raises(JsonRpcException) as stale:
            await client.code_action_resolve_async(action)
        assert stale.value.code == JsonRpcContentModified.CODE
        broken = types.CodeAction("junk", data={"uri": uri, "version": "x"})
        with pytest.raises(JsonRpcException) as error:
            await client.code_action_resolve_async(broken)
        assert error.value.code == JsonRpcInvalidParams.CODE
        junk_op = types.CodeAction("junk", data={"uri": uri, "version": editor.versions[uri], "operation": {"op": 3}})
        with pytest.raises(JsonRpcException) as error:
            await client.code_action_resolve_async(junk_op)
        assert "unknown operation 3" in error.value.message
    for name, arguments in (("remap.train", [uri]), ("remap.ablate", [uri, "nope"]),
                            ("remap.vary", [uri, "small", "many"]), ("remap.train", [uri, ["nope"]]),
                            ("remap.enqueue", [42, []]), ("remap.enqueue", [uri, "spawn-unknown"])):
        with pytest.raises(JsonRpcException):
            await editor.execute(types.Command("t", name, arguments=arguments))
    assert len(editor.applied) == applied and editor.texts[uri].strip() == TEXT.strip()
    # still serving
    assert await editor.actions(uri, (SMALL, 0))
    editor.close(uri)


async def test_enqueue_after_an_expired_token_looks_the_names_up_in_the_document(client: LanguageClient,
                                                                                editor: Editor):
    uri = editor.open(client.root / "expired" / "expired.remap", TEXT)
    queued = await editor.execute(types.Command("q", "remap.enqueue", arguments=[uri, ["mlp"], "spawn-unknown"]))
    assert queued == [{"model": "mlp", "job": 1, "outcome": "queued"}]
    with pytest.raises(JsonRpcException) as missing:
        await editor.execute(types.Command("q", "remap.enqueue", arguments=[uri, ["mlp_abl9"], "spawn-unknown"]))
    assert "there is no model 'mlp_abl9'" in missing.value.message
    editor.close(uri)


@pytest.mark.parametrize("properties", [["edit"], ["edit", "command"], ["command"]])
async def test_the_properties_a_client_resolves_are_the_ones_it_listed(tmp_path, properties):
    capabilities = client_capabilities("visual-studio-code")
    capabilities.text_document.code_action.resolve_support = types.ClientCodeActionResolveOptions(properties)
    init = {"storePath": str(tmp_path / "store.db"), "autoTrain": True, "startWorker": False}
    async with own_session(tmp_path, init=init, capabilities=capabilities) as session:
        editor = session.editor
        uri = editor.open(tmp_path / "m.remap", TEXT)
        ablate = (await editor.actions(uri, (SMALL, 0)))[0]
        # listed: left for the resolve; not listed: sent with the action
        assert (ablate.edit is None) is ("edit" in properties)
        assert (ablate.command is None) is ("command" in properties)
        resolved = await editor.resolved(ablate)
        assert resolved.edit is not None and resolved.command is not None
        assert await editor.run(ablate) == [{"model": f"small_abl{i}", "job": i + 1, "outcome": "queued"}
                                            for i in range(3)]
        assert set(children_of(editor.texts[uri], "small")) == {"small_abl0", "small_abl1", "small_abl2"}
