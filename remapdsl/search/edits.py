"""Handcrafted edits: insert, remove, replace or reparameterize one layer of a model; wrap layers in a residual
block, unwrap one, or remove one with its layers.

Each operator is pure: it returns a new child model `from` the given one, with the change recorded as a
comment above it (`# filters at 1 from 32 to 128`). The layer-level steps (`insert`, `remove`, ...) return
the edited layers (and the model's blocks, moved to fit) and their `Change`; ablation and variation compose
them.
Operators check what they are given (indices, layer kinds, parameter names and values) and raise
ValueError with a message for the user; whether the child's shapes still fit is analysis's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from remapdsl.language.blocks import BLOCK_KINDS, SHORTCUTS, shortcut_kind
from remapdsl.language.catalog import LAYER_TYPES, LayerType
from remapdsl.language.model import Arg, Block, Layer, ModelSpec, Value
from remapdsl.search.changes import Change, derive, new_layer_text
from remapdsl.search.residual import after_insert, after_remove, inside, new_block, with_block, without_block


@dataclass(frozen=True)
class Edit:
    """Layers and blocks after one change, and the change."""

    layers: tuple[Layer, ...]
    change: Change
    blocks: tuple[Block, ...] | None = None  # None: the change leaves the blocks where they were

    def blocks_from(self, before: tuple[Block, ...]) -> tuple[Block, ...]:
        """The blocks after the change, given those before it."""
        return before if self.blocks is None else self.blocks


def insert(layers: tuple[Layer, ...], index: int, layer: Layer, blocks: tuple[Block, ...] | None = None) -> Edit:
    """`layer` inserted before position `index` (`len(layers)` appends); `blocks`, when given, moved to fit."""
    _check_index(layers, index, "insert at", allow_end=True)
    _check_layer(layer)
    change = Change("prepend", index, layer.kind, layer=new_layer_text(layer))
    moved = None if blocks is None else after_insert(blocks, index)
    return Edit((*layers[:index], layer, *layers[index:]), change, moved)


def remove(layers: tuple[Layer, ...], index: int, blocks: tuple[Block, ...] | None = None) -> Edit:
    """The layer at `index` removed; `blocks`, when given, moved to fit."""
    _check_index(layers, index, "remove")
    moved = None if blocks is None else after_remove(blocks, index)
    return Edit((*layers[:index], *layers[index + 1:]), Change("remove", index, layers[index].kind), moved)


def wrap(layers: tuple[Layer, ...], blocks: tuple[Block, ...], start: int, stop: int,
         kind: str = "identity") -> Edit:
    """Layers `start` up to `stop` wrapped in a new residual block with the `kind` of shortcut."""
    _check_index(layers, start, "wrap from")
    if isinstance(stop, bool) or not isinstance(stop, int) or not start < stop <= len(layers):
        raise ValueError(f"cannot wrap up to index {stop}: expected an index from {start + 1} to {len(layers)}")
    if kind not in SHORTCUTS:
        raise ValueError(f"unknown shortcut '{kind}'; expected {', '.join(SHORTCUTS)}")
    change = Change("wrap", start, "residual", layer="" if kind == "identity" else kind, stop=stop)
    return Edit(layers, change, with_block(blocks, new_block(start, stop, kind)))


def unwrap(layers: tuple[Layer, ...], blocks: tuple[Block, ...], block: int) -> Edit:
    """The block at position `block` of `blocks` gone, its layers kept."""
    b = _block_at(blocks, block)
    kind = shortcut_kind(b.written())
    change = Change("unwrap", b.start, b.kind, layer="" if kind == "identity" else kind, stop=b.stop)
    return Edit(layers, change, without_block(blocks, block))


def remove_block(layers: tuple[Layer, ...], blocks: tuple[Block, ...], block: int) -> Edit:
    """The block at position `block` gone with its layers and the blocks inside it."""
    b = _block_at(blocks, block)
    kind = shortcut_kind(b.written())
    gone = {block, *inside(blocks, block)}
    rest = tuple(x for i, x in enumerate(blocks) if i not in gone)
    for index in range(b.stop - 1, b.start - 1, -1):
        rest = after_remove(rest, index)
    change = Change("remove_block", b.start, b.kind, layer="" if kind == "identity" else kind, stop=b.stop)
    return Edit((*layers[:b.start], *layers[b.stop:]), change, rest)


def replace_at(layers: tuple[Layer, ...], index: int, layer: Layer) -> Edit:
    """The layer at `index` replaced by `layer`; without annotations of its own it takes the old layer's."""
    _check_index(layers, index, "replace")
    _check_layer(layer)
    old = layers[index]
    if not layer.annotations:
        layer = replace(layer, annotations=old.annotations)
    change = Change("replace", index, old.kind, layer=new_layer_text(layer))
    return Edit((*layers[:index], layer, *layers[index + 1:]), change)


def set_param(layers: tuple[Layer, ...], index: int, param: str, value: Value) -> Edit:
    """The layer at `index` with parameter `param` set to `value`."""
    _check_index(layers, index, "reparameterize")
    old = layers[index]
    ltype = _layer_type(old.kind)
    spec = ltype.param(param)
    if spec is None:
        names = ", ".join(p.name for p in ltype.params)
        hint = f"(parameters: {names})" if names else "(it takes no parameters)"
        raise ValueError(f"{old.kind} at index {index} has no parameter '{param}' {hint}")
    if (problem := spec.check(value)) is not None:
        raise ValueError(f"{old.kind} at index {index}: {problem}")
    if isinstance(value, float) and spec.type is int:
        value = int(value)
    current = ltype.resolve(old.written()).get(param)
    if current == value:
        raise ValueError(f"{param} of {old.kind} at index {index} is already {value}")
    arg = old.arg(param)
    if arg is not None:
        args = tuple(replace(a, value=value) if a.name == param else a for a in old.args)
    else:
        order = [p.name for p in ltype.params]
        args = tuple(sorted((*old.args, Arg(param, value, spec.positional)), key=lambda a: order.index(a.name)))
    change = Change("reparameterize", index, old.kind, param=param, old=current, new=value)
    return Edit((*layers[:index], replace(old, args=args), *layers[index + 1:]), change)


# --- handcrafted children ------------------------------------------------------------------------


def insert_layer(model: ModelSpec, index: int, layer: Layer, *, name: str | None = None) -> ModelSpec:
    """A child of `model` with `layer` inserted before position `index`."""
    return _child(model, insert(model.layers, index, layer, model.blocks), name)


def remove_layer(model: ModelSpec, index: int, *, name: str | None = None) -> ModelSpec:
    """A child of `model` without the layer at `index`."""
    return _child(model, remove(model.layers, index, model.blocks), name)


def insert_block(model: ModelSpec, start: int, stop: int, kind: str = "identity", *,
                 name: str | None = None) -> ModelSpec:
    """A child of `model` with layers `start` up to `stop` wrapped in a residual block (`kind` of shortcut)."""
    return _child(model, wrap(model.layers, model.blocks, start, stop, kind), name)


def unwrap_block(model: ModelSpec, block: int, *, name: str | None = None) -> ModelSpec:
    """A child of `model` without its block at position `block` (its layers kept)."""
    return _child(model, unwrap(model.layers, model.blocks, block), name)


def replace_layer(model: ModelSpec, index: int, layer: Layer, *, name: str | None = None) -> ModelSpec:
    """A child of `model` with the layer at `index` replaced by `layer`."""
    return _child(model, replace_at(model.layers, index, layer), name)


def reparameterize(model: ModelSpec, index: int, param: str, value: Value, *, name: str | None = None) -> ModelSpec:
    """A child of `model` with one parameter of the layer at `index` set to `value`."""
    return _child(model, set_param(model.layers, index, param, value), name)


def _child(model: ModelSpec, edit: Edit, name: str | None) -> ModelSpec:
    return derive(model, edit.layers, (edit.change,), name or f"{model.name}_edit",
                  blocks=edit.blocks_from(model.blocks))


def _block_at(blocks: tuple[Block, ...], block: int) -> Block:
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < len(blocks):
        if not blocks:
            raise ValueError("the model has no blocks")
        raise ValueError(f"no block {block}: expected a block from 0 to {len(blocks) - 1}")
    b = blocks[block]
    if b.kind not in BLOCK_KINDS:
        raise ValueError(f"unknown block '{b.kind}'")
    return b


def _check_index(layers: tuple[Layer, ...], index: int, what: str, allow_end: bool = False) -> None:
    last = len(layers) if allow_end else len(layers) - 1
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= last:
        if last < 0:
            raise ValueError(f"cannot {what} index {index}: the model has no layers")
        raise ValueError(f"cannot {what} index {index}: expected an index from 0 to {last}")


def _layer_type(kind: str) -> LayerType:
    ltype = LAYER_TYPES.get(kind)
    if ltype is None:
        raise ValueError(f"unknown layer '{kind}'; expected one of {', '.join(LAYER_TYPES)}")
    return ltype


def _check_layer(layer: Layer) -> None:
    ltype = _layer_type(layer.kind)
    for arg in layer.args:
        spec = ltype.param(arg.name)
        if spec is None:
            raise ValueError(f"{layer.kind} has no parameter '{arg.name}'")
        if (problem := spec.check(arg.value)) is not None:
            raise ValueError(f"{layer.kind}: {problem}")
    missing = [p.name for p in ltype.params if p.required and layer.arg(p.name) is None]
    if missing:
        raise ValueError(f"{layer.kind} needs {', '.join(missing)}")
