"""Static analysis: shape inference, parameter counts and every semantic check, with ranges.

Each model is analysed on its own, so one broken model never hides the results of the others. Where the
fix is obvious, the diagnostic carries it as a text edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from remapdsl.language.annotations import ANNOTATIONS, VARIATION_OPS
from remapdsl.language.blocks import BLOCK_KINDS, Shortcut, shortcut, shortcut_kind
from remapdsl.language.catalog import (
    LAYER_TYPES,
    LayerType,
    Shape,
    ShapeError,
    describe_shape,
    is_spatial,
    numel,
    show_value,
)
from remapdsl.language.datasets import DATASET_KINDS, DataError, DatasetInfo, check_files, describe
from remapdsl.language.diagnostics import Diagnostic, Fix, Severity, TextEdit
from remapdsl.language.gcpause import collection_paused
from remapdsl.language.header import TRAIN_OPTIONS
from remapdsl.language.layer_checks import (
    Report,
    check_args,
    did_you_mean,
    layer_examples,
    name_range,
    suggest,
    value_hint,
)
from remapdsl.language.model import (
    Annotation,
    Block,
    Budget,
    DataSpec,
    Document,
    Layer,
    ModelSpec,
    Position,
    Range,
    SpaceSpec,
    Value,
)
from remapdsl.language.printer import budget_limit_text, value_text
from remapdsl.language.spaces import SpaceInfo, analyze_space


@dataclass(frozen=True)
class LayerInfo:
    layer: Layer
    type: LayerType | None
    params: dict[str, Value]
    input_shape: Shape | None
    output_shape: Shape | None
    param_count: int
    flops: int


@dataclass(frozen=True)
class BlockInfo:
    """A block's input and output, and its shortcut once both are known and it joins them (else None).

    Its own parameters and FLOPs are the shortcut's and the addition's; the body's are its layers'.
    """

    block: Block
    input_shape: Shape | None
    output_shape: Shape | None
    shortcut: Shortcut | None

    @property
    def param_count(self) -> int:
        return self.shortcut.param_count if self.shortcut else 0

    @property
    def flops(self) -> int:
        if self.shortcut is None or self.output_shape is None:
            return 0
        return self.shortcut.flops + numel(self.output_shape)  # the addition: one per output element


@dataclass(frozen=True)
class ModelInfo:
    model: ModelSpec
    layers: tuple[LayerInfo, ...]
    diagnostics: tuple[Diagnostic, ...]
    input_shape: Shape | None
    blocks: tuple[BlockInfo, ...] = ()  # in the order of `model.blocks`

    @property
    def valid(self) -> bool:
        return not any(d.severity == Severity.ERROR for d in self.diagnostics)

    @property
    def param_count(self) -> int:
        total = sum(li.param_count for li in self.layers)
        return total + sum(bi.param_count for bi in self.blocks) if self.blocks else total

    @property
    def flops(self) -> int:
        total = sum(li.flops for li in self.layers)
        return total + sum(bi.flops for bi in self.blocks) if self.blocks else total

    def body_param_count(self, block: BlockInfo) -> int:
        """The parameters of a block's body: its layers' and the shortcuts of the blocks inside it."""
        b = block.block
        inner = sum(bi.param_count for bi in self.blocks if bi is not block and b.start <= bi.block.start
                    and bi.block.stop <= b.stop)
        return sum(li.param_count for li in self.layers[b.start:b.stop]) + inner

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].output_shape if self.layers else None


@dataclass(frozen=True)
class Analysis:
    """`models` holds one analysis per name, of its first definition: a name means one model everywhere
    (parents, the store, the editor). A later definition of a taken name is analysed too, so that its own
    errors are reported, and its analysis kept in `duplicates`."""

    document: Document
    dataset: DatasetInfo | None
    models: dict[str, ModelInfo]
    diagnostics: tuple[Diagnostic, ...]
    duplicates: tuple[ModelInfo, ...] = ()
    spaces: dict[str, SpaceInfo] = field(default_factory=dict)  # by name, of its first definition

    @property
    def valid(self) -> bool:
        return not any(d.severity == Severity.ERROR for d in self.diagnostics)


# Given a model, the data's description and the params budget: an earlier analysis of the same model that
# still holds, or None to analyse it afresh (see remapdsl.language.reanalysis).
Reuse = Callable[[ModelSpec, DatasetInfo | None, Budget | None], ModelInfo | None]


def analyze(document: Document, syntax: tuple[Diagnostic, ...] | list[Diagnostic] = (),
            base_dir: Path | None = None, *, reuse: Reuse | None = None) -> Analysis:
    """All diagnostics of a parsed document, and shapes and counts for each model.

    `base_dir` is the folder of the `.remap` file: relative data paths resolve against it. `reuse` may hand
    back earlier results for models that did not change.
    """
    with collection_paused():
        return _analyze(document, syntax, base_dir, reuse)


def _analyze(document: Document, syntax: tuple[Diagnostic, ...] | list[Diagnostic], base_dir: Path | None,
             reuse: Reuse | None) -> Analysis:
    diagnostics: list[Diagnostic] = list(syntax)
    dataset = _check_header(document, diagnostics, base_dir)
    budget = document.budget("params")
    models: dict[str, ModelInfo] = {}
    duplicates: list[ModelInfo] = []
    first_line: dict[str, int] = {}
    for model in document.models:
        info = reuse(model, dataset, budget) if reuse is not None else None
        if info is None:
            info = analyze_model(model, dataset, budget)
        diagnostics.extend(info.diagnostics)
        if model.name in models:
            diagnostics.append(Diagnostic(
                model.name_range,
                f"model '{model.name}' is already defined at line {first_line[model.name] + 1}",
                code="duplicate-model", model=model.name))
            duplicates.append(info)
            continue
        models[model.name] = info
        first_line[model.name] = model.name_range.start.line
    spaces = _check_spaces(document, dataset, budget, diagnostics)
    diagnostics.extend(_check_lineage(document))
    diagnostics.sort(key=lambda d: d.range)  # ranges order as (start, end)
    return Analysis(document, dataset, models, tuple(diagnostics), tuple(duplicates), spaces)


def _check_spaces(document: Document, dataset: DatasetInfo | None, budget: Budget | None,
                  out: list[Diagnostic]) -> dict[str, SpaceInfo]:
    if not document.spaces:
        return {}

    found: dict[str, SpaceInfo] = {}
    for space in document.spaces:
        info = analyze_space(space, dataset, budget)
        out.extend(info.diagnostics)
        if space.name in found:
            out.append(Diagnostic(space.name_range, f"space '{space.name}' is already defined at line "
                                  f"{found[space.name].space.name_range.start.line + 1}", code="duplicate-space"))
            continue
        found[space.name] = info
    return found


def _check_header(document: Document, out: list[Diagnostic], base_dir: Path | None) -> DatasetInfo | None:
    data = document.data
    if data is not None:
        kind = DATASET_KINDS.get(data.name)
        if kind is None:
            names = list(DATASET_KINDS)
            hint, fix = suggest(data.name, names, data.name_range)
            out.append(Diagnostic(data.range, f"unknown data set '{data.name}'; expected one of "
                                  f"{', '.join(names)}{hint}", code="data", fix=fix))
            return None
        known = {p.name: p for p in kind.options}
        for arg in data.args:
            spec = known.get(arg.name)
            if spec is None:
                hint, fix = suggest(arg.name, list(known), name_range(arg))
                out.append(Diagnostic(arg.range, f"data {kind.name} has no option '{arg.name}'"
                                      f"{hint} (options: {', '.join(known) or 'none'})", code="data", fix=fix))
            elif spec.type is not str and (msg := spec.check(arg.value)) is not None:
                # free-form options (quickdraw class names) are checked against the data when it is loaded
                hint, fix = value_hint(arg, spec)
                out.append(Diagnostic(arg.value_range, msg + hint, code="value", fix=fix))
        if kind.needs_path and not data.path:
            out.append(Diagnostic(data.range, f"data {kind.name} needs a path: data {kind.name} \"PATH\"",
                                  code="data"))
            return None
        if not kind.needs_path and data.path:
            out.append(Diagnostic(data.range, f"data {kind.name} is bundled and takes no path", code="data"))
        elif data.path and (kind.shape is not None or _all_declared(data)) and (
                kind.name != "quickdraw" or data.option("classes")):
            # the shapes are known without the files, so the models can still be checked; the files' headers
            # are, so that a training that cannot start is said now
            problem = check_files(data, base_dir)
            if problem is not None and problem.missing:
                out.append(Diagnostic(data.range, f"{problem.message}: training will fail until it does (shapes "
                                      "are checked as declared)" if kind.shape is None else
                                      f"{problem.message}: training will fail until it does (shapes are checked "
                                      f"as {kind.name}'s {describe_shape(kind.shape)})", Severity.WARNING,
                                      code="data"))
            elif problem is not None:
                out.append(Diagnostic(data.range, f"{problem.message}; training cannot start", code="data"))
    for arg in document.train.args if document.train else ():
        spec = TRAIN_OPTIONS.get(arg.name)
        if spec is None:
            names = list(TRAIN_OPTIONS)
            hint, fix = suggest(arg.name, names, name_range(arg))
            out.append(Diagnostic(arg.range, f"train has no option '{arg.name}'{hint} (options: {', '.join(names)})",
                                  code="train", fix=fix))
        elif (msg := spec.check(arg.value)) is not None:
            hint, fix = value_hint(arg, spec)
            out.append(Diagnostic(arg.value_range, msg + hint, code="value", fix=fix))
    try:
        return describe(data, base_dir)
    except DataError as e:
        assert data is not None
        out.append(Diagnostic(data.range, f"{e}; shapes of models cannot be checked", code="data"))
        return None
    except (OSError, ValueError) as e:  # anything the probes above do not say in words yet
        assert data is not None
        out.append(Diagnostic(data.range, f"cannot read data {data.path}: {e}", code="data"))
        return None


def _all_declared(data: DataSpec) -> bool:
    """Whether the data line declares channels, size and classes, so its shapes are known without the files."""
    return {"channels", "size", "classes"} <= {a.name for a in data.args}


def _check_lineage(document: Document) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    names = [m.name for m in document.models]
    parents = {m.name: m.parent for m in document.models}
    spaces = [s.name for s in document.spaces]
    for m in document.models:
        if m.parent is None:
            continue
        where = m.parent_range or m.name_range
        if m.parent_space:
            space = document.space(m.parent)
            if space is None:
                hint, fix = suggest(m.parent, spaces, m.parent_range)
                out.append(Diagnostic(where, f"unknown space '{m.parent}'{hint}", code="parent", model=m.name,
                                      fix=fix))
            elif space.positions:
                out.extend(_check_path(m, space, where))
            continue
        if m.parent not in parents and m.parent in spaces:
            out.append(Diagnostic(where, f"'{m.parent}' is a space: write 'from space {m.parent}'", code="parent",
                                  model=m.name, fix=Fix(f"Write 'from space {m.parent}'",
                                                        (TextEdit(where, f"space {m.parent}"),))))
            continue
        if m.parent not in parents:
            # a model is never its own parent: its name is no suggestion
            hint, fix = suggest(m.parent, [n for n in names if n != m.name], m.parent_range)
            out.append(Diagnostic(where, f"unknown parent model '{m.parent}'{hint}", code="parent", model=m.name,
                                  fix=fix))
            continue
        seen = [m.name]
        cur: str | None = m.parent
        while cur is not None and cur not in seen:
            seen.append(cur)
            cur = parents.get(cur)
        if cur == m.name:
            out.append(Diagnostic(where, "models derive from each other in a cycle: "
                                  + " → ".join([*seen, m.name]), code="parent", model=m.name))
    return out


def _check_path(model: ModelSpec, space: SpaceSpec, where: Range) -> list[Diagnostic]:
    """A model drawn from a space should be one of its paths: say where it leaves the space."""
    from remapdsl.language.spaces import find_path

    found = find_path(space, model.layers)
    if isinstance(found, tuple):
        return []
    if found < len(model.layers):
        layer = model.layers[found]
        detail = f"its layer {found + 1} ({layer.kind}) is where it leaves the space"
    else:
        detail = "the space goes on after its last layer"
    return [Diagnostic(where, f"model '{model.name}' is not a path of space '{space.name}': {detail}",
                       Severity.WARNING, "parent", model.name)]


def analyze_model(model: ModelSpec, dataset: DatasetInfo | None, budget: Budget | None = None) -> ModelInfo:
    """Shapes, counts and diagnostics of one model for the given input (None: shapes unknown)."""
    out: list[Diagnostic] = []

    def report(rng: Range, message: str, code: str, severity: Severity = Severity.ERROR,
               fix: Fix | None = None) -> None:
        out.append(Diagnostic(rng, message, severity, code, model.name, fix))

    if not model.layers:
        report(model.name_range, f"model '{model.name}' has no layers", "empty")
    shape: Shape | None = dataset.input_shape if dataset else None
    infos: list[LayerInfo] = []
    blocks = _Blocks(model, report) if model.blocks else None
    for index, layer in enumerate(model.layers):
        if blocks is not None:
            shape = blocks.at(index, shape)
        ltype = LAYER_TYPES.get(layer.kind)
        if ltype is None and layer.kind in BLOCK_KINDS:
            end = layer.range.end
            report(layer.range, f"{layer.kind} opens a block: end the line with ':' and indent the layers it holds "
                   "below it", "block-colon", fix=Fix("End the block line with ':'", (TextEdit(Range(end, end), ":"),)))
            infos.append(LayerInfo(layer, None, {}, shape, None, 0, 0))
            shape = None
            continue
        if ltype is None:
            hint, fix = suggest(layer.kind, list(LAYER_TYPES), layer.kind_range)
            report(layer.kind_range, f"expected a layer such as {layer_examples()}; found '{layer.kind}'{hint}",
                   "unknown-layer", fix=fix)
            infos.append(LayerInfo(layer, None, {}, shape, None, 0, 0))
            shape = None
            continue
        params_ok = check_args(layer, ltype, report)
        _check_annotations(layer.annotations, report)
        params = ltype.resolve(layer.written())
        if not params_ok or shape is None:
            infos.append(LayerInfo(layer, ltype, params, shape, None, 0, 0))
            shape = None
            continue
        in_shape = shape
        if ltype.needs_spatial and not is_spatial(shape):
            if ltype.name == "flatten":
                report(layer.range, "flatten does nothing here: the tensor is already flat", "flat",
                       Severity.WARNING, Fix("Remove this flatten", (_delete_line(layer),)))
                infos.append(LayerInfo(layer, ltype, params, shape, shape, 0, 0))
                continue
            report(layer.range, f"{ltype.name} needs an image (channels x height x width), but the tensor is "
                   f"already flat ({shape[0]} features) after flatten or dense", "after-flat")
            infos.append(LayerInfo(layer, ltype, params, shape, None, 0, 0))
            shape = None
            continue
        if ltype.needs_flat and is_spatial(shape):
            report(layer.range, f"{ltype.name} needs a flat input, but receives {describe_shape(shape)}; "
                   "insert flatten before it", "needs-flatten",
                   fix=Fix("Insert flatten before this layer", (_insert_before(layer, "flatten"),)))
            # carry on as if flattened, so later layers are still checked
            in_shape = LAYER_TYPES["flatten"].output_shape(shape, {})
        try:
            out_shape = ltype.output_shape(in_shape, params)
        except ShapeError as e:
            fix = _set_param_fix(layer, *e.fix) if e.fix is not None else None
            report(layer.range, f"{ltype.name}: {e} ({describe_shape(in_shape)})", e.code, fix=fix)
            infos.append(LayerInfo(layer, ltype, params, in_shape, None, 0, 0))
            shape = None
            continue
        count = ltype.param_count(in_shape, params)
        flops = ltype.flops(in_shape, out_shape, params)
        infos.append(LayerInfo(layer, ltype, params, in_shape, out_shape, count, flops))
        shape = out_shape
    block_infos: tuple[BlockInfo, ...] = ()
    if blocks is not None:
        shape = blocks.at(len(model.layers), shape)
        block_infos = blocks.infos()
        if shape is None and infos and infos[-1].output_shape is not None:
            # the last block could not add its input: the model has no output
            last = infos[-1]
            infos[-1] = LayerInfo(last.layer, last.type, last.params, last.input_shape, None, last.param_count,
                                  last.flops)
    if model.layers and dataset is not None:
        _check_head(model, infos, dataset.num_classes, report)
    info = ModelInfo(model, tuple(infos), (), dataset.input_shape if dataset else None, block_infos)
    if budget is not None and info.output_shape is not None and not budget.allows(info.param_count):
        report(model.name_range, f"model '{model.name}' has {info.param_count:,} parameters, over the budget "
               f"of {budget_limit_text(budget)}", "budget")
    return ModelInfo(model, info.layers, tuple(out), info.input_shape, block_infos)


class _Blocks:
    """The blocks of one model while its layers are analysed in order: each block notes the shape that enters
    it, and where it ends, adds that input (through its shortcut) to its body's output."""

    def __init__(self, model: ModelSpec, report: Report) -> None:
        self.model = model
        self.report = report
        self.inputs: dict[int, Shape | None] = {}  # by the block's place in model.blocks
        self.results: dict[int, BlockInfo] = {}
        self.ok: dict[int, bool] = {}
        for i, block in enumerate(model.blocks):
            self.ok[i] = _check_block_args(block, report)
            _check_annotations(block.annotations, report)

    def at(self, index: int, shape: Shape | None) -> Shape | None:
        """The shape that reaches layer `index` (or the model's end) once the blocks ending before it have
        added their inputs; notes the shape entering the blocks that start there."""
        blocks = self.model.blocks
        # innermost first: of the blocks ending here, the one opened last
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i].stop == index and i not in self.results:
                shape = self._close(i, shape)
        for i, block in enumerate(blocks):
            if block.start == index:
                self.inputs[i] = shape
        return shape

    def _close(self, i: int, body_out: Shape | None) -> Shape | None:
        block = self.model.blocks[i]
        in_shape = self.inputs.get(i)
        if in_shape is None or body_out is None or not self.ok[i]:
            self.results[i] = BlockInfo(block, in_shape, None, None)
            return None
        kind = shortcut_kind(block.written())
        try:
            joined = shortcut(kind, in_shape, body_out)
        except ShapeError as e:
            self.report(block.range, f"{block.kind}: {e}", e.code, fix=_shortcut_fix(block, in_shape, body_out))
            self.results[i] = BlockInfo(block, in_shape, None, None)
            return None
        self.results[i] = BlockInfo(block, in_shape, body_out, joined)
        return body_out

    def infos(self) -> tuple[BlockInfo, ...]:
        return tuple(self.results.get(i) or BlockInfo(b, self.inputs.get(i), None, None)
                     for i, b in enumerate(self.model.blocks))


def _shortcut_fix(block: Block, in_shape: Shape, out_shape: Shape) -> Fix | None:
    """Name the projection that joins the shapes, when one does and the block does not name it already."""
    if is_spatial(in_shape) != is_spatial(out_shape):
        return None
    kind = "conv" if is_spatial(in_shape) else "dense"
    try:
        shortcut(kind, in_shape, out_shape)
    except ShapeError:
        return None
    written = block.arg("shortcut")
    if written is not None:
        if written.value == kind:
            return None
        return Fix(f"Project the input with shortcut={kind}", (TextEdit(written.value_range, kind),))
    at = block.kind_range.end
    return Fix(f"Project the input with shortcut={kind}", (TextEdit(Range(at, at), f" shortcut={kind}"),))


def _check_block_args(block: Block, report: Report) -> bool:
    specs = BLOCK_KINDS.get(block.kind, ())
    names = [p.name for p in specs]
    ok = True
    seen: set[str] = set()
    for arg in block.args:
        if arg.positional:
            report(arg.range, f"{block.kind} takes no unnamed value; its options are written name=value, e.g. "
                   "shortcut=conv", "unknown-param")
            ok = False
            continue
        spec = next((p for p in specs if p.name == arg.name), None)
        if spec is None:
            hint, fix = suggest(arg.name, names, name_range(arg))
            report(arg.range, f"{block.kind} has no option '{arg.name}'{hint} (options: {', '.join(names)})",
                   "unknown-param", fix=fix)
            ok = False
        elif arg.name in seen:
            report(arg.range, f"{arg.name} is given twice", "duplicate-param")
            ok = False
        elif (msg := spec.check(arg.value)) is not None:
            hint, fix = value_hint(arg, spec)
            report(arg.value_range, msg + hint, "value", fix=fix)
            ok = False
        seen.add(arg.name)
    return ok


def _set_param_fix(layer: Layer, param: str, value: Value) -> Fix | None:
    """Set the written `param` of `layer` to `value` (a default that does not fit is a catalog bug, not the
    user's)."""
    arg = layer.arg(param)
    if arg is None:
        return None
    return Fix(f"Set {param} to {value_text(value)}", (TextEdit(arg.value_range, value_text(value)),))


def _check_annotations(annotations: tuple[Annotation, ...], report: Report) -> None:
    for a in annotations:
        if a.name not in ANNOTATIONS:
            names = list(ANNOTATIONS)
            line, start = a.range.start
            hint, fix = suggest(a.name, names, Range.of(line, start + 1, start + 1 + len(a.name)))  # after '@'
            report(a.range, f"unknown annotation '@{a.name}'{hint}; expected " + ", ".join("@" + n for n in names),
                   "annotation", fix=fix)
        elif a.name == "keep" and a.args:
            report(a.range, "@keep takes no operators", "annotation")
        elif a.name != "keep":
            if not a.args:
                report(a.range, f"@{a.name} needs operators, e.g. @{a.name}(remove, replace)", "annotation")
            for op in a.args:
                if op not in VARIATION_OPS:
                    report(a.range, f"unknown operator '{op}' in @{a.name}{did_you_mean(op, VARIATION_OPS)}; "
                           f"expected {', '.join(VARIATION_OPS)}", "annotation")


def _check_head(model: ModelSpec, infos: list[LayerInfo], classes: int, report: Report) -> None:
    last = infos[-1]
    if last.type is not None and last.type.name == "dense":
        units = last.params.get("units")
        if isinstance(units, int | float) and int(units) != classes:
            arg = last.layer.arg("units")
            rng = arg.value_range if arg else last.layer.range
            fix = Fix(f"Set units to {classes}", (TextEdit(arg.value_range, str(classes)),)) if arg else None
            report(rng, f"the classifier head must have {classes} units, one per class; found {show_value(units)}",
                   "head", fix=fix)
        return
    if last.type is None:
        return
    lines = ["dense " + str(classes)]
    if last.output_shape is not None and is_spatial(last.output_shape):
        lines.insert(0, "flatten")
    report(last.layer.range, f"a model must end with the classifier head: dense {classes}", "head",
           fix=Fix(f"Append {' and '.join(lines)}", (_insert_after(last.layer, *lines),)))


def _indent(layer: Layer) -> str:
    return " " * layer.kind_range.start.character


def _insert_before(layer: Layer, text: str) -> TextEdit:
    line = layer.range.start.line
    at = Position(line, 0)
    return TextEdit(Range(at, at), f"{_indent(layer)}{text}\n")


def _insert_after(layer: Layer, *texts: str) -> TextEdit:
    at = Position(layer.range.start.line + 1, 0)
    return TextEdit(Range(at, at), "".join(f"{_indent(layer)}{t}\n" for t in texts))


def _delete_line(layer: Layer) -> TextEdit:
    line = layer.range.start.line
    return TextEdit(Range(Position(line, 0), Position(line + 1, 0)), "")
