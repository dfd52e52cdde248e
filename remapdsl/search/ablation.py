"""Ablation: one child per selected layer, that layer removed, to see what each layer is worth; and one
child per selected residual block, the block removed with its layers.

The classifier head is never removed. A child that no longer fits together is repaired where one small fix
does it (a dense layer left without a flat input gets a flatten before it), otherwise left out; children
over the parameter budget and children that repeat an architecture already known are left out too. Every
layer that yields no child, and every repair, gets a note: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import analyze_model
from remapdsl.language.annotations import allowed_ops
from remapdsl.language.catalog import LAYER_TYPES, is_spatial
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Block, Budget, Layer, ModelSpec
from remapdsl.language.printer import budget_limit_text
from remapdsl.search.changes import (
    Change,
    Child,
    check_parent,
    derive,
    first_error,
    over_budget,
    unique_name,
)
from remapdsl.search.edits import Edit, insert, remove, remove_block
from remapdsl.search.sampler import output_of

ORIGIN = "ablation"


@dataclass(frozen=True)
class AblationResult:
    parent: ModelSpec
    children: tuple[Child, ...]
    notes: tuple[str, ...]


def ablate(model: ModelSpec, dataset: DatasetInfo, layers: Sequence[int] | None = None, budget: Budget | None = None,
           *, existing_names: Collection[str] = (), existing_hashes: Collection[str] = (),
           blocks: Sequence[int] | None = None) -> AblationResult:
    """One child per selected layer of `model` (default: every layer but the head and frozen ones), removed;
    then one per selected block (default, when no layers are selected: every block its annotations let go),
    removed with its layers.

    Children are named `<parent>_abl<index>` (`<parent>_ablblock<position>` for a block), made unique against
    `existing_names`; a child whose architecture is the parent's, a sibling's or one of `existing_hashes` is
    left out with a note. Raises ValueError when the parent has errors or an index is out of range.
    """
    check_parent(model, dataset)
    head = len(model.layers) - 1
    notes: list[str] = []
    if layers is None:
        selected = []
        for i, layer in enumerate(model.layers[:head]):
            if "remove" in allowed_ops(layer):
                selected.append(i)
            else:
                keep = any(a.name == "keep" for a in layer.annotations)
                why = "marked @keep" if keep else "its annotations forbid remove"
                notes.append(f"{_at(model, i)}: {why}, so not ablated (select it explicitly to ablate it)")
    else:
        selected = list(dict.fromkeys(layers))
        for i in selected:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= head:
                raise ValueError(f"layer index {i} is out of range; model '{model.name}' has layers 0 to {head}")
    if blocks is None:
        chosen_blocks = []
        if layers is None:
            for b, block in enumerate(model.blocks):
                if "remove" in allowed_ops(block):
                    chosen_blocks.append(b)
                else:
                    notes.append(f"{_block_at(block)}: its annotations keep it, so not ablated (select it "
                                 "explicitly to ablate it)")
    else:
        chosen_blocks = list(dict.fromkeys(blocks))
        for b in chosen_blocks:
            if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < len(model.blocks):
                last = f"blocks 0 to {len(model.blocks) - 1}" if model.blocks else "no blocks"
                raise ValueError(f"block {b} is out of range; model '{model.name}' has {last}")
    seen = {architecture_hash(model): f"the parent '{model.name}'"}
    seen.update({h: "a model already in the document" for h in existing_hashes if h not in seen})
    taken = set(existing_names) | {model.name}
    children: list[Child] = []
    edits: list[tuple[str, str, Edit]] = []
    for i in selected:
        if i == head:
            notes.append(f"{_at(model, i)}: the classifier head is never ablated")
            continue
        edits.append((_at(model, i), f"{model.name}_abl{i}", remove(model.layers, i, model.blocks)))
    for b in chosen_blocks:
        edits.append((_block_at(model.blocks[b]), f"{model.name}_ablblock{b}",
                      remove_block(model.layers, model.blocks, b)))
    for what, wanted, edit in edits:
        changes = [edit.change]
        child_layers, repair, child_blocks = repaired(edit.layers, dataset, edit.blocks_from(model.blocks))
        if repair is not None:
            changes.append(repair)
        name = unique_name(wanted, taken)
        child = derive(model, child_layers, changes, name, ORIGIN, blocks=child_blocks)
        info = analyze_model(child, dataset, budget)
        if budget is not None and over_budget(info):
            notes.append(f"{what}: skipped, without it the model has {info.param_count:,} parameters, "
                         f"over the budget of {budget_limit_text(budget)}")
            continue
        problem = first_error(info)
        if problem is not None:
            notes.append(f"{what}: skipped, removing it leaves an invalid model ({problem})")
            continue
        key = architecture_hash(child)
        if key in seen:
            fixed = f" (after {_lower(repair.describe())})" if repair else ""
            notes.append(f"{what}: skipped, the child{fixed} has the same architecture as {seen[key]}")
            continue
        if repair is not None:
            notes.append(f"{what}: repaired, {_lower(repair.describe())} so that dense gets a flat input")
        seen[key] = f"sibling '{name}'"
        taken.add(name)
        children.append(Child(child, tuple(changes), info))
    return AblationResult(model, tuple(children), tuple(notes))


def repaired(layers: tuple[Layer, ...], dataset: DatasetInfo, blocks: tuple[Block, ...] = (),
             ) -> tuple[tuple[Layer, ...], Change | None, tuple[Block, ...]]:
    """`layers`, or `layers` with a flatten inserted before the first dense that would get an image; and the
    blocks moved to fit."""
    shape = dataset.input_shape
    for i, layer in enumerate(layers):
        ltype = LAYER_TYPES.get(layer.kind)
        if ltype is None:
            break
        if ltype.needs_flat and is_spatial(shape):
            edit = insert(layers, i, Layer("flatten"), blocks)
            return edit.layers, edit.change, edit.blocks_from(blocks)
        result = output_of(layer, shape)
        if result is None:
            break
        shape = result[0]
    return layers, None, blocks


def _block_at(block: Block) -> str:
    span = f"layer {block.start}" if block.stop - block.start == 1 else f"layers {block.start}–{block.stop - 1}"
    return f"the {block.kind} block over {span}"


def _at(model: ModelSpec, index: int) -> str:
    return f"layer {index} ({model.layers[index].kind})"


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
