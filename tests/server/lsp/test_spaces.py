"""Search spaces in the language server over stdio, for each editor snapshot: the hover of a space line (size,
parameter range, budget) and of a choice, completion of choice and skip inside a space."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.server.lsp.editor import Editor
from tests.server.lsp.session import Session

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

TEXT = """\
data digits
budget params <= 5k

space small_cnn:
    choice:
        conv2d 16 kernel=3
        conv2d 32 kernel=5
    relu
    maxpool 2|4
    flatten
    dense 10

model m from space small_cnn:
    flatten
    dense 10
"""
SPACE, CHOICE, SHORTHAND = 3, 4, 8


@pytest.fixture
def client(session: Session) -> LanguageClient:
    return session.client


@pytest.fixture
def editor(session: Session) -> Editor:
    return session.editor


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> str:
    result = await client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(uri),
                                                                      types.Position(line, character)))
    assert result is not None
    return str(result.contents.value)


async def test_space_and_choice_hovers_give_the_size_and_parameter_range(session: Session, client: LanguageClient,
                                                                         editor: Editor):
    uri = editor.open(session.path("space-hover.remap"), TEXT)
    text = await hover(client, uri, SPACE, 8)
    # conv2d 16 k3 (160) or conv2d 32 k5 (832); maxpool 2 leaves 13x13, 4 leaves 6x6; dense 10 on the rest
    assert "4 paths" in text and "4 valid models" in text
    assert "1,610 to 5,962 parameters" in text
    assert "3 within the parameter budget, 1 over it and left out" in text
    choice = await hover(client, uri, CHOICE, 6)
    assert "2 alternatives" in choice and "`conv2d 32 kernel=5`" in choice
    shorthand = await hover(client, uri, SHORTHAND, 6)
    assert "`maxpool 2`" in shorthand and "`maxpool 4`" in shorthand
    model = await hover(client, uri, 12, 7)
    assert "from space `small_cnn`" in model
    editor.close(uri)


async def test_completion_offers_choice_and_skip_inside_a_space_only(session: Session, client: LanguageClient,
                                                                    editor: Editor):
    text = TEXT.replace("    relu\n", "    relu\n    \n", 1)
    uri = editor.open(session.path("space-complete.remap"), text)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(8, 4)))
    assert result is not None
    labels = [i.label for i in (result.items if isinstance(result, types.CompletionList) else result)]
    assert "choice" in labels and "skip" in labels and "residual" not in labels
    in_model = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri), types.Position(14, 4)))
    assert in_model is not None
    labels = [i.label for i in (in_model.items if isinstance(in_model, types.CompletionList) else in_model)]
    assert "residual" in labels and "choice" not in labels
    editor.close(uri)


async def test_spaces_fold_and_appear_in_the_outline_with_their_positions(session: Session, client: LanguageClient,
                                                                          editor: Editor):
    uri = editor.open(session.path("space-outline.remap"), TEXT)
    ranges = await client.text_document_folding_range_async(types.FoldingRangeParams(
        types.TextDocumentIdentifier(uri)))
    assert ranges is not None
    assert sorted((r.start_line, r.end_line) for r in ranges) == [(SPACE, 10), (CHOICE, 6), (12, 14)]
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        types.TextDocumentIdentifier(uri)))
    assert symbols is not None
    space = next(s for s in symbols if s.name == "small_cnn")
    assert isinstance(space, types.DocumentSymbol) and space.detail is not None and "4 paths" in space.detail
    assert [c.name for c in space.children or []] == [
        "0 choice of 2: conv2d 16 kernel=3 | conv2d 32 kernel=5", "1 relu", "2 choice of 2: maxpool 2 | maxpool 4",
        "3 flatten", "4 dense 10"]
    editor.close(uri)
