"""Diff SNAC alignment: which layers a child kept, changed, removed or added relative to its parent.

Layers are matched by kind and resolved parameters (difflib's longest matching blocks, so the shared
prefix and suffix of an ablation or variation line up). Inside a stretch that differs, layers of the same
category pair up as "changed" (conv2d 16 → 32, maxpool → avgpool, relu → tanh); what is left is removed
from the parent or added in the child.

Residual blocks are matched by the layers both models share: a child's block that wraps the same shared
layers as one of the parent's (with the same shortcut) is that block, whatever was added or removed inside
it; any other block of the child was added, any other of the parent's removed. Their arcs are given on the
diff's rows (`SnacDiff.parent_skips`, `child_skips`), so that renderers draw them over the aligned columns.

Rows are numbered as change records number them (`remapdsl.search.changes.Change`): a layer the parent has (changed
or removed) by its index in the parent, a layer only the child has (added) by its index in the child.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.model import Value
from remapdsl.snac.geometry import SnacBlock, blocks_of, value_text
from remapdsl.snac.skips import ADDED_BLOCK, REMOVED_BLOCK, SAME_BLOCK, Skip, skips_of

SAME, CHANGED, REMOVED, ADDED = "same", "changed", "removed", "added"
# One mark per status, shared by the SVG and text renderers.
MARKS = {SAME: "", CHANGED: "Δ", REMOVED: "−", ADDED: "+"}


@dataclass(frozen=True)
class DiffRow:
    """One aligned column: a parent layer, a child layer, or both."""

    status: str
    parent: SnacBlock | None
    child: SnacBlock | None
    changes: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        return MARKS[self.status]

    def describe(self) -> str:
        """`Δ 0 conv2d: filters 16 → 32`, `− 2 maxpool size=2 stride=2`, `+ 3 dropout rate=0.25`.

        Changed and removed layers by the parent's index, added ones by the child's, as the child's change
        records number them."""
        if self.status == CHANGED:
            assert self.parent is not None and self.child is not None
            return f"{self.mark} {self.parent.index} {self.child.kind}: {', '.join(self.changes)}"
        block = self.child if self.status == ADDED else self.parent
        assert block is not None
        args = block.args_text()
        return f"{self.mark} {block.index} {block.kind}" + (f" {args}" if args else "")


@dataclass(frozen=True)
class SnacDiff:
    parent: ModelInfo
    child: ModelInfo
    rows: tuple[DiffRow, ...]
    # the arcs of each side's blocks, spanning rows rather than layers, with their status
    parent_skips: tuple[Skip, ...] = field(default=())
    child_skips: tuple[Skip, ...] = field(default=())

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def block_count(self, status: str) -> int:
        skips = self.parent_skips if status == REMOVED_BLOCK else self.child_skips
        return sum(s.status == status for s in skips)

    def summary(self) -> str:
        """`1 changed, 1 removed, 1 block added` (or `no change`)."""
        parts = [f"{self.count(s)} {s}" for s in (CHANGED, REMOVED, ADDED) if self.count(s)]
        for status in (REMOVED_BLOCK, ADDED_BLOCK):
            n = self.block_count(status)
            if n:
                parts.append(f"{n} block{'s' if n > 1 else ''} {status}")
        return ", ".join(parts) or "no change"

    def block_changes(self) -> list[str]:
        """`− residual block (shortcut conv) over parent layers 2–4`, `+ residual block over child layers 3–5`."""
        out = []
        for side, skips, status, mark in (("parent", self.parent_skips, REMOVED_BLOCK, MARKS[REMOVED]),
                                          ("child", self.child_skips, ADDED_BLOCK, MARKS[ADDED])):
            model = self.parent if side == "parent" else self.child
            for skip, block in zip(skips, model.model.blocks, strict=True):
                if skip.status != status:
                    continue
                shortcut = "" if skip.shortcut == "identity" else f" (shortcut {skip.shortcut})"
                span = f"layer {block.start}" if block.stop - block.start == 1 else \
                    f"layers {block.start}–{block.stop - 1}"
                out.append(f"{mark} {block.kind} block{shortcut} over {side} {span}")
        return out


def diff_models(parent: ModelInfo, child: ModelInfo) -> SnacDiff:
    """Parent and child layers aligned, with each child layer's status, and each side's blocks marked."""
    rows = tuple(align(blocks_of(parent), blocks_of(child)))
    if not parent.model.blocks and not child.model.blocks:
        return SnacDiff(parent, child, rows)
    parent_skips, child_skips = match_blocks(rows, skips_of(parent), skips_of(child))
    return SnacDiff(parent, child, rows, parent_skips, child_skips)


def match_blocks(rows: Sequence[DiffRow], parent: Sequence[Skip],
                 child: Sequence[Skip]) -> tuple[tuple[Skip, ...], tuple[Skip, ...]]:
    """Both sides' arcs moved onto the rows, each marked same, removed (parent) or added (child)."""
    parent_row = {r.parent.index: i for i, r in enumerate(rows) if r.parent is not None}
    child_row = {r.child.index: i for i, r in enumerate(rows) if r.child is not None}
    shared = {i for i, r in enumerate(rows) if r.parent is not None and r.child is not None}

    def on_rows(skip: Skip, where: dict[int, int]) -> tuple[Skip, frozenset[int]]:
        covered = [where[i] for i in range(skip.start, skip.stop) if i in where]
        if not covered:
            return skip, frozenset()
        return replace(skip, start=min(covered), stop=max(covered) + 1), frozenset(covered) & shared

    parents = [on_rows(s, parent_row) for s in parent]
    children = [on_rows(s, child_row) for s in child]
    taken: set[int] = set()
    child_out = []
    for skip, cover in children:
        match = next((i for i, (p, pc) in enumerate(parents)
                      if i not in taken and cover and pc == cover and p.shortcut == skip.shortcut), None)
        if match is None:
            child_out.append(replace(skip, status=ADDED_BLOCK))
        else:
            taken.add(match)
            child_out.append(replace(skip, status=SAME_BLOCK))
    parent_out = [replace(p, status=SAME_BLOCK if i in taken else REMOVED_BLOCK) for i, (p, _) in enumerate(parents)]
    return tuple(parent_out), tuple(child_out)


def align(parent: Sequence[SnacBlock], child: Sequence[SnacBlock]) -> list[DiffRow]:
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, [b.key for b in parent], [b.key for b in child], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows.extend(DiffRow(SAME, p, c) for p, c in zip(parent[i1:i2], child[j1:j2], strict=True))
        else:
            rows.extend(_pair_by_category(parent[i1:i2], child[j1:j2]))
    return rows


def _pair_by_category(parent: Sequence[SnacBlock], child: Sequence[SnacBlock]) -> list[DiffRow]:
    rows: list[DiffRow] = []
    categories = difflib.SequenceMatcher(None, [_category(b) for b in parent], [_category(b) for b in child],
                                         autojunk=False)
    for op, i1, i2, j1, j2 in categories.get_opcodes():
        if op == "equal":
            rows.extend(DiffRow(CHANGED, p, c, changes(p, c)) for p, c in zip(parent[i1:i2], child[j1:j2], strict=True))
        else:
            # removals first: read left to right, the parent's layer goes and the child's takes its place
            rows.extend(DiffRow(REMOVED, p, None) for p in parent[i1:i2])
            rows.extend(DiffRow(ADDED, None, c) for c in child[j1:j2])
    return rows


def _category(block: SnacBlock) -> str:
    # an unknown kind only pairs with the same unknown kind
    return block.category or f"?{block.kind}"


def changes(parent: SnacBlock, child: SnacBlock) -> tuple[str, ...]:
    """What differs between two layers of one category: `maxpool → avgpool`, `filters 16 → 32`."""
    out: list[str] = []
    if parent.kind != child.kind:
        out.append(f"{parent.kind} → {child.kind}")
    for name in [*parent.params, *(n for n in child.params if n not in parent.params)]:
        before, after = parent.params.get(name), child.params.get(name)
        if before != after:
            # an unknown kind's positional value has no name
            out.append(f"{name or 'value'} {_show(before)} → {_show(after)}")
    return tuple(out)


def _show(value: Value | None) -> str:
    return "none" if value is None else value_text(value)
