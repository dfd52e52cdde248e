"""Residual blocks in the language server over stdio, for each editor snapshot: the hover of a block line,
folding ranges for models and blocks, completion of `residual` and its options, and the code action that wraps
the selected layers in a block."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse
from tests.server.lsp.editor import Editor
from tests.server.lsp.session import Session

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

TEXT = """\
data digits

model res:
    conv2d 16
    relu
    residual shortcut=conv:
        conv2d 32 stride=2
        batchnorm
        residual:
            conv2d 32
            relu
    flatten
    dense 10

model seq:
    conv2d 16
    relu
    conv2d 16
    relu
    maxpool 2
    flatten
    dense 10
"""
OUTER, INNER, SEQ = 5, 8, 14  # lines of the two block lines and of `model seq:`


@pytest.fixture
def client(session: Session) -> LanguageClient:
    return session.client


@pytest.fixture
def editor(session: Session) -> Editor:
    return session.editor


async def test_a_block_lines_hover_gives_its_shapes_body_and_shortcut(session: Session, client: LanguageClient,
                                                                     editor: Editor):
    uri = editor.open(session.path("block-hover.remap"), TEXT)
    result = await client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(uri),
                                                                      types.Position(OUTER, 6)))
    assert result is not None
    text = result.contents.value
    assert "residual" in text and "16x8x8 → 32x4x4" in text
    assert "1x1 convolution, stride 2, 544 parameters" in text
    # the body: conv2d 32 stride 2 (4,640), batchnorm (64), conv2d 32 (9,248)
    assert "body 13,952 parameters" in text
    assert result.range.start.line == OUTER
    inner = await client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(uri),
                                                                     types.Position(INNER, 10)))
    assert inner is not None and "32x4x4 → 32x4x4" in inner.contents.value
    assert "identity shortcut" in inner.contents.value
    editor.close(uri)


async def test_models_and_blocks_fold(session: Session, client: LanguageClient, editor: Editor):
    uri = editor.open(session.path("block-fold.remap"), TEXT)
    ranges = await client.text_document_folding_range_async(types.FoldingRangeParams(
        types.TextDocumentIdentifier(uri)))
    assert ranges is not None
    assert sorted((r.start_line, r.end_line) for r in ranges) == [(2, 12), (OUTER, 10), (INNER, 10), (SEQ, 21)]
    editor.close(uri)


async def test_completion_offers_residual_and_its_options(session: Session, client: LanguageClient, editor: Editor):
    uri = editor.open(session.path("block-complete.remap"), "model m:\n    \n    residual \n")

    async def items(line: int, character: int) -> list[types.CompletionItem]:
        result = await client.text_document_completion_async(types.CompletionParams(
            types.TextDocumentIdentifier(uri), types.Position(line, character)))
        return result.items if isinstance(result, types.CompletionList) else result or []

    at_start = {i.label: i for i in await items(1, 4)}
    assert "residual" in at_start and "conv2d" in at_start
    block = at_start["residual"]
    inserted = block.text_edit.new_text if block.text_edit is not None else block.insert_text
    assert inserted == "residual:"
    assert [i.label for i in await items(2, len("    residual "))] == ["shortcut="]
    editor.change(uri, "model m:\n    \n    residual shortcut=\n")
    assert [i.label for i in await items(2, len("    residual shortcut="))] == \
        ["shortcut=identity", "shortcut=conv", "shortcut=dense"]
    editor.close(uri)


async def test_the_selected_layers_are_wrapped_in_a_block_in_place(session: Session, client: LanguageClient,
                                                                 editor: Editor):
    uri = editor.open(session.path("block-wrap.remap"), TEXT)
    # the second conv2d and relu of seq: same shape in and out, so the block adds its input as it is
    actions = await editor.actions(uri, (SEQ + 3, 0), (SEQ + 4, 8))
    (wrap,) = [a for a in actions if a.kind == "refactor.rewrite.remap.wrap"]
    assert wrap.title == "Wrap the selected layers in a residual block"
    texts = editor.edited(wrap.edit)
    assert texts is not None
    wrapped = texts[uri]
    assert "    relu\n    residual:\n        conv2d 16\n        relu\n    maxpool 2\n" in wrapped
    result = parse(wrapped)
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.valid, analysis.diagnostics
    assert [(b.start, b.stop) for b in analysis.models["seq"].model.blocks] == [(2, 4)]
    # a run that changes the shape gets a projection; one holding the head or crossing a block gets nothing
    projecting = [a for a in await editor.actions(uri, (SEQ + 1, 0), (SEQ + 2, 8))
                  if a.kind == "refactor.rewrite.remap.wrap"]
    assert [a.title for a in projecting] == ["Wrap the selected layers in a residual block (shortcut=conv)"]
    assert not [a for a in await editor.actions(uri, (SEQ + 6, 0), (SEQ + 7, 8))
                if a.kind == "refactor.rewrite.remap.wrap"]
    assert not [a for a in await editor.actions(uri, (OUTER + 1, 0), (OUTER + 4, 4))
                if a.kind == "refactor.rewrite.remap.wrap"]
    editor.close(uri)
