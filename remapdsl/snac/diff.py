"""Diff SNAC alignment: which layers a child kept, changed, removed or added relative to its parent.

Layers are matched by kind and resolved parameters (difflib's longest matching blocks, so the shared
prefix and suffix of an ablation or variation line up). Inside a stretch that differs, layers of the same
category pair up as "changed" (conv2d 16 → 32, maxpool → avgpool, relu → tanh); what is left is removed
from the parent or added in the child.

Rows are numbered as change records number them (`remapdsl.search.changes.Change`): a layer the parent has (changed
or removed) by its index in the parent, a layer only the child has (added) by its index in the child.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.model import Value
from remapdsl.snac.geometry import SnacBlock, blocks_of, value_text

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

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    def summary(self) -> str:
        """`1 changed, 1 removed` (or `no change`)."""
        parts = [f"{self.count(s)} {s}" for s in (CHANGED, REMOVED, ADDED) if self.count(s)]
        return ", ".join(parts) or "no change"


def diff_models(parent: ModelInfo, child: ModelInfo) -> SnacDiff:
    """Parent and child layers aligned, with each child layer's status."""
    return SnacDiff(parent, child, tuple(align(blocks_of(parent), blocks_of(child))))


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
