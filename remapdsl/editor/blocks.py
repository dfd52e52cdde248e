"""Residual blocks in the editor: a block line's hover, folding ranges, and wrapping selected layers in a new
block as a text edit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.blocks import BLOCK_DOCS, shortcut_kind
from remapdsl.language.catalog import describe_shape
from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Document, Position, Range
from remapdsl.language.printer import INDENT
from remapdsl.search.residual import wrappable_runs


def block_hover(info: ModelInfo, index: int) -> str:
    """The hover of block `index` of an analysed model: its shapes in and out, its body's parameters, its
    shortcut."""
    bi = info.blocks[index]
    b = bi.block
    shapes = (f"{describe_shape(bi.input_shape) if bi.input_shape else '?'} → "
              f"{describe_shape(bi.output_shape) if bi.output_shape else '?'}")
    span = f"layer {b.start}" if b.stop - b.start == 1 else f"layers {b.start}–{b.stop - 1}"
    kind = shortcut_kind(b.written())
    if kind == "identity":
        through = "the input is added as it is (identity shortcut)"
    elif bi.shortcut is not None:
        detail = f"1x1 convolution, stride {bi.shortcut.stride}" if kind == "conv" else "dense projection"
        through = f"the input is projected ({detail}, {bi.param_count:,} parameters)"
    else:
        through = f"the input is projected by shortcut={kind}"
    doc = BLOCK_DOCS.get(b.kind, "")
    body = info.body_param_count(bi)
    total = info.param_count
    share = f" ({(body + bi.param_count) / total:.1%} of the model with its shortcut)" if total else ""
    return (f"**{b.kind}** block over {span} of `{info.model.name}`\n\n"
            f"{shapes} · body {body:,} parameters{share}\n\n{through}" + (f"\n\n{doc[:1].upper()}{doc[1:]}."
                                                                            if doc else ""))


def folding_ranges(document: Document) -> list[tuple[int, int]]:
    """(first line, last line) of every model and every block that spans more than its own line."""
    out = []
    for model in document.models:
        if model.range.end.line > model.range.start.line:
            out.append((model.range.start.line, model.range.end.line))
        for b in model.blocks:
            last = model.layers[b.stop - 1].range.end.line
            if last > b.range.start.line:
                out.append((b.range.start.line, last))
    return out


@dataclass(frozen=True)
class Wrap:
    """The text edits that wrap layers `start` up to `stop` in a residual block, and the block's shortcut."""

    start: int
    stop: int
    shortcut: str
    edits: tuple[TextEdit, ...]

    @property
    def title(self) -> str:
        projected = "" if self.shortcut == "identity" else f" (shortcut={self.shortcut})"
        return f"Wrap the selected layers in a residual block{projected}"


def wrap_selection(info: ModelInfo, selected: Sequence[int], lines: Sequence[str]) -> Wrap | None:
    """How to wrap the `selected` layers (consecutive indices of an analysed, valid model) in a new block:
    None when they are not a run that a block may hold (crossing a block, holding the head or a flatten, or
    with an input and output no shortcut joins)."""
    if not selected or not info.valid:
        return None
    start, stop = min(selected), max(selected) + 1
    if sorted(selected) != list(range(start, stop)):
        return None
    kind = next((k for s, e, k in wrappable_runs(info, len(info.layers), starts=None) if (s, e) == (start, stop)),
                None)
    if kind is None:
        return None
    layers = info.model.layers
    first, last = layers[start].range.start.line, layers[stop - 1].range.end.line
    text = lines[first] if first < len(lines) else ""
    indent = text[: len(text) - len(text.lstrip(" \t"))]
    head = "residual:" if kind == "identity" else f"residual shortcut={kind}:"
    at = Position(first, 0)
    # one edit per line: clients differ in how they order several inserts at one position
    edits = [TextEdit(Range(at, at), f"{indent}{head}\n{INDENT}")]
    for line in range(first + 1, last + 1):
        if line < len(lines) and lines[line].strip():
            start_of_line = Position(line, 0)
            edits.append(TextEdit(Range(start_of_line, start_of_line), INDENT))
    return Wrap(start, stop, kind, tuple(edits))
