"""Change records: what an ablation, variation or handcrafted edit did to a parent, in words.

A child model carries its changes as one comment line above its `model` line, so the file itself says
how each model came about: `# variation: Replaced relu with tanh at index 2`. The word before the colon
is the model's origin (`ablation`, `variation`), which the store reads back; handcrafted children carry
the bare change text, and their `from` makes them handcrafted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from remapdsl.language.analysis import ModelInfo, analyze_model
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.diagnostics import Severity
from remapdsl.language.model import Block, Comments, Layer, ModelSpec, Value
from remapdsl.language.printer import layer_text, value_text

# REMAP's four, the two on residual blocks, and ablation's removal of a whole block with its layers.
OPS = ("prepend", "remove", "replace", "reparameterize", "wrap", "unwrap", "remove_block")


@dataclass(frozen=True)
class Change:
    """One atomic change at layer `index`.

    Recorded on a child, indices follow one rule, the one the diff SNAC follows too: a change to a layer the
    parent has (remove, replace, reparameterize) gives its index in the parent; a layer only the child has
    (prepend) gives its index in the child. For a child of a single change both agree with the model as it
    was before the change, which is how the edit operators number a change; `renumber` turns a sequence of
    changes numbered that way, one after the other, into the rule.

    `kind` is the kind of the layer the change is about (the removed, inserted, replaced or reparameterized
    one). `layer` is the new layer's text for prepend and replace; `param`, `old` and `new` describe a
    reparameterization. A change to a block (wrap, unwrap, remove_block) spans layers `index` to `stop`
    (exclusive), `kind` being the block's kind and `layer` its shortcut when it projects.
    """

    op: str
    index: int
    kind: str
    layer: str = ""
    param: str = ""
    old: Value | None = None
    new: Value | None = None
    stop: int = 0

    def describe(self) -> str:
        if self.op in ("wrap", "unwrap", "remove_block"):
            span = f"layer {self.index}" if self.stop - self.index == 1 else f"layers {self.index}–{self.stop - 1}"
            through = f" with shortcut={self.layer}" if self.layer else ""
            if self.op == "wrap":
                return f"Wrapped {span} in a {self.kind} block{through}"
            if self.op == "unwrap":
                return f"Unwrapped the {self.kind} block over {span}"
            return f"Removed the {self.kind} block over {span} with its layers"
        if self.op == "remove":
            return f"Removed {self.kind} at index {self.index}"
        if self.op == "prepend":
            return f"Added {self.layer} at index {self.index}"
        if self.op == "replace":
            return f"Replaced {self.kind} with {self.layer} at index {self.index}"
        if self.op == "reparameterize":
            old = "" if self.old is None else value_text(self.old)
            new = "" if self.new is None else value_text(self.new)
            return f"{self.param} at {self.index} from {old} to {new}"
        raise ValueError(f"unknown change '{self.op}'; expected one of {', '.join(OPS)}")


@dataclass(frozen=True)
class Child:
    """A derived model with the changes that made it and its analysis (shapes, parameters)."""

    model: ModelSpec
    changes: tuple[Change, ...]
    info: ModelInfo

    def describe(self) -> str:
        return describe_changes(self.changes)


def new_layer_text(layer: Layer) -> str:
    """How an added layer is named in a change: its code without annotations (`dropout 0.25`)."""
    return layer_text(replace(layer, annotations=()))


def describe_changes(changes: Iterable[Change]) -> str:
    return "; ".join(c.describe() for c in changes)


def renumber(changes: Sequence[Change]) -> tuple[Change, ...]:
    """Changes applied one after the other, each numbered against the model as it was just before it, with
    the indices of the rule in `Change`: the parent's for the layers the parent has, the child's for the
    layers the changes add.

    `remove 2` then `reparameterize 10` reads `reparameterize 11` (layer 11 of the parent moved up to 10), and
    `prepend 3` then `remove 0` reads `prepend 2` (the new layer ends up at 2 in the child). ValueError for a
    change that removes a layer an earlier change added (no variation does that).
    """
    # One slot per layer of the model being changed: the parent's index, or the number of the change that
    # added the layer. The slots past the highest index named are the parent's untouched tail.
    slots: list[int | _Added] = list(range(max((c.index for c in changes), default=0) + len(changes) + 1))
    at: list[int | _Added] = []
    for number, change in enumerate(changes):
        if change.op == "prepend":
            added = _Added(number)
            slots.insert(change.index, added)
            at.append(added)
        elif change.op == "remove":
            slot = slots.pop(change.index)
            if isinstance(slot, _Added):
                raise ValueError(f"change {number + 1} removes the layer that change {slot.number + 1} added")
            at.append(slot)
        else:
            at.append(slots[change.index])  # a layer added before keeps its place in the child
    out = []
    for c, a in zip(changes, at, strict=True):
        index = slots.index(a) if isinstance(a, _Added) else a
        if c.op in ("wrap", "unwrap"):
            # a block's span moves with its first layer (the layers of a span are wrapped whole)
            c = replace(c, stop=index + c.stop - c.index)
        out.append(replace(c, index=index))
    return tuple(out)


@dataclass(frozen=True)
class _Added:
    """A slot for the layer that change `number` added."""

    number: int


def derive(parent: ModelSpec, layers: tuple[Layer, ...], changes: Iterable[Change], name: str,
           origin: str = "", blocks: tuple[Block, ...] = ()) -> ModelSpec:
    """A child of `parent` with the given layers and blocks, `from parent`, and its changes as a comment above it.

    `origin` (`ablation`, `variation`) opens the comment so that the store records where the child came from.
    """
    text = describe_changes(changes)
    if origin:
        text = f"{origin}: {text}"
    return ModelSpec(name, layers, parent=parent.name, comments=Comments((text,)), blocks=blocks)


def unique_name(wanted: str, taken: Collection[str]) -> str:
    """`wanted`, or `wanted_2`, `wanted_3`... whichever is first not in `taken`."""
    if wanted not in taken:
        return wanted
    i = 2
    while f"{wanted}_{i}" in taken:
        i += 1
    return f"{wanted}_{i}"


def first_error(info: ModelInfo) -> str | None:
    """The message of the model's first error, if it has one."""
    for d in info.diagnostics:
        if d.severity == Severity.ERROR:
            return d.message
    return None


def check_parent(model: ModelSpec, dataset: DatasetInfo) -> None:
    """ValueError naming the first error of `model` (budgets aside), if it has one."""
    problem = first_error(analyze_model(model, dataset))
    if problem is not None:
        raise ValueError(f"model '{model.name}' has errors ({problem}); fix them before deriving children")


def over_budget(info: ModelInfo) -> bool:
    """True when the model's only errors are its parameter budget."""
    codes = {d.code for d in info.diagnostics if d.severity == Severity.ERROR}
    return codes == {"budget"}

