"""Handcrafted edits: insert, remove, replace or reparameterize one layer of a model.

Each operator is pure: it returns a new child model `from` the given one, with the change recorded as a
comment above it (`# filters at 1 from 32 to 128`). The layer-level steps (`insert`, `remove`, ...) return
the edited layers and their `Change`; ablation and variation compose them.
Operators check what they are given (indices, layer kinds, parameter names and values) and raise
ValueError with a message for the user; whether the child's shapes still fit is analysis's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from remapdsl.language.catalog import LAYER_TYPES, LayerType
from remapdsl.language.model import Arg, Layer, ModelSpec, Value
from remapdsl.search.changes import Change, derive, new_layer_text


@dataclass(frozen=True)
class Edit:
    """Layers after one change, and the change."""

    layers: tuple[Layer, ...]
    change: Change


def insert(layers: tuple[Layer, ...], index: int, layer: Layer) -> Edit:
    """`layer` inserted before position `index` (`len(layers)` appends)."""
    _check_index(layers, index, "insert at", allow_end=True)
    _check_layer(layer)
    change = Change("prepend", index, layer.kind, layer=new_layer_text(layer))
    return Edit((*layers[:index], layer, *layers[index:]), change)


def remove(layers: tuple[Layer, ...], index: int) -> Edit:
    _check_index(layers, index, "remove")
    return Edit((*layers[:index], *layers[index + 1:]), Change("remove", index, layers[index].kind))


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
    return _child(model, insert(model.layers, index, layer), name)


def remove_layer(model: ModelSpec, index: int, *, name: str | None = None) -> ModelSpec:
    """A child of `model` without the layer at `index`."""
    return _child(model, remove(model.layers, index), name)


def replace_layer(model: ModelSpec, index: int, layer: Layer, *, name: str | None = None) -> ModelSpec:
    """A child of `model` with the layer at `index` replaced by `layer`."""
    return _child(model, replace_at(model.layers, index, layer), name)


def reparameterize(model: ModelSpec, index: int, param: str, value: Value, *, name: str | None = None) -> ModelSpec:
    """A child of `model` with one parameter of the layer at `index` set to `value`."""
    return _child(model, set_param(model.layers, index, param, value), name)


def _child(model: ModelSpec, edit: Edit, name: str | None) -> ModelSpec:
    return derive(model, edit.layers, (edit.change,), name or f"{model.name}_edit")


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
