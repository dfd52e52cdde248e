"""Residual blocks under edits: where a model's blocks go when layers come and go, and which runs of layers
a new block may wrap.

A block spans layers `start` up to `stop` of its model. Removing a layer inside a block shrinks it (a block
left without layers goes); inserting a layer at a block's first layer or inside it grows it; layers after a
block shift it. Pure functions over the tuple of blocks, outer before inner.
"""

from __future__ import annotations

from dataclasses import replace

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.blocks import shortcut
from remapdsl.language.catalog import ShapeError
from remapdsl.language.model import Arg, Block

# The longest run of layers that a variation or the sampler wraps into one block.
MAX_WRAPPED = 4
# Kinds a wrapped run may start with: a body that starts by weighing its input reads as a residual body.
BODY_STARTS = frozenset({"conv2d", "dense"})


def after_remove(blocks: tuple[Block, ...], index: int) -> tuple[Block, ...]:
    """The blocks once layer `index` is removed."""
    out = []
    for b in blocks:
        if b.stop <= index:
            out.append(b)
        elif b.start > index:
            out.append(replace(b, start=b.start - 1, stop=b.stop - 1))
        elif b.stop - b.start > 1:
            out.append(replace(b, stop=b.stop - 1))
    return tuple(out)


def after_insert(blocks: tuple[Block, ...], index: int) -> tuple[Block, ...]:
    """The blocks once a layer is inserted before position `index`: a layer put before a block's first layer
    or inside it joins the block."""
    out = []
    for b in blocks:
        if b.start > index:
            out.append(replace(b, start=b.start + 1, stop=b.stop + 1))
        elif index < b.stop:
            out.append(replace(b, stop=b.stop + 1))
        else:
            out.append(b)
    return tuple(out)


def with_block(blocks: tuple[Block, ...], block: Block) -> tuple[Block, ...]:
    """`blocks` with `block` added in its place (outer before inner); ValueError when it would cross one."""
    for b in blocks:
        if not (block.stop <= b.start or b.stop <= block.start or (b.start <= block.start and block.stop <= b.stop)
                or (block.start <= b.start and b.stop <= block.stop)):
            raise ValueError(f"layers {block.start}–{block.stop - 1} cross the {b.kind} block over layers "
                             f"{b.start}–{b.stop - 1}: a new block must hold whole blocks or lie inside one")
    # a new block goes outside any block of the same span
    return tuple(sorted((block, *blocks), key=lambda b: (b.start, -b.stop)))


def without_block(blocks: tuple[Block, ...], index: int) -> tuple[Block, ...]:
    return blocks[:index] + blocks[index + 1:]


def inside(blocks: tuple[Block, ...], index: int) -> list[int]:
    """The positions of the blocks within block `index` (itself excluded)."""
    outer = blocks[index]
    return [i for i in range(index + 1, len(blocks)) if outer.start <= blocks[i].start and blocks[i].stop <= outer.stop]


def wrappable_runs(info: ModelInfo, max_length: int = MAX_WRAPPED,
                   starts: frozenset[str] | None = BODY_STARTS) -> list[tuple[int, int, str]]:
    """Runs of an analysed model's layers that a new residual block may wrap: `(start, stop, shortcut)`.

    The run starts with a conv2d or dense layer (any kind, with `starts` None), ends before the head, holds no
    flatten, crosses no block (whole blocks inside it are fine), and its input joins its output: as it is, or
    through a projection (then the shortcut names it).
    """
    layers = info.layers
    head = len(layers) - 1
    blocks = info.model.blocks
    out = []
    for start in range(head):
        if (starts is not None and layers[start].layer.kind not in starts) or layers[start].input_shape is None:
            continue
        for stop in range(start + 1, min(start + max_length, head) + 1):
            last = layers[stop - 1]
            if last.layer.kind == "flatten" or last.output_shape is None:
                break
            if any(not (stop <= b.start or b.stop <= start or (b.start <= start and stop <= b.stop)
                        or (start <= b.start and b.stop <= stop)) for b in blocks):
                continue
            in_shape, out_shape = layers[start].input_shape, last.output_shape
            assert in_shape is not None
            kind = next((k for k in ("identity", "conv", "dense") if _joins(k, in_shape, out_shape)), None)
            if kind is not None:
                out.append((start, stop, kind))
    return out


def new_block(start: int, stop: int, kind: str = "identity") -> Block:
    return Block("residual", start, stop, (Arg("shortcut", kind),) if kind != "identity" else ())


def _joins(kind: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
    try:
        shortcut(kind, in_shape, out_shape)
    except ShapeError:
        return False
    return True
