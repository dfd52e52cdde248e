"""Hover: a model's SNAC chip, facts and nearest structural neighbours, a layer's shapes and parameters, a
block's shapes, body and shortcut, what a header line means."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.editor.blocks import block_hover
from remapdsl.editor.facts import StoreFacts, store_facts
from remapdsl.editor.hover import HEADER_HELP, layer_hover, model_hover, plain_text, planned_batch, planned_epochs
from remapdsl.editor.navigation import name_at
from remapdsl.editor.spaces import choice_hover, space_hover
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Position
from remapdsl.store.db import Store
from remapdsl.store.queue import data_line

from ..convert import from_lsp_position, to_lsp_range

if TYPE_CHECKING:
    from ..documents import DocumentState
    from ..server import RemapServer


# Clients known to show a Markdown image in a hover. Any other gets the text chip: a terminal editor shows a
# data URI as kilobytes of base64, and so may a client that sends no clientInfo (Eglot 1.9 in a terminal
# Emacs). Eglot renders a hover's Markdown into text with markdown-mode's gfm-view-mode, which shows no inline
# images by default and never a data URI, so even a graphical Emacs ("Eglot") is given text.
IMAGE_CLIENTS = ("visual studio code", "vscodium", "code - oss")


def wants_images(ls: RemapServer) -> bool:
    """Markdown images need a client that renders Markdown in hovers; the `hoverImages` setting decides, or
    else the client's name (capabilities do not say whether a client shows images)."""
    document = ls.client_capabilities.text_document
    hover = document.hover if document else None
    formats = hover.content_format if hover and hover.content_format else []
    if types.MarkupKind.Markdown not in formats:
        return False
    if ls.settings.hover_images is not None:
        return ls.settings.hover_images
    name = (ls.client_info.name if ls.client_info else "").lower()
    return any(client in name for client in IMAGE_CLIENTS)


def read_facts(store: Store | None, hashes: list[str], data_text: str) -> list[StoreFacts | None]:
    if store is None:
        return [None] * len(hashes)
    return [store_facts(store, h, data_text) for h in hashes]


def hover_text(ls: RemapServer, state: DocumentState, position: Position,
               images: bool) -> tuple[str, types.Range] | None:
    """Runs off the event loop: analysis lookups, store reads and SVG drawing."""
    document, codec = state.analysis.document, ls.workspace.position_codec
    found = name_at(document, position)
    if found is not None:
        info = state.analysis.models.get(found.name)
        if info is None:
            return None
        parent = state.analysis.models.get(info.model.parent) if info.model.parent and \
            not info.model.parent_space else None
        hashes = [architecture_hash(info.model)] + ([architecture_hash(parent.model)] if parent else [])
        facts = read_facts(ls.store(state.uri), hashes, data_line(document))
        parent_facts = facts[1] if parent else None
        classes = state.analysis.dataset.class_names if state.analysis.dataset else ()
        text = model_hover(info, images=images, facts=facts[0], epochs=planned_epochs(document),
                           parent=parent, class_names=classes,
                           parent_acc=parent_facts.trained.val_acc if parent_facts and parent_facts.trained else None,
                           neighbours=ls.neighbours.closest(state, found.name), batch=planned_batch(document))
        return text, to_lsp_range(codec, state.lines, found.range)
    for space in document.spaces:
        space_info = state.analysis.spaces.get(space.name)
        if space_info is None or space_info.space is not space:
            continue
        if space.range.start.line == position.line:
            return space_hover(space_info), to_lsp_range(codec, state.lines, space.name_range)
        for index, item in enumerate(space.positions):
            if item.range.start.line == position.line and space.options(index) != (item,):
                return choice_hover(space, index), to_lsp_range(codec, state.lines, item.kind_range)
    for model in document.models:
        for index, block in enumerate(model.blocks):
            if block.range.start.line == position.line:
                info = state.analysis.models.get(model.name)
                if info is None or info.model is not model or index >= len(info.blocks):
                    return None
                return block_hover(info, index), to_lsp_range(codec, state.lines, block.range)
        for index, layer in enumerate(model.layers):
            if layer.range.start.line == position.line:
                info = state.analysis.models.get(model.name)
                if info is None or info.model is not model or index >= len(info.layers):
                    return None
                return layer_hover(info, index), to_lsp_range(codec, state.lines, layer.range)
    for line in (document.data, document.train, *document.budgets):
        if line is not None and line.range.start.line == position.line:
            keyword = "data" if line is document.data else "train" if line is document.train else "budget"
            return HEADER_HELP[keyword], to_lsp_range(codec, state.lines, line.range)
    return None


def register(server: RemapServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: RemapServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        state = await ls.run_blocking(ls.document_state, uri)
        if state is None:
            return None
        position = from_lsp_position(ls.workspace.position_codec, state.lines, params.position)
        images = wants_images(ls)
        found = await ls.run_blocking(hover_text, ls, state, position, images)
        if found is None:
            return None
        text, r = found
        if _markdown(ls):
            return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text), r)
        return types.Hover(types.MarkupContent(types.MarkupKind.PlainText, plain_text(text)), r)


def _markdown(ls: RemapServer) -> bool:
    document = ls.client_capabilities.text_document
    hover = document.hover if document else None
    formats = hover.content_format if hover and hover.content_format else [types.MarkupKind.Markdown]
    return types.MarkupKind.Markdown in formats
