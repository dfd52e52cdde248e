"""The skips of a chip: one arc per residual block, over the chip, from the block's input to its addition.

A block over layers `start` up to `stop` draws its arc from the gap before layer `start` (where its input
leaves the layer before) to the gap after layer `stop - 1`, where the addition sits. Arcs of nested blocks
stack: a block's `level` is one more than the highest level inside it, so an outer arc clears the inner ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import BlockInfo, ModelInfo
from remapdsl.language.blocks import shortcut_kind
from remapdsl.language.catalog import describe_shape
from remapdsl.language.model import Block

SAME_BLOCK, ADDED_BLOCK, REMOVED_BLOCK = "same", "added", "removed"


@dataclass(frozen=True)
class Skip:
    """One block's arc: the layers it spans, how high it stacks, its shortcut and what a tooltip says."""

    start: int
    stop: int
    level: int
    shortcut: str
    title: str
    status: str = SAME_BLOCK

    @property
    def projected(self) -> bool:
        return self.shortcut != "identity"


def levels(blocks: Sequence[Block]) -> list[int]:
    """The stacking level of each block (listed outer before inner): 1 with no block inside."""
    out = [1] * len(blocks)
    for i in range(len(blocks) - 1, -1, -1):
        a = blocks[i]
        inner = [out[j] for j in range(i + 1, len(blocks))
                 if a.start <= blocks[j].start and blocks[j].stop <= a.stop]
        out[i] = 1 + max(inner, default=0)
    return out


def skips_of(model: ModelInfo) -> tuple[Skip, ...]:
    """The arcs of a model's blocks, in the order of its blocks."""
    blocks = model.model.blocks
    if not blocks:
        return ()
    infos = model.blocks if len(model.blocks) == len(blocks) else tuple(BlockInfo(b, None, None, None)
                                                                         for b in blocks)
    return tuple(Skip(b.start, b.stop, level, shortcut_kind(b.written()), describe_block(info))
                 for b, info, level in zip(blocks, infos, levels(blocks), strict=True))


def describe_block(info: BlockInfo) -> str:
    """`residual block, layers 2–5: 16x8x8 → 32x4x4 through a conv shortcut (544 parameters)`."""
    b = info.block
    kind = shortcut_kind(b.written())
    layers = f"layer {b.start}" if b.stop - b.start == 1 else f"layers {b.start}–{b.stop - 1}"
    shapes = "shapes unknown"
    if info.input_shape is not None and info.output_shape is not None:
        shapes = f"{describe_shape(info.input_shape)} → {describe_shape(info.output_shape)}"
    through = "added as it is" if kind == "identity" else f"through a {kind} shortcut"
    count = f" ({info.param_count:,} parameters)" if info.param_count else ""
    return f"{b.kind} block, {layers}: {shapes}, input {through}{count}"
