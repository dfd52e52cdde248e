"""Diagnostics, hovers, completion, formatting, outline, navigation and rename over stdio, as VS Code and
Neovim drive them (conftest's `session`), and junk that never crashes the server."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from remapdsl.language.parser import parse
from tests.server.lsp.editor import Editor, apply_text_edits
from tests.server.lsp.session import Session, published

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

TEXT = """\
data digits
train epochs=1 batch=128
budget params <= 100k

model small:   # the baseline
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model small_wide from small:
    conv2d 32 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""
SMALL, CONV, WIDE = 4, 5, 11  # lines of `model small:`, its conv2d, `model small_wide from small:`
BROKEN = """\
data digits
model m:
    conv3d 16
    dense 12
model m:
    flatten
    dense 10
"""


@pytest.fixture
def client(session: Session) -> LanguageClient:
    return session.client


@pytest.fixture
def editor(session: Session) -> Editor:
    return session.editor


async def diagnostics_of(client: LanguageClient, editor: Editor, uri: str) -> list[types.Diagnostic]:
    await editor.wait_for(lambda: client.diagnostics.get(uri))
    return client.diagnostics[uri]


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> types.Hover | None:
    return await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(line, character)))


async def test_a_broken_file_gets_every_error_with_its_range(session: Session, client: LanguageClient, editor: Editor):
    uri = editor.open(session.path("broken.remap"), BROKEN)
    found = await diagnostics_of(client, editor, uri)
    by_line = {(d.range.start.line, d.range.start.character): d for d in found}
    assert "did you mean 'conv2d'" in by_line[(2, 4)].message and by_line[(2, 4)].source == "remap"
    assert any("already defined" in d.message and d.range.start.line == 4 for d in found)
    assert all(d.severity == types.DiagnosticSeverity.Error for d in found)
    # fixing the file clears them (after the debounce)
    editor.change(uri, BROKEN.replace("conv3d 16", "flatten").replace("dense 12", "dense 10").replace(
        "model m:\n    flatten\n    dense 10\n", "model n:\n    flatten\n    dense 10\n", 1))
    await editor.wait_for(lambda: uri in client.diagnostics and len(client.diagnostics[uri]) == 0)
    editor.close(uri)


async def test_a_quick_fix_from_the_analysis_repairs_the_head(session: Session, client: LanguageClient, editor: Editor):
    uri = editor.open(session.path("head.remap"), "data digits\n\nmodel m:\n    flatten\n    dense 12\n")
    found = await diagnostics_of(client, editor, uri)
    fixes = await client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(uri), found[0].range, types.CodeActionContext(diagnostics=found)))
    quick = [a for a in fixes or [] if isinstance(a, types.CodeAction) and a.kind == types.CodeActionKind.QuickFix]
    assert quick and quick[0].edit is not None
    fixed = apply_text_edits(editor.texts[uri], quick[0].edit.changes[uri])
    assert "dense 10" in fixed
    editor.close(uri)


async def test_model_hover_shows_the_chip_as_an_image_or_as_text(session: Session, client: LanguageClient,
                                                                 editor: Editor):
    uri = editor.open(session.path("hover.remap"), TEXT)
    result = await hover(client, uri, WIDE, 8)
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    text = result.contents.value
    assert "**small_wide**" in text and "from `small`" in text and "5,450 parameters" in text
    assert "vs `small`: +2,720 parameters" in text and "not trained" in text
    assert len(text.encode()) < 100_000
    if session.name == "visual-studio-code":  # the one client here known to show a Markdown image
        uri_part = text.split("](", 1)[1].split(")", 1)[0]
        assert uri_part.startswith("data:image/svg+xml")
        payload = uri_part.split(",", 1)[1]
        svg = base64.b64decode(payload) if ";base64" in uri_part else urllib.parse.unquote(payload).encode()
        assert svg.startswith(b"<svg") and b"conv2d" in svg
    else:
        assert "```text" in text
    # the name after `from` is the parent
    parent = await hover(client, uri, WIDE, len("model small_wide from s"))
    assert parent is not None and "**small**" in parent.contents.value
    editor.close(uri)


async def test_a_model_hover_links_to_the_running_overview(session: Session, client: LanguageClient, editor: Editor):
    """While a `remap serve` of the store runs (its record in the store, its process alive), a stored model's
    hover offers "show in overview" with the model selected; once it stops, the link goes."""
    import os

    from remapdsl.language.hashing import architecture_hash
    from remapdsl.store.db import Store
    from remapdsl.store.services import record_service, remove_service

    uri = editor.open(session.path("linked.remap"), TEXT)
    small = next(m for m in parse(TEXT).document.models if m.name == "small")
    model_hash = architecture_hash(small)
    with Store(session.store) as store:
        store.add_model(model_hash, "model small:\n    flatten\n    dense 10\n", name="small")
        record_service(store, "overview", "http://127.0.0.1:5999/", pid=os.getpid())
    try:
        result = await hover(client, uri, SMALL, 8)
        assert result is not None
        link = f"http://127.0.0.1:5999/?model={model_hash}"
        text = result.contents.value
        assert f"[show in overview]({link})" in text if result.contents.kind == "markdown" else link in text
        # the editor's "Open model overview" asks for the running one instead of starting another
        assert await overview_url(client, uri) == "http://127.0.0.1:5999/"
    finally:
        with Store(session.store) as store:
            remove_service(store, "overview", pid=os.getpid())
    result = await hover(client, uri, SMALL, 8)
    assert result is not None and "show in overview" not in result.contents.value
    assert await overview_url(client, uri) is None
    with pytest.raises(JsonRpcException, match="uri"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams("remap.overviewUrl", [42]))
    editor.close(uri)


async def overview_url(client: LanguageClient, uri: str) -> str | None:
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams("remap.overviewUrl", [uri]))
    assert answer is None or isinstance(answer, str)
    return answer


NEIGHBOURHOOD = TEXT + """
model deeper from small:
    conv2d 16 kernel=3
    relu
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model mlp:
    flatten
    dense 64
    tanh
    dense 10
"""


def closest_line(hover_result: types.Hover | None) -> list[tuple[str, str]]:
    """The (name, distance) pairs of the hover's 'closest in structure' line, as Markdown or plain text."""
    assert hover_result is not None
    text = hover_result.contents.value.replace("`", "")
    line = next(line for line in text.splitlines() if line.startswith("closest in structure: "))
    return [tuple(item.rsplit(" ", 1)) for item in line.removeprefix("closest in structure: ").split(" · ")]


async def test_model_hover_names_the_closest_models_in_structure(session: Session, client: LanguageClient,
                                                                 editor: Editor):
    from remapdsl.space.model_space import ModelSpace

    uri = editor.open(session.path("neighbourhood.remap"), NEIGHBOURHOOD)
    shown = closest_line(await hover(client, uri, SMALL, 8))
    space = ModelSpace()
    members = space.structural({m.name: m for m in parse(NEIGHBOURHOOD).document.models})
    expected = space.neighbours(members, "small", k=3)
    assert [name for name, _ in shown] == [n.key for n in expected] and len(shown) == 3
    assert [float(d) for _, d in shown] == pytest.approx([n.distance for n in expected], abs=0.006)
    # a model of the same architecture written in after the others comes first, at 0
    editor.change(uri, NEIGHBOURHOOD + "\nmodel twin:\n    conv2d 16 kernel=3 stride=1\n    relu\n    maxpool 2\n"
                  "    flatten\n    dense 10\n")
    await published(session, uri)
    assert closest_line(await hover(client, uri, SMALL, 8))[0] == ("twin", "0")
    editor.close(uri)


async def test_layer_and_header_hovers(session: Session, client: LanguageClient, editor: Editor):
    uri = editor.open(session.path("layers.remap"), TEXT)
    layer = await hover(client, uri, CONV, 6)
    assert layer is not None
    text = layer.contents.value
    assert "1x8x8 → 16x8x8" in text and "160 parameters" in text and "% of the model)" in text
    header = await hover(client, uri, 2, 2)
    assert header is not None and "budget" in header.contents.value
    assert await hover(client, uri, 3, 0) is None  # a blank line
    assert await hover(client, uri, 500, 3) is None  # past the end
    editor.close(uri)


async def test_completion_of_layers_parameters_values_and_parents(session: Session, client: LanguageClient,
                                                                  editor: Editor):
    uri = editor.open(session.path("complete.remap"), TEXT + "\nmodel next from \n    conv2d 16 kernel=\n    \n")

    async def labels(line: int, character: int) -> list[str]:
        result = await client.text_document_completion_async(types.CompletionParams(
            types.TextDocumentIdentifier(uri), types.Position(line, character)))
        items = result.items if isinstance(result, types.CompletionList) else result or []
        return [i.label for i in items]

    last = len(TEXT.splitlines()) + 1
    assert await labels(last, len("model next from ")) == ["small", "small_wide"]
    assert await labels(last + 1, len("    conv2d 16 kernel=")) == ["kernel=1", "kernel=3", "kernel=5"]
    assert {"conv2d", "dense", "maxpool", "dropout"} <= set(await labels(last + 2, 4))
    assert "epochs=" in await labels(1, len("train "))
    assert await labels(0, len("data ")) == ["digits", "mnist", "cifar10", "quickdraw", "folder", "npz"]
    editor.close(uri)


async def test_formatting_outline_definition_references_and_rename(session: Session, client: LanguageClient,
                                                                   editor: Editor):
    messy = TEXT.replace("    conv2d 16 kernel=3", "  conv2d   16 kernel=3").replace(
        "model small:   #", "model small: #")
    uri = editor.open(session.path("nav.remap"), messy)
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        types.TextDocumentIdentifier(uri), types.FormattingOptions(4, True)))
    formatted = apply_text_edits(messy, edits)
    assert parse(formatted).document == parse(messy).document and "# the baseline" in formatted
    assert "    conv2d 16 kernel=3" in formatted

    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        types.TextDocumentIdentifier(uri)))
    models = [s for s in symbols if s.kind == types.SymbolKind.Class]
    assert [m.name for m in models] == ["small", "small_wide"] and len(models[0].children) == 5
    assert models[1].detail.startswith("from small")

    at_parent = types.Position(WIDE, len("model small_wide from sm"))
    target = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri), at_parent))
    assert target.range.start == types.Position(SMALL, 6)
    refs = await client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=True), text_document=types.TextDocumentIdentifier(uri),
        position=at_parent))
    assert sorted(r.range.start.line for r in refs) == [SMALL, WIDE]

    rename = await client.text_document_rename_async(types.RenameParams(
        types.TextDocumentIdentifier(uri), at_parent, "baseline"))
    renamed = apply_text_edits(messy, rename.changes[uri])
    assert "model baseline:" in renamed and "model small_wide from baseline:" in renamed
    with pytest.raises(JsonRpcException, match="already exists"):
        await client.text_document_rename_async(types.RenameParams(
            types.TextDocumentIdentifier(uri), at_parent, "small_wide"))
    with pytest.raises(JsonRpcException, match="not a valid model name"):
        await client.text_document_rename_async(types.RenameParams(
            types.TextDocumentIdentifier(uri), at_parent, "9lives"))
    with pytest.raises(JsonRpcException, match="only model names"):
        await client.text_document_prepare_rename_async(types.PrepareRenameParams(
            types.TextDocumentIdentifier(uri), types.Position(CONV, 5)))
    editor.close(uri)


async def test_junk_and_unknown_documents_never_crash_the_server(session: Session, client: LanguageClient,
                                                                 editor: Editor):
    uri = editor.open(session.path("junk.remap"), "\x00\x01model ::\n\t@@@(\n" + "é" * 50 + "\n    dense 1e999\n")
    found = await diagnostics_of(client, editor, uri)
    assert found
    await hover(client, uri, 1, 3)  # answered, not an error response
    missing = (session.path("never-opened.remap")).as_uri()
    assert await hover(client, missing, 0, 0) is None
    assert await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        types.TextDocumentIdentifier(missing))) == []
    # the server still answers afterwards
    header = await hover(client, uri, 0, 0)
    assert header is None or isinstance(header.contents, types.MarkupContent)
    editor.close(uri)
