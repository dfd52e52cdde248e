"""Spawning children in a document: the text edit that puts derived models right after their parent.

Every REMAP operation started from the editor ends here: ablate (every layer, or the layers on the
selected lines: the paper's brushing selection), vary, duplicate as a handcrafted child, and the
handcrafted layer edits (remove, replace with another type, reparameterize to a neighbouring grid value,
insert a layer before or after). `model_offers` and `layer_offers` list what can be done at a place in
the document, cheaply: only the model there is analysed. `spawn` carries an operation out and returns one
insertion after the parent's block (after the children already following it), in the file's line endings.

Each child's text is read back and analysed before it goes in; a child that would not validate is left
out with a note, so an applied spawn never leaves an error behind. Checking the children's own text is
enough: the insertion goes between top-level blocks, so the rest of the file reads as before.

Positions are the parser's: zero-based lines, characters counted in code points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from remapdsl.language.analysis import Analysis, LayerInfo, ModelInfo, analyze_model
from remapdsl.language.catalog import LAYER_TYPES, Shape, is_spatial
from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Arg, Comments, Document, Layer, ModelSpec, Position, Range, Value
from remapdsl.language.parser import parse, split_lines
from remapdsl.language.printer import value_text
from remapdsl.search import edits
from remapdsl.search.ablation import ablate
from remapdsl.search.changes import first_error, new_layer_text, unique_name
from remapdsl.search.children import Parent, block_text, line_ending, parent_of, parent_problem
from remapdsl.search.variation import vary

OPERATIONS = ("ablate", "vary", "duplicate", "remove", "replace", "reparameterize", "insert")
DEFAULT_VARIATIONS = 5
# The dropout rate a freshly inserted dropout starts from (a grid value).
FRESH_DROPOUT = 0.25
# Types offered as a replacement: flatten follows from its neighbours, so it is never offered.
REPLACEMENT_KINDS = tuple(k for k in LAYER_TYPES if k != "flatten")


@dataclass(frozen=True)
class Operation:
    """One way to spawn children of `model`; plain data, so that it can travel in a code action.

    `layers`: ablate these layers (empty: every layer ablation picks by itself). `index`: the layer a
    layer edit is about (insert: the position the new layer takes). `layer`: the new layer's text for
    replace and insert (`dropout 0.25`). `param` and `value`: a reparameterization. `n` and `seed`: vary.
    """

    op: str
    model: str
    layers: tuple[int, ...] = ()
    index: int = 0
    layer: str = ""
    param: str = ""
    value: Value | None = None
    n: int = DEFAULT_VARIATIONS
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """The fields that differ from their defaults, JSON-ready."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("op", "model") or value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @staticmethod
    def from_json(data: object) -> Operation:
        """The operation `to_json` gave; ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValueError("an operation must be an object")
        op, model = data.get("op"), data.get("model")
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; expected one of {', '.join(OPERATIONS)}")
        if not isinstance(model, str) or not model:
            raise ValueError("an operation needs the parent model's name")
        layers = data.get("layers", [])
        if not isinstance(layers, list | tuple) or not all(_is_int(i) for i in layers):
            raise ValueError("layers must be a list of layer indices")
        checks: dict[str, Callable[[object], bool]] = {
            "index": _is_int, "n": _is_int, "seed": _is_int,
            "layer": lambda v: isinstance(v, str), "param": lambda v: isinstance(v, str),
            "value": lambda v: v is None or _is_int(v) or isinstance(v, float | str),
        }
        values = {name: data[name] for name in checks if name in data}
        for name, value in values.items():
            if not checks[name](value):
                raise ValueError(f"{name} has the wrong type: {value!r}")
        return Operation(op, model, tuple(layers), **values)


@dataclass(frozen=True)
class Offer:
    """An operation that can be done at a place in the document, with its title for the user."""

    title: str
    operation: Operation


@dataclass(frozen=True)
class Spawn:
    """The children an operation made, the insertion that adds them, and a note for each left out."""

    edit: TextEdit | None  # None when no child was made
    children: tuple[ModelSpec, ...]
    notes: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.children)


# --- where things are -----------------------------------------------------------------------------


def model_at(document: Document, line: int) -> ModelSpec | None:
    """The model whose block (its model line to its last layer) holds `line`."""
    for model in document.models:
        if model.range.start.line <= line <= model.range.end.line:
            return model
        if model.range.start.line > line:
            return None
    return None


def layer_at(model: ModelSpec, line: int) -> int | None:
    """The index of the layer written on `line`."""
    for i, layer in enumerate(model.layers):
        if layer.range.start.line == line:
            return i
    return None


def selected_layers(model: ModelSpec, first_line: int, last_line: int) -> tuple[int, ...]:
    """The layers whose lines lie in `first_line`..`last_line` (the selection's lines, both included)."""
    return tuple(i for i, layer in enumerate(model.layers) if first_line <= layer.range.start.line <= last_line)


# --- what can be done -------------------------------------------------------------------------------


def model_offers(analysis: Analysis, name: str, selection: Sequence[int] = (), *, n: int = DEFAULT_VARIATIONS,
                 seed: int = 0) -> list[Offer]:
    """Ablate all layers, ablate the `selection` (layer indices), vary, duplicate; none when `name` has errors."""
    if parent_problem(analysis, name) is not None:
        return []
    info = analysis.models[name]
    model = info.model
    head = len(model.layers) - 1
    offers = []
    if head > 0:
        offers.append(Offer(f"Ablate all layers of {name}", Operation("ablate", name)))
    chosen = tuple(i for i in selection if i != head)
    if chosen:
        which = ", ".join(f"{model.layers[i].kind} at {i}" for i in chosen)
        offers.append(Offer(f"Ablate selected layers of {name} ({which})", Operation("ablate", name, chosen)))
    offers.append(Offer(f"Generate {n} variations of {name}", Operation("vary", name, n=n, seed=seed)))
    if info.valid:  # a copy of an oversized model would be just as oversized
        offers.append(Offer(f"Duplicate {name} as a handcrafted child", Operation("duplicate", name)))
    return offers


def layer_offers(analysis: Analysis, name: str, index: int) -> list[Offer]:
    """The handcrafted edits of layer `index` of `name` whose child validates: remove, replace,
    reparameterize to the neighbouring grid values, insert before and after."""
    if parent_problem(analysis, name) is not None:
        return []
    parent = Parent.of(analysis, analysis.models[name].model)
    info = analysis.models[name]
    if not 0 <= index < len(info.layers):
        return []
    layer = parent.model.layers[index]
    at = f"{layer.kind} at {index}"
    candidates: list[tuple[str, Operation]] = [(f"remove {at}", Operation("remove", name, index=index))]
    for kind in REPLACEMENT_KINDS:
        if kind != layer.kind:
            fresh = _fresh_layer(kind, info.layers[index].input_shape, layer)
            if fresh is not None:
                text = new_layer_text(fresh)
                candidates.append((f"replace {at} with {text}", Operation("replace", name, index=index, layer=text)))
    for param, old, new in neighbour_values(info.layers[index]):
        candidates.append((f"{param} of {at}: {value_text(old)} → {value_text(new)}",
                           Operation("reparameterize", name, index=index, param=param, value=new)))
    for where, position in (("before", index), ("after", index + 1)):
        for text in insertions(info, position):
            candidates.append((f"insert {text} {where} {at}", Operation("insert", name, index=position, layer=text)))
    offers = []
    for what, operation in candidates:
        try:
            child = _handcrafted(parent, operation)
        except ValueError:
            continue
        if analyze_model(child, parent.dataset, parent.budget).valid:
            offers.append(Offer(f"Child of {name}: {what}", operation))
    return offers


def neighbour_values(info: LayerInfo) -> list[tuple[str, Value, Value]]:
    """(param, current, new) for each gridded parameter's grid values one step below and above the current one.

    The classifier head's units are fixed by the data, but that is for validation to say.
    """
    if info.type is None:
        return []
    out: list[tuple[str, Value, Value]] = []
    for spec in info.type.params:
        current = info.params.get(spec.name)
        if len(spec.grid) < 2 or not isinstance(current, int | float):
            continue
        numbers = sorted(v for v in spec.grid if isinstance(v, int | float))
        below = [v for v in numbers if v < current]
        above = [v for v in numbers if v > current]
        if below:
            out.append((spec.name, current, below[-1]))
        if above:
            out.append((spec.name, current, above[0]))
    return out


def insertions(info: ModelInfo, position: int) -> list[str]:
    """Layers worth inserting at `position` of an analysed model, as text: an activation, batchnorm,
    dropout or pooling where no neighbour is one already, and a layer of the neighbouring width (a
    convolution on images, a dense layer once flat)."""
    layers = info.layers
    shape = layers[position].input_shape if position < len(layers) else info.output_shape
    if shape is None:
        return []
    near = {li.type.category for li in layers[max(position - 1, 0):position + 1] if li.type is not None}
    out = []
    if "activation" not in near:
        out.append("relu")
    if "norm" not in near:
        out.append("batchnorm")
    if "dropout" not in near:
        out.append(new_layer_text(_fresh("dropout", shape)))
    if not is_spatial(shape):
        return [*out, new_layer_text(_fresh("dense", shape))]
    out.append(new_layer_text(_fresh("conv2d", shape)))
    if "pool" not in near:
        out.append(new_layer_text(_fresh("maxpool", shape)))
    return out


# --- carrying an operation out ------------------------------------------------------------------------


def spawn(text: str, analysis: Analysis, operation: Operation) -> Spawn:
    """The children of `operation` on the analysed `text`, and the insertion that adds them after the parent.

    Raises ValueError when the parent cannot have children (errors, unknown data) or the operation does
    not apply (an index out of range, a layer that cannot be read).
    """
    parent = parent_of(analysis, operation.model)
    if operation.op == "ablate":
        result = ablate(parent.model, parent.dataset, operation.layers or None, parent.budget,
                        existing_names=parent.names, existing_hashes=parent.hashes)
        made, notes = [c.model for c in result.children], list(result.notes)
    elif operation.op == "vary":
        varied = vary(parent.model, parent.dataset, operation.n, seed=operation.seed, budget=parent.budget,
                      existing_hashes=parent.hashes, existing_names=parent.names)
        made, notes = [c.model for c in varied.children], list(varied.notes)
    else:
        made, notes = [_handcrafted(parent, operation)], []
    children, left_out = checked(made, parent)
    notes += left_out
    if not children:
        return Spawn(None, (), tuple(notes))
    return Spawn(insertion(text, analysis.document, parent.model, children), tuple(children), tuple(notes))


def checked(children: Sequence[ModelSpec], parent: Parent) -> tuple[list[ModelSpec], list[str]]:
    """The children whose printed text reads back as themselves and validates; a note for each of the others."""
    kept: list[ModelSpec] = []
    notes: list[str] = []
    taken = set(parent.names)
    for child in children:
        problem = _problem(child, parent, taken)
        if problem is not None:
            notes.append(f"{child.name} left out: {problem}")
            continue
        taken.add(child.name)
        kept.append(child)
    return kept, notes


def insertion(text: str, document: Document, parent: ModelSpec, children: Sequence[ModelSpec]) -> TextEdit:
    """The edit that inserts the children's blocks after `parent` and the children that follow it already,
    a blank line before each, in the file's line endings. ValueError when stray lines follow those blocks."""
    lines = split_lines(text)
    last = _block_end(document, parent, lines)
    newline = line_ending(text)
    body = "".join(newline + block_text(child, newline) for child in children)
    if last + 1 < len(lines):
        at = Position(last + 1, 0)
        return TextEdit(Range(at, at), body)
    at = Position(last, len(lines[last]))  # the parent ends the file, without a line break after it
    return TextEdit(Range(at, at), newline + body)


# --- helpers ------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _handcrafted(parent: Parent, operation: Operation) -> ModelSpec:
    """The child of a handcrafted operation; ValueError when the operation does not apply to the parent."""
    model = parent.model
    op, index = operation.op, operation.index
    if op == "duplicate":
        name = unique_name(f"{model.name}_copy", parent.names)
        # `handcrafted:` opens the comment so the store records the copy's origin, as derived children's do
        return ModelSpec(name, model.layers, parent=model.name, comments=Comments((f"handcrafted: copy of "
                                                                                   f"{model.name}",)),
                         blocks=model.blocks)
    name = unique_name(f"{model.name}_edit", parent.names)
    if op == "remove":
        return edits.remove_layer(model, index, name=name)
    if op == "replace":
        return edits.replace_layer(model, index, read_layer(operation.layer), name=name)
    if op == "insert":
        return edits.insert_layer(model, index, read_layer(operation.layer), name=name)
    if op == "reparameterize":
        if operation.value is None:
            raise ValueError("reparameterize needs a value")
        return edits.reparameterize(model, index, operation.param, operation.value, name=name)
    raise ValueError(f"unknown operation '{op}'; expected one of {', '.join(OPERATIONS)}")


def read_layer(text: str) -> Layer:
    """One layer from its text (`dropout 0.25`); ValueError when the text is not exactly one layer."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"expected one layer line; found {text!r}")
    result = parse(f"model _:\n    {text}\n")
    layers = result.document.models[0].layers if result.document.models else ()
    if result.diagnostics or len(layers) != 1:
        why = f": {result.diagnostics[0].message}" if result.diagnostics else ""
        raise ValueError(f"cannot read the layer '{text}'{why}")
    return layers[0]


def _problem(child: ModelSpec, parent: Parent, taken: set[str]) -> str | None:
    if child.name in taken:
        return f"the name '{child.name}' is taken"
    result = parse(block_text(child))
    if result.diagnostics:
        return f"its text does not read back ({result.diagnostics[0].message})"
    models = result.document.models
    if len(models) != 1 or models[0] != child or models[0].parent != parent.model.name:
        return "its text does not read back as the same model"
    info = analyze_model(models[0], parent.dataset, parent.budget)
    problem = first_error(info)
    return None if problem is None else f"it would not validate ({problem})"


def _fresh(kind: str, shape: Shape) -> Layer:
    """A layer of `kind` for an input of `shape`: widths follow the input's channels (features once flat),
    snapped to the catalog's grid, so the new layer neither widens nor narrows the model by much."""
    ltype = LAYER_TYPES[kind]
    positional = ltype.positional
    if positional is None:
        return Layer(kind)
    if kind == "dropout":
        value: Value = FRESH_DROPOUT
    elif kind in ("conv2d", "dense"):
        grid = [v for v in positional.grid if isinstance(v, int)]
        value = min(grid, key=lambda g: (abs(g - shape[0]), -g))
    else:
        value = positional.grid[0]
    return Layer(kind, (Arg(positional.name, value, positional=True),))


def _fresh_layer(kind: str, shape: Shape | None, old: Layer) -> Layer | None:
    """The layer of `kind` that replaces `old`: with `old`'s parameters when the two take the same ones
    (relu ↔ tanh, maxpool ↔ avgpool), else fresh for `shape`; None when the shape is unknown."""
    ltype, old_type = LAYER_TYPES[kind], LAYER_TYPES.get(old.kind)
    if old_type is not None and ltype.params and [p.name for p in ltype.params] == [p.name for p in old_type.params]:
        return Layer(kind, old.args)
    return None if shape is None else _fresh(kind, shape)


def _only_comments(lines: Sequence[str]) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in lines)


def _block_end(document: Document, parent: ModelSpec, lines: Sequence[str]) -> int:
    """The last line of `parent`'s block, or of the run of its descendants right after it.

    A block is extended only over lines that hold nothing but comments and blank lines up to the next
    model: inserting before a stray code line would hand that line to the last child.
    """
    models = document.models
    position = next(i for i, m in enumerate(models) if m.range.start == parent.range.start)

    def clean_after(i: int) -> bool:
        stop = models[i + 1].range.start.line if i + 1 < len(models) else len(lines)
        return _only_comments(lines[models[i].range.end.line + 1:stop])

    if not clean_after(position):
        raise ValueError(f"cannot place children after '{parent.name}': the lines after its last layer hold "
                         "something that is not a layer; fix them first")
    family = {parent.name}
    last = position
    for i in range(position + 1, len(models)):
        if models[i].parent not in family or not clean_after(i):
            break
        family.add(models[i].name)
        last = i
    return models[last].range.end.line

