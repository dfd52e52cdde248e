"""Print a Document as canonical `.remap` text.

Canonical form: header lines first (data, train, budgets), a blank line, then the models separated by one
blank line, layers indented four spaces, args in catalog order, annotations two spaces after the args, end-of-line
comments two spaces after the code, comment lines at the indentation of the statement below them (those that
end a model at the indentation of its layers), and
exactly one newline at the end. Numbers are printed so that they read back as the same value, so
`parse(format_document(doc)).document == doc` for every valid document, and formatting is idempotent.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from remapdsl.language.header import BUDGET_UNITS
from remapdsl.language.model import (
    Annotation,
    Arg,
    Block,
    Budget,
    Choice,
    Comments,
    DataSpec,
    Document,
    Layer,
    ModelSpec,
    SpaceSpec,
    TrainSpec,
    Value,
)
from remapdsl.language.parser import (
    NAME_RE,
    TRAIN_OPTION_NAMES,
    data_option_names,
    layer_param_names,
    order_args,
    parse,
)

INDENT = "    "
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def format_document(doc: Document) -> str:
    """The canonical text of `doc`."""
    header: list[str] = []
    if doc.data is not None:
        header += _statement(_data_text(doc.data), doc.data.comments)
    if doc.train is not None:
        header += _statement(_train_text(doc.train), doc.train.comments)
    for budget in doc.budgets:
        header += _statement(budget_text(budget), budget.comments)
    blocks = ["\n".join(header)] if header else []
    blocks += [format_space(s).rstrip("\n") for s in doc.spaces]
    blocks += [format_model(m).rstrip("\n") for m in doc.models]
    if doc.final_comments:
        blocks.append("\n".join(_comment(c) for c in doc.final_comments))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def format_model(model: ModelSpec) -> str:
    """One model block: its comment lines, the model line and its layers, ending in a newline."""
    parent = "" if model.parent is None else f" from space {model.parent}" if model.parent_space else \
        f" from {model.parent}"
    head = f"model {model.name}{parent}:"
    lines = _statement(head, model.comments)
    if model.blocks:
        lines += _block_lines(model)
    else:
        for layer in model.layers:
            lines += _statement(layer_text(layer), layer.comments, INDENT)
    # indented, so that they read back as the end of this model rather than the start of the next
    lines += [INDENT + _comment(c) for c in model.final_comments]
    return "\n".join(lines) + "\n"


def format_space(space: SpaceSpec) -> str:
    """One space: its comment lines, the space line and its positions (a choice's alternatives four spaces
    deeper), ending in a newline."""
    lines = _statement(f"space {space.name}:", space.comments)
    for position in space.positions:
        if isinstance(position, Choice) and not position.shorthand:
            lines += _statement("choice:", position.comments, INDENT)
            for option in position.options:
                lines += _statement(layer_text(option), option.comments, INDENT * 2)
        elif isinstance(position, Choice):
            lines += _statement(shorthand_text(position), position.comments, INDENT)
        else:
            lines += _statement(layer_text(position), position.comments, INDENT)
    lines += [INDENT + _comment(c) for c in space.final_comments]
    return "\n".join(lines) + "\n"


def shorthand_text(choice: Choice) -> str:
    """`conv2d 16|32 kernel=3|5`: a shorthand choice's options folded back into one line, each parameter's
    alternatives in the order they were written."""
    first = choice.options[0]
    values: dict[tuple[str, bool], list[Value]] = {}
    for option in choice.options:
        for a in order_args(layer_param_names(option.kind), option.args):
            seen = values.setdefault((a.name, a.positional), [])
            if a.value not in seen:
                seen.append(a.value)
    parts = [first.kind]
    parts += ["|".join(value_text(v) for v in vs) for (_, positional), vs in values.items() if positional]
    parts += [f"{name}=" + "|".join(value_text(v) for v in vs) for (name, positional), vs in values.items()
              if not positional]
    text = " ".join(parts)
    if first.annotations:
        text += "  " + " ".join(annotation_text(a) for a in first.annotations)
    return text


def _block_lines(model: ModelSpec) -> list[str]:
    """The layers of a model with blocks: each block line above its body, the body four spaces deeper."""
    lines: list[str] = []
    blocks = iter(model.blocks)  # outer before inner, in the order their lines come
    pending = next(blocks, None)
    stops: list[int] = []  # where the open blocks end, innermost last
    for index, layer in enumerate(model.layers):
        while stops and stops[-1] <= index:
            stops.pop()
        while pending is not None and pending.start == index:
            lines += _statement(block_text(pending), pending.comments, INDENT * (len(stops) + 1))
            stops.append(pending.stop)
            pending = next(blocks, None)
        lines += _statement(layer_text(layer), layer.comments, INDENT * (len(stops) + 1))
    return lines


def block_text(block: Block) -> str:
    """`residual shortcut=conv:  @annotation ...`, without comments."""
    args = block.args
    parts = [block.kind]
    parts += [value_text(a.value) for a in args if a.positional]
    parts += [_arg_text(a) for a in args if not a.positional]
    text = " ".join(parts) + ":"
    if block.annotations:
        text += "  " + " ".join(annotation_text(a) for a in block.annotations)
    return text


def format_text(text: str) -> str | None:
    """The canonical form of `text`, or None when it has syntax errors (so a broken file is never rewritten)."""
    result = parse(text)
    if result.diagnostics:
        return None
    return format_document(result.document)


def layer_text(layer: Layer) -> str:
    """`kind positional key=value ...  @annotation ...`, without comments."""
    args = order_args(layer_param_names(layer.kind), layer.args)
    parts = [layer.kind]
    parts += [value_text(a.value) for a in args if a.positional]
    parts += [_arg_text(a) for a in args if not a.positional]
    text = " ".join(parts)
    if layer.annotations:
        # two spaces set the constraints apart from the architecture
        text += "  " + " ".join(annotation_text(a) for a in layer.annotations)
    return text


def annotation_text(annotation: Annotation) -> str:
    return f"@{annotation.name}" + (f"({', '.join(annotation.args)})" if annotation.args else "")


def budget_text(budget: Budget) -> str:
    """`budget METRIC <= N[unit]`, with the limit given back in the unit it was written in."""
    factor = BUDGET_UNITS.get(budget.metric, {}).get(budget.unit, 1)
    # Decimal division is exact here (factors are powers of ten and of two), so the text reads back as `limit`.
    with localcontext() as ctx:
        ctx.prec = 80
        amount = Decimal(repr(float(budget.limit))) / Decimal(repr(factor))
    return f"budget {budget.metric} {'<' if budget.strict else '<='} {_decimal_text(amount)}{budget.unit}"


def budget_limit_text(budget: Budget) -> str:
    """The budget's limit as messages quote it, in the unit it was written in (the metric's first unit when
    none was): `100k`, `1,000,000`, `< 50us`."""
    units = BUDGET_UNITS.get(budget.metric, {})
    unit = budget.unit if budget.unit in units else next(iter(units), "")
    n = budget.limit / units.get(unit, 1)
    # six significant digits hide the float noise of the conversion (50us is stored as 0.05ms)
    shown = f"{int(n):,}" if float(n).is_integer() else f"{n:g}"
    return f"{'< ' if budget.strict else ''}{shown}{unit}"


def value_text(value: Value) -> str:
    """A value as it is written: plain ints, shortest float repr, bare words where they read back, else quoted."""
    if isinstance(value, tuple):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if NAME_RE.fullmatch(value):
        return value
    return quote(value)


def quote(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(c, c) for c in text) + '"'


def _decimal_text(amount: Decimal) -> str:
    if amount == amount.to_integral_value():
        return str(int(amount))
    return format(amount.normalize(), "f")


def _arg_text(arg: Arg) -> str:
    return f"{arg.name}={value_text(arg.value)}"


def _data_text(data: DataSpec) -> str:
    parts = ["data", data.name]
    if data.path is not None:
        parts.append(quote(data.path))
    parts += [_arg_text(a) for a in order_args(data_option_names(data.name), data.args)]
    return " ".join(parts)


def _train_text(train: TrainSpec) -> str:
    return " ".join(["train", *(_arg_text(a) for a in order_args(TRAIN_OPTION_NAMES, train.args))])


def _statement(code: str, comments: Comments, indent: str = "") -> list[str]:
    lines = [indent + _comment(c) for c in comments.leading]
    trailing = f"  {_comment(comments.trailing)}" if comments.trailing is not None else ""
    lines.append(indent + code + trailing)
    return lines


def _comment(text: str) -> str:
    return f"# {text}" if text else "#"
