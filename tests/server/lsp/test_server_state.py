"""What the server keeps between requests, over stdio: diagnostics that follow the edits (in each client's
position encoding), hovers that read a store of trained runs without ever creating one, settings from the
initialization options and from `workspace/configuration`, and hovers fitted to what the client can show."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from remapdsl.language.analysis import analyze
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_model
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import data_line
from tests.server.lsp.session import Session, line_of, options, own_session, published

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

TEXT = """\
data digits
train epochs=2

model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model wide from small:
    conv2d 32 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""


async def hover(session: Session, uri: str, line: int, character: int) -> str | None:
    result = await session.client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri), types.Position(line, character)))
    if result is None:
        return None
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


def units(session: Session, text: str) -> int:
    """The length of `text` in the session's position encoding (Neovim's snapshot asks for UTF-8)."""
    encodings = session.client.capabilities.general.position_encodings if session.client.capabilities.general \
        else None
    if encodings and encodings[0] == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    return len(text.encode("utf-16-le")) // 2


async def test_diagnostics_follow_the_edits_in_the_clients_units_and_clear_on_close(session: Session):
    uri = session.editor.open(session.path("edits.remap"), TEXT)
    assert await published(session, uri) == []
    broken = TEXT.replace("model wide from small:", "model é_wide from smäll:")
    session.editor.change(uri, broken)
    [found] = await published(session, uri)
    prefix = "model é_wide from "
    assert "unknown parent model 'smäll'" in found.message and "did you mean 'small'" in found.message
    assert found.range == types.Range(types.Position(10, units(session, prefix)),
                                      types.Position(10, units(session, prefix + "smäll")))
    session.editor.change(uri, TEXT)
    assert await published(session, uri) == []
    session.editor.change(uri, broken)
    assert await published(session, uri)
    session.editor.close(uri)
    await session.editor.wait_for(lambda: len(session.client.diagnostics[uri]) == 0)


async def test_hovers_read_no_store_into_existence(session: Session):
    uri = session.editor.open(session.path("untrained.remap"), TEXT)
    text = await hover(session, uri, line_of(TEXT, "model wide"), 7)
    assert text is not None and "not trained" in text and "vs `small`" in text
    assert not session.store.parent.exists()
    session.editor.close(uri)


def record_training(store_file, text: str, name: str, accuracies: list[float], per_class: list[float]) -> None:
    """A finished run of model `name`, as a worker records it."""
    result = parse(text)
    info = analyze(result.document, result.diagnostics).models[name]
    model_hash = architecture_hash(info.model)
    with Store(store_file) as store:
        store.add_model(model_hash, format_model(info.model), params=info.param_count, flops=info.flops)
        run = store.add_run(model_hash, name, data_key="digits", data_text=data_line(result.document),
                            settings_key="test", settings={}, params=info.param_count, flops=info.flops)
        store.start_run(run, n_train=1437, params=info.param_count, flops=info.flops)
        for epoch, accuracy in enumerate(accuracies, 1):
            store.record_epoch(run, EpochRow(run, epoch, 1.0, accuracy, 1.0, accuracy, 3.0))
        store.finish_run(run, "done", used_device="cpu", confusion=np.eye(len(per_class), dtype=np.int64),
                         per_class=np.array(per_class))


async def test_a_trained_model_shows_accuracy_curve_classes_and_the_change_from_its_parent(session: Session):
    classes = [0.9] * 10
    classes[3], classes[8], classes[0], classes[7] = 0.5, 0.6, 0.99, 0.98
    record_training(session.store, TEXT, "small", [0.4, 0.8], [0.8] * 10)
    record_training(session.store, TEXT, "wide", [0.2, 0.3], [0.3] * 10)  # an older run: the newest one counts
    record_training(session.store, TEXT, "wide", [0.3, 0.6, 0.9], classes)
    uri = session.editor.open(session.path("trained.remap"), TEXT)
    text = await hover(session, uri, line_of(TEXT, "model wide"), 7)
    assert text is not None
    assert "validation accuracy **90.0%**" in text and "▁▄█ over 3 epoch(s)" in text
    assert "trained in 9.0s on cpu" in text
    assert "best classes: 0 99%, 7 98%" in text and "worst: 3 50%, 8 60%" in text
    assert "vs `small`: +" in text and "+10.0 points of accuracy" in text
    session.editor.close(uri)


async def test_an_untrained_model_gets_an_estimate_from_the_runs_measured_before(session: Session):
    text = TEXT + "\nmodel deep from wide:\n    conv2d 64 kernel=3\n    relu\n    flatten\n    dense 10\n"
    uri = session.editor.open(session.path("estimate.remap"), text)
    found = await hover(session, uri, line_of(text, "model deep"), 7)
    assert found is not None and "estimated training time" in found and "for 2 epoch(s)" in found
    session.editor.close(uri)


async def test_settings_are_read_once_warned_about_and_refreshed(tmp_path):
    bad = {"remap": {"debounceMs": "soon", "autoTrain": "yes", "storePath": 7, "hoverImages": False}}
    async with own_session(tmp_path, init=bad) as session:
        warnings = [m.message for m in session.client.messages if m.type == types.MessageType.Warning]
        assert any("'debounceMs'" in w and "keeping 300" in w for w in warnings)
        assert any("'autoTrain'" in w for w in warnings) and any("'storePath'" in w for w in warnings)
        # the good setting of the same object still applies: no image
        uri = session.editor.open(session.path("m.remap"), TEXT)
        text = await hover(session, uri, line_of(TEXT, "model small"), 7)
        assert text is not None and "```text" in text and "data:image" not in text

        # a change of configuration is read from the client's `remap` section; a store that cannot be opened
        # is reported to the client's log, left as it was, and hovers go on without it
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not a database" * 100)
        # (VS Code's shape: its settings remap.hover.images, remap.store.path arrive as nested objects)
        session.client.set_configuration({"diagnostics": {"debounceMs": -1}, "hover": {"images": True},
                                          "store": {"path": str(junk)}}, section="remap")
        session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await session.editor.wait_for(lambda: any("'diagnostics.debounceMs'" in m.message and "-1" in m.message
                                                  for m in session.client.messages))
        text = await hover(session, uri, line_of(TEXT, "model small"), 7)
        assert text is not None and "data:image/svg+xml;base64," in text and "not trained" in text
        await session.editor.wait_for(lambda: any(str(junk) in m.message for m in session.client.log_messages))
        logged = next(m for m in session.client.log_messages if str(junk) in m.message)
        assert logged.type == types.MessageType.Warning
        assert junk.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize(("name", "client", "image"), [
    ("neovim", "Neovim", False),  # a terminal: the text chip, unless the user asks for images
    ("visual-studio-code", "Visual Studio Code", True),  # images, unless the user turns them off
    ("eglot-1.17", "Eglot", False),  # Emacs renders a hover's Markdown as text
    ("eglot-1.9", None, False),  # no clientInfo (a terminal Emacs): text
])
async def test_the_chip_is_an_image_only_where_the_client_shows_images(tmp_path, name, client, image):
    info = types.ClientInfo(client) if client is not None else None  # None: the snapshot's, here none
    async with own_session(tmp_path, name, options(tmp_path / "store.db"), info) as session:
        uri = session.editor.open(session.path("m.remap"), TEXT)
        line = line_of(TEXT, "model small")

        def shows(text: str | None, image: bool) -> bool:
            return text is not None and ("data:image/svg+xml;base64," in text) is image and \
                ("```text" in text) is not image and len(text.encode()) < 100_000

        assert shows(await hover(session, uri, line, 7), image)
        session.client.set_configuration({"hoverImages": not image}, section="remap")
        session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        for _ in range(100):  # the server asks the client for the section, then applies it
            if shows(await hover(session, uri, line, 7), not image):
                break
            await asyncio.sleep(0.05)
        assert shows(await hover(session, uri, line, 7), not image)


async def test_a_file_without_a_final_line_break_is_fixed_and_formatted_at_its_very_end(session: Session):
    text = "data digits\nmodel m:  # é\n    conv2d 16 kernel=\n    flatten"
    uri = session.editor.open(session.path("open-ended.remap"), text)
    # a cursor past the end of its line completes at the end of the line
    completion = await session.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(2, 999)))
    assert [item.label for item in completion.items] == ["kernel=1", "kernel=3", "kernel=5"]
    session.editor.change(uri, text.replace("kernel=", "kernel=3"))
    found = await published(session, uri)
    assert [d.message for d in found] == ["a model must end with the classifier head: dense 10"]
    actions = await session.editor.actions(uri, (3, 4), only=[types.CodeActionKind.QuickFix])
    assert actions == []  # the diagnostic was not sent with the request: nothing to fix
    listed = await session.client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(uri), found[0].range, types.CodeActionContext(diagnostics=found)))
    [fix] = [a for a in listed if isinstance(a, types.CodeAction) and a.kind == types.CodeActionKind.QuickFix]
    assert fix.title == "Append dense 10" and list(fix.diagnostics) == found
    assert session.editor.apply(fix.edit)
    assert session.editor.texts[uri].endswith("    flatten\n    dense 10")
    assert await published(session, uri) == []
    edits = await session.client.text_document_formatting_async(types.DocumentFormattingParams(
        types.TextDocumentIdentifier(uri), types.FormattingOptions(4, True)))
    assert session.editor.apply(types.WorkspaceEdit(changes={uri: edits}))
    assert session.editor.texts[uri] == ("data digits\n\nmodel m:  # é\n    conv2d 16 kernel=3\n    flatten\n"
                                         "    dense 10\n")
    session.editor.close(uri)


async def test_a_client_without_markdown_gets_plain_text_and_a_bad_epochs_value_is_no_error(tmp_path):
    capabilities = client_capabilities("neovim")
    capabilities.text_document.hover.content_format = [types.MarkupKind.PlainText]
    async with own_session(tmp_path, "neovim", capabilities=capabilities) as session:
        text = TEXT.replace("train epochs=2", "train epochs=lots")
        uri = session.editor.open(session.path("m.remap"), text)
        result = await session.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri), types.Position(line_of(text, "model wide"), 7)))
        assert result is not None and result.contents.kind == types.MarkupKind.PlainText
        shown = result.contents.value
        assert shown.startswith("wide — from small\n") and "C R M F D" in shown and "not trained" in shown
        assert "**" not in shown and "`" not in shown and "data:image" not in shown
