"""Parse `.remap` text into a Document, reporting every syntax error at once.

The text is split into lines and each line is parsed on its own with the Lark grammar
(`grammar/remap.lark`, start="line"), so a broken line never hides the rest of the file: a broken layer
line drops only that layer, a broken model line still opens its model when its name can be read.
Line results are cached twice: by the line's code without indentation and comment (the Lark parse,
columns relative to the code), and by line number and full text (the finished statement with its
ranges). Re-parsing a file after an edit costs little more than the edited lines.

Comments are stored without the `#` and the one space after it: `# note` is `"note"`. A run of full-line
comments belongs to the statement below it (`Comments.leading`), an end-of-line comment to its own
statement (`Comments.trailing`), except that indented comment lines right after a model's last layer close
that model (`ModelSpec.final_comments`); the comments after the last statement are `Document.final_comments`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

from lark import Lark, Token, Transformer, UnexpectedInput
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from remapdsl.language.blocks import BLOCK_KINDS
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.diagnostics import Diagnostic
from remapdsl.language.gcpause import collection_paused
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS
from remapdsl.language.model import (
    NO_COMMENTS,
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
    Position,
    Range,
    SpaceSpec,
    TrainSpec,
    Value,
)
from remapdsl.language.sourcefile import too_large

GRAMMAR_PATH = Path(__file__).parents[1] / "grammar" / "remap.lark"

# The grammar's NAME token: what may be written as a bare word (also used by the printer).
NAME_RE = re.compile(r"[^\W\d]\w*(?:[-.]\w+)*")
KEYWORDS = frozenset({"data", "train", "budget", "model", "space"})
# A line with alternative values stands for every combination of them. A supernet holds weights for each
# alternative, so more than this many at one position is surely a mistake; the whole file's alternatives are
# held in memory, so they are bounded too. The parser's caches keep a line's alternatives unexpanded.
MAX_SHORTHAND_OPTIONS = 1024
MAX_DOCUMENT_OPTIONS = 65_536
# Suffixes that scale a number anywhere (100k); units are for budget lines only.
SCALE_SUFFIXES = {"k": 1000, "K": 1000, "M": 1_000_000}
STRING_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}

_NUMBER_RE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(.*)", re.S)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANK = " \t\f\v"
# Indentation is measured with a tab reaching the next multiple of this many columns.
TAB_WIDTH = 4
# Scaled numbers (1e5k) beyond this many digits are certainly typos and would be slow to convert.
_MAX_EXPONENT = 300


@dataclass(frozen=True)
class ParseResult:
    document: Document
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when the text has no syntax errors."""
        return not self.diagnostics


def parse(text: str) -> ParseResult:
    """The document and every syntax error of `text`; never raises. A text over the size limit of a `.remap`
    file is not parsed: its one diagnostic says so."""
    if (problem := too_large(text)) is not None:
        return ParseResult(Document(), (Diagnostic(Range.of(0, 0, 0), problem, code="too-large"),))
    with collection_paused():
        return _Assembler().run(split_lines(text))


def split_lines(text: str) -> list[str]:
    """The lines of `text` as the parser numbers them: only \\r\\n, \\r and \\n end a line, as in the Language
    Server Protocol (str.splitlines also breaks at form feeds and other separators)."""
    return _LINE_BREAK.split(text)


def clear_caches() -> None:
    """Forget cached line parses (for benchmarks measuring a cold start)."""
    _code_syntax.cache_clear()
    _line.cache_clear()


def order_args(kind_params: Sequence[str], args: Iterable[Arg]) -> tuple[Arg, ...]:
    """Args in the order of `kind_params`, unknown names after them in the order given.

    Storing args in one order makes documents equal however their args were written.
    """
    index = {name: i for i, name in enumerate(kind_params)}
    last = len(index)
    return tuple(sorted(args, key=lambda a: index.get(a.name, last)))


def layer_param_names(kind: str) -> tuple[str, ...]:
    ltype = LAYER_TYPES.get(kind)
    return tuple(p.name for p in ltype.params) if ltype else ()


def data_option_names(name: str) -> tuple[str, ...]:
    kind = DATASET_KINDS.get(name)
    return tuple(p.name for p in kind.options) if kind else ()


TRAIN_OPTION_NAMES = tuple(TRAIN_OPTIONS)


# --- stage 1: one line's code, parsed by Lark; columns relative to the code's first character -------


class _Bad(NamedTuple):
    """A value that could not be read; the message says why."""

    message: str


class _Val(NamedTuple):
    value: Value | _Bad
    start: int
    end: int


class _Alts(NamedTuple):
    """`16|32`: alternative values, written only in a space's layers."""

    values: tuple[_Val, ...]
    start: int
    end: int


class _Opt(NamedTuple):
    name: str
    start: int
    value: _Val | _Alts


class _Ann(NamedTuple):
    name: str
    args: tuple[str, ...]
    start: int
    end: int


class _ArgSyntax(NamedTuple):
    name: str
    value: Value
    positional: bool
    start: int
    end: int
    value_start: int
    value_end: int


class _LayerSyntax(NamedTuple):
    kind: str
    kind_end: int
    args: tuple[_ArgSyntax, ...]
    annotations: tuple[_Ann, ...]
    end: int


class _BlockSyntax(NamedTuple):
    kind: str
    kind_end: int
    args: tuple[_ArgSyntax, ...]
    annotations: tuple[_Ann, ...]
    end: int


class _ShorthandSyntax(NamedTuple):
    """A layer line with alternative values: one option per combination."""

    kind: str
    kind_end: int
    axes: tuple[tuple[_ArgSyntax, ...], ...]  # each parameter's alternatives, in catalog order
    annotations: tuple[_Ann, ...]
    end: int


class _ChoiceSyntax(NamedTuple):
    kind_end: int
    end: int


class _SpaceSyntax(NamedTuple):
    name: str
    name_start: int
    name_end: int
    end: int


class _DataSyntax(NamedTuple):
    name: str
    path: str | None
    args: tuple[_ArgSyntax, ...]
    end: int
    name_start: int
    name_end: int


class _TrainSyntax(NamedTuple):
    args: tuple[_ArgSyntax, ...]
    end: int


class _BudgetSyntax(NamedTuple):
    metric: str
    limit: float
    unit: str
    strict: bool
    end: int


class _ModelSyntax(NamedTuple):
    name: str
    name_start: int
    name_end: int
    parent: str | None
    parent_start: int
    parent_end: int
    end: int
    parent_space: bool = False


_Statement = (_LayerSyntax | _BlockSyntax | _DataSyntax | _TrainSyntax | _BudgetSyntax | _ModelSyntax
              | _ShorthandSyntax | _ChoiceSyntax | _SpaceSyntax)


class _Error(NamedTuple):
    start: int
    end: int
    message: str


class _CodeSyntax(NamedTuple):
    statement: _Statement | None
    errors: tuple[_Error, ...]
    # A broken line ending in ':': a model line (the layer lines below it belong to no model) or, indented
    # inside a model, a block line (the lines below it are its body).
    opens: bool = False


def _value_of(token: Token) -> Value | _Bad:
    if token.type == "NUMBER":
        return read_number(token.value)
    if token.type == "STRING":
        return unescape(token.value[1:-1])
    return str(token.value)


def _offset(offset: int | None) -> int:
    """A token's offset: the lexer always sets it, though lark's types allow None."""
    if offset is None:
        raise ValueError("a token without a position")
    return offset


class _ToSyntax(Transformer[Token, Any]):
    """Lark tree → the small tuples above (run inline by the LALR parser: no tree is built)."""

    def value(self, items: list[Token]) -> _Val:
        values = [_value_of(t) for t in items]
        bad = next((v for v in values if isinstance(v, _Bad)), None)
        # with no _Bad among them, the values are Values: mypy cannot narrow a list by what `next` found
        joined: Value | _Bad = bad if bad else values[0] if len(values) == 1 else tuple(values)  # type: ignore[arg-type]
        return _Val(joined, _offset(items[0].start_pos), _offset(items[-1].end_pos))

    def alternatives(self, items: list[_Val]) -> _Alts:
        return _Alts(tuple(items), items[0].start, items[-1].end)

    def option(self, items: list[Any]) -> _Opt:
        key, val = items
        return _Opt(str(key), key.start_pos, val)

    def annotation(self, items: list[Any]) -> _Ann:
        head = items[0]
        rest = [t for t in items[1:] if t is not None]
        names = tuple(str(t) for t in rest if t.type == "NAME")
        end = rest[-1].end_pos if rest else head.end_pos
        return _Ann(str(head)[1:], names, head.start_pos, end)

    def layer_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("layer", *items)

    def data_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("data", *items)

    def train_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("train", *items)

    def budget_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("budget", *items)

    def model_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("model", *items)

    def space_line(self, items: list[Any]) -> tuple[Any, ...]:
        return ("space", *items)

    def line(self, items: list[Any]) -> tuple[Any, ...]:
        return cast("tuple[Any, ...]", items[0])


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", lexer="contextual", start="line",
                maybe_placeholders=True, transformer=_ToSyntax())


@lru_cache(maxsize=1 << 15)
def _code_syntax(code: str) -> _CodeSyntax:
    """Parse one line's code (no indentation, no comment); columns are offsets into `code`."""
    try:
        # The inline transformer turns the line into the tuples above while parsing.
        line = cast("tuple[Any, ...]", _lark().parse(code))
    except UnexpectedInput as e:
        error = _syntax_error(code, e)
        header = _model_line_fallback(code)
        if header is not None:
            return _CodeSyntax(header, (error,))
        return _CodeSyntax(None, (error,), opens=code.endswith(":"))
    errors: list[_Error] = []
    statement = _CONVERTERS[line[0]](line[1:], len(code), errors)
    if errors:
        return _CodeSyntax(None, tuple(errors), opens=code.endswith(":"))
    return _CodeSyntax(statement, ())


_ALTERNATIVES_HERE = "alternatives ('a|b') are written only in the layers of a space"


def _args(options: Iterable[_Opt], errors: list[_Error]) -> list[_ArgSyntax]:
    out = []
    for opt in options:
        v = opt.value
        if isinstance(v, _Alts):
            errors.append(_Error(v.start, v.end, _ALTERNATIVES_HERE))
            continue
        if isinstance(v.value, _Bad):
            errors.append(_Error(v.start, v.end, v.value.message))
            continue
        out.append(_ArgSyntax(opt.name, v.value, False, opt.start, v.end, v.start, v.end))
    return out


def _ordered(args: list[_ArgSyntax], names: Sequence[str]) -> tuple[_ArgSyntax, ...]:
    index = {name: i for i, name in enumerate(names)}
    last = len(index)
    return tuple(sorted(args, key=lambda a: index.get(a.name, last)))


def _layer(items: Sequence[Any], end: int,
           errors: list[_Error]) -> _LayerSyntax | _BlockSyntax | _ShorthandSyntax | _ChoiceSyntax | None:
    kind_token, positional, *rest = items
    kind = str(kind_token)
    colon = next((r for r in rest if isinstance(r, Token)), None)
    alternatives = [v for v in (positional, *(r.value for r in rest if isinstance(r, _Opt))) if isinstance(v, _Alts)]
    if alternatives and colon is not None:
        errors.append(_Error(alternatives[0].start, alternatives[0].end, _ALTERNATIVES_HERE))
        return None
    if kind == "choice" and colon is not None:
        if positional is not None or len(rest) > 1:
            errors.append(_Error(_offset(kind_token.end_pos), _offset(colon.start_pos),
                                 "a choice line is just 'choice:'; its alternatives are the layer lines below it"))
            return None
        return _ChoiceSyntax(_offset(kind_token.end_pos), end)
    if colon is not None:
        return _block(kind_token, positional, rest, colon, end, errors)
    if alternatives:
        return _shorthand(kind_token, positional, rest, end, errors)
    ltype = LAYER_TYPES.get(kind)
    args: list[_ArgSyntax] = []
    if positional is not None:
        assert isinstance(positional, _Val)  # alternatives went to _shorthand
        if isinstance(positional.value, _Bad):
            errors.append(_Error(positional.start, positional.end, positional.value.message))
        else:
            # unknown kinds and kinds without a positional parameter keep the name "" for analysis to report
            name = ltype.positional.name if ltype and ltype.positional else ""
            args.append(_ArgSyntax(name, positional.value, True, positional.start, positional.end,
                                   positional.start, positional.end))
    args += _args((r for r in rest if isinstance(r, _Opt)), errors)
    annotations = tuple(r for r in rest if isinstance(r, _Ann))
    return _LayerSyntax(kind, kind_token.end_pos, _ordered(args, layer_param_names(kind)), annotations, end)


def _shorthand(kind_token: Token, positional: _Val | _Alts | None, rest: Sequence[Any], end: int,
               errors: list[_Error]) -> _ShorthandSyntax | None:
    """A layer line with alternative values, as one option per combination (the first parameter varying
    slowest, in catalog order)."""
    kind = str(kind_token)
    ltype = LAYER_TYPES.get(kind)
    axes: list[list[_ArgSyntax]] = []
    written = [("" if ltype is None or ltype.positional is None else ltype.positional.name, True, positional,
                positional.start if positional is not None else 0)]
    written += [(r.name, False, r.value, r.start) for r in rest if isinstance(r, _Opt)]
    for name, is_positional, v, start in written:
        if v is None:
            continue
        vals = v.values if isinstance(v, _Alts) else (v,)
        axis: list[_ArgSyntax] = []
        seen: list[Value] = []
        for val in vals:
            if isinstance(val.value, _Bad):
                errors.append(_Error(val.start, val.end, val.value.message))
                return None
            if val.value in seen:
                errors.append(_Error(val.start, val.end, f"the alternative {_short(str(val.value))} is written twice"))
                return None
            seen.append(val.value)
            # each option's value ranges over the whole `16|32`, where the user edits the alternatives
            axis.append(_ArgSyntax(name, val.value, is_positional, v.start if is_positional else start, v.end,
                                   v.start, v.end))
        axes.append(axis)
    order = {n: i for i, n in enumerate(layer_param_names(kind))}
    axes.sort(key=lambda axis: (not axis[0].positional, order.get(axis[0].name, len(order))))
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_SHORTHAND_OPTIONS:
        errors.append(_Error(0, end, f"this line stands for {count:,} alternatives; at most "
                                     f"{MAX_SHORTHAND_OPTIONS:,} fit one position: split it into positions"))
        return None
    names = [axis[0].name for axis in axes]
    if len(set(names)) != len(names):
        errors.append(_Error(0, end, "a parameter is written twice on this line"))
        return None
    annotations = tuple(r for r in rest if isinstance(r, _Ann))
    return _ShorthandSyntax(kind, _offset(kind_token.end_pos), tuple(tuple(axis) for axis in axes), annotations, end)


def _space(items: Sequence[Any], end: int, errors: list[_Error]) -> _SpaceSyntax:
    _keyword, name, _colon = items
    return _SpaceSyntax(str(name), name.start_pos, name.end_pos, end)


def _block(kind_token: Token, positional: _Val | _Alts | None, rest: Sequence[Any], colon: Token, end: int,
           errors: list[_Error]) -> _BlockSyntax | None:
    kind = str(kind_token)
    if kind not in BLOCK_KINDS:
        if positional is not None or any(isinstance(r, _Opt) for r in rest):
            errors.append(_Error(_offset(colon.start_pos), _offset(colon.end_pos),
                                 "unexpected ':'; a model line starts with 'model', e.g. model small:"))
            return None
        close = difflib.get_close_matches(kind, list(BLOCK_KINDS), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f" (a model line starts with 'model': model {kind}:)"
        errors.append(_Error(_offset(kind_token.start_pos), _offset(kind_token.end_pos),
                             f"expected a block such as 'residual:'; found '{_short(kind)}'{hint}"))
        return None
    args: list[_ArgSyntax] = []
    if positional is not None:
        assert isinstance(positional, _Val)  # a block line with alternatives was refused by _layer
        if isinstance(positional.value, _Bad):
            errors.append(_Error(positional.start, positional.end, positional.value.message))
        else:
            # analysis reports it: a block takes no unnamed value
            args.append(_ArgSyntax("", positional.value, True, positional.start, positional.end,
                                   positional.start, positional.end))
    args += _args((r for r in rest if isinstance(r, _Opt)), errors)
    annotations = tuple(r for r in rest if isinstance(r, _Ann))
    names = tuple(p.name for p in BLOCK_KINDS[kind])
    return _BlockSyntax(kind, _offset(kind_token.end_pos), _ordered(args, names), annotations, end)


def _data(items: Sequence[Any], end: int, errors: list[_Error]) -> _DataSyntax:
    name_token, path_token, *options = items
    name = str(name_token)
    path = unescape(path_token.value[1:-1]) if path_token is not None else None
    return _DataSyntax(name, path, _ordered(_args(options, errors), data_option_names(name)), end,
                       name_token.start_pos, name_token.end_pos)


def _train(items: Sequence[Any], end: int, errors: list[_Error]) -> _TrainSyntax:
    return _TrainSyntax(_ordered(_args(items, errors), TRAIN_OPTION_NAMES), end)


def _budget(items: Sequence[Any], end: int, errors: list[_Error]) -> _BudgetSyntax | None:
    metric_token, comparison, number = items
    metric = str(metric_token)
    units = BUDGET_UNITS.get(metric)
    if units is None:
        errors.append(_Error(metric_token.start_pos, metric_token.end_pos,
                             f"unknown budget metric '{metric}'; expected {_one_of(BUDGET_UNITS)}"))
        return None
    match = _NUMBER_RE.fullmatch(number.value)
    assert match is not None  # the grammar's NUMBER token
    digits, unit = match.groups()
    if not unit:
        unit = next(iter(units))  # the metric's base unit
    if unit not in units:
        errors.append(_Error(number.start_pos, number.end_pos,
                             f"unknown unit '{unit}' for budget {metric}; expected {_one_of(units, empty='none')}"))
        return None
    try:
        limit = float(Decimal(digits) * Decimal(repr(units[unit])))
    except (ArithmeticError, ValueError):
        limit = math.inf
    if not math.isfinite(limit):
        errors.append(_Error(number.start_pos, number.end_pos, f"'{_short(str(number))}' is out of range"))
        return None
    if limit < 0:
        errors.append(_Error(number.start_pos, number.end_pos, f"a budget limit cannot be negative; found {number}"))
        return None
    return _BudgetSyntax(metric, limit, unit, comparison.value == "<", end)


def _model(items: Sequence[Any], end: int, errors: list[_Error]) -> _ModelSyntax:
    name, space, parent, _colon = items
    if parent is None:
        return _ModelSyntax(str(name), name.start_pos, name.end_pos, None, 0, 0, end)
    return _ModelSyntax(str(name), name.start_pos, name.end_pos, str(parent), parent.start_pos, parent.end_pos, end,
                        space is not None)


_Converter = Callable[[Sequence[Any], int, list[_Error]], _Statement | None]
_CONVERTERS: dict[str, _Converter] = {"layer": _layer, "data": _data, "train": _train, "budget": _budget,
                                      "model": _model, "space": _space}

_MODEL_FALLBACK = re.compile(rf"model[{_BLANK}]+({NAME_RE.pattern})(?:[{_BLANK}]+from[{_BLANK}]+"
                             rf"(space[{_BLANK}]+)?({NAME_RE.pattern}))?")


def _model_line_fallback(code: str) -> _ModelSyntax | None:
    """The name (and parent) of a broken model line, so that the layers below still have their model."""
    m = _MODEL_FALLBACK.match(code)
    if m is None:
        return None
    parent_start, parent_end = m.span(3) if m.group(3) else (0, 0)
    return _ModelSyntax(m.group(1), m.start(1), m.end(1), m.group(3), parent_start, parent_end, len(code),
                        m.group(3) is not None and m.group(2) is not None)


def _one_of(names: Iterable[str], empty: str = "") -> str:
    shown = [f"'{n}'" if n else empty for n in names]
    shown = [s for s in shown if s]
    return ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else "".join(shown)


# --- literals ---------------------------------------------------------------------------------------


def read_number(text: str) -> Value | _Bad:
    """A NUMBER token's value: int when written without '.' or exponent (or scaled to a whole number)."""
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        return _Bad(f"'{_short(text)}' is not a number")
    digits, suffix = match.groups()
    if suffix and suffix not in SCALE_SUFFIXES:
        if any(suffix in units for units in BUDGET_UNITS.values()):
            return _Bad(f"units such as '{suffix}' belong in budget lines; write a plain number here")
        return _Bad(f"unknown suffix '{_short(suffix)}' in '{_short(text)}'; numbers may end in k (thousand) "
                    "or M (million)")
    try:
        if suffix:
            amount = Decimal(digits)
            if abs(amount.adjusted()) > _MAX_EXPONENT:  # int() of 1e100000 would take a long time
                return _Bad(f"'{_short(text)}' is out of range")
            amount *= SCALE_SUFFIXES[suffix]
            return int(amount) if amount == amount.to_integral_value() else float(amount)
        if any(c in digits for c in ".eE"):
            value = float(digits)
            return value if math.isfinite(value) else _Bad(f"'{_short(text)}' is out of range")
        return int(digits)
    except (ArithmeticError, ValueError):
        return _Bad(f"'{_short(text)}' is not a number")


def unescape(body: str) -> str:
    """The text of a string literal's body: \\" \\\\ \\n \\t \\r are escapes; other backslashes stay."""
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in STRING_ESCAPES:
            out.append(STRING_ESCAPES[body[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- syntax error messages ---------------------------------------------------------------------------

_WORDS = {"NUMBER", "NAME", "STRING"}


def _syntax_error(code: str, e: UnexpectedInput) -> _Error:
    """The first syntax error of a line, in the user's words, with the range of what was found."""
    leading_name = NAME_RE.match(code)
    first = leading_name.group(0) if leading_name else ""
    if isinstance(e, UnexpectedCharacters):
        at = _offset(e.pos_in_stream)
        char = code[at]
        if char == '"':
            return _Error(at, len(code), "unterminated string: add the closing '\"'")
        found = f"'{char}'" if char.isprintable() and not char.isspace() else f"character U+{ord(char):04X}"
        return _Error(at, at + 1, _explain(first, code[:at].rstrip(), found, "CHAR", set(e.allowed or ())))
    if isinstance(e, UnexpectedToken):
        expected = set(e.expected or ())
        if e.token.type == "$END":
            start, end = _last_word(code)
            return _Error(start, end, _explain(first, code.rstrip(), "", "$END", expected))
        start, end = e.token.start_pos, e.token.end_pos
        found = f"'{_short(str(e.token))}'"
        return _Error(start, end, _explain(first, code[:start].rstrip(), found, e.token.type, expected))
    return _Error(0, len(code), "cannot read this line")  # pragma: no cover - LALR raises only the two above


def _last_word(code: str) -> tuple[int, int]:
    stripped = code.rstrip()
    start = max(stripped.rfind(" "), stripped.rfind("\t")) + 1
    return start, len(stripped)


def _explain(first: str, before: str, found: str, found_type: str, expected: set[str]) -> str:
    """Say what was expected where the parser stopped.

    `before` is the line's code up to the problem, `found` the offending text ('' at the end of the line),
    `found_type` its terminal ("CHAR" for a character no token starts with, "$END" for the end).
    """
    got = f"; found {found}" if found else ""
    if not before:
        return f"unexpected {found}: a line starts with a layer's kind (conv2d 16), model, data, train or budget"
    if first == "budget":
        if before == "budget":
            return f"expected a metric after 'budget': {_one_of(BUDGET_UNITS)}{got}"
        if "COMPARISON" in expected:
            return f"expected '<=' or '<' after '{before}'{got}"
        if "NUMBER" in expected:
            return f"expected a limit after '{before}', e.g. budget params <= 100k{got}"
        return f"unexpected {found} after the budget's limit"
    if before.endswith("=") and expected & _WORDS:
        key = before[:-1].rstrip().rsplit(None, 1)[-1] if before[:-1].strip() else ""
        return f"expected a value after '{key}='{got}"
    if _inside_annotation(before):
        if before.endswith("(") or before.endswith(","):
            return f"expected an operator name in '{_open_annotation(before)}(...)'{got}"
        return f"expected ')' to close '{_open_annotation(before)}('{got}"
    if before.endswith(",") and expected & _WORDS:
        return f"expected a value after ','{got}"
    if first == "model":
        if before == "model":
            return f"expected a model name after 'model'{got}"
        if before.endswith("from") and expected == {"NAME"}:
            return f"expected the parent model's name after 'from'{got}"
        if "COLON" in expected:
            return f"expected ':' at the end of the model line{got}"
        return f"unexpected {found} after ':': write each layer on its own line below the model line"
    if first == "data":
        if before == "data":
            return f"expected a data set name after 'data', e.g. data digits{got}"
        if found_type == "STRING":
            return "the path comes right after the data set name: data NAME \"PATH\" key=value ..."
    if first == "train" and found_type in _WORDS and expected == {"NAME"}:
        return f"unexpected {found}: train takes name=value settings, e.g. train epochs=10"
    if first in BLOCK_KINDS and before.endswith(":"):
        return f"unexpected {found} after ':': write each layer of the block on its own line, indented below it"
    if found == "':'" and first not in KEYWORDS:
        return "unexpected ':'; a model line starts with 'model', e.g. model small:"
    if found == "'='" and first not in KEYWORDS:
        return "unexpected '=': a layer line starts with the layer's kind, e.g. conv2d 16 kernel=3"
    if "EQUAL" in expected and found_type in ("$END", *_WORDS):
        word = before.rsplit(None, 1)[-1]
        if NAME_RE.fullmatch(word):
            return f"expected '=' after '{word}': parameters are written name=value{got}"
    if found_type in ("NUMBER", "STRING") and "ANNOTATION" in expected and first not in KEYWORDS:
        return (f"unexpected {found}: a layer takes one unnamed value, right after its kind; write the others "
                "as name=value")
    return f"unexpected {found}" if found else "unexpected end of line"


def _inside_annotation(before: str) -> bool:
    at = before.rfind("@")
    return at >= 0 and "(" in before[at:] and ")" not in before[at:]


def _open_annotation(before: str) -> str:
    at = before.rfind("@")
    if at < 0:
        return "@..."
    m = re.match(r"@\w+", before[at:])
    return m.group(0) if m else "@..."


# --- stage 2: one line of the file, with its ranges -------------------------------------------------


class _Line(NamedTuple):
    """A line of the file: a statement with ranges, a comment line, or nothing."""

    statement: _Built | None
    diagnostics: tuple[Diagnostic, ...]
    comment: str | None = None  # the text of a full-line comment
    opens: bool = False
    indented: bool = False  # a full-line comment that does not start in the first column
    end: int = 0  # a full-line comment: the column after its last character
    indent: int = 0  # the width of the line's indentation, a tab to the next multiple of four
    lead: int = 0  # how many characters the indentation has
    shorthand: _ShorthandSyntax | None = None  # a line with alternative values, to expand


def _expand(s: _ShorthandSyntax, choice: Choice, line: int, at: int) -> Choice:
    """A shorthand choice with its options: one layer per combination, the first parameter varying slowest."""
    annotations = tuple(Annotation(a.name, a.args, _span(line, at + a.start, at + a.end)) for a in s.annotations)
    axes = [[(a.name, a.value, a.positional, _span(line, at + a.value_start, at + a.value_end),
              _span(line, at + a.start, at + a.end)) for a in axis] for axis in s.axes]
    options = tuple(Layer(s.kind, tuple(Arg(name, value, positional, value_range if positional else whole, value_range)
                                        for name, value, positional, value_range, whole in combo),
                          annotations, NO_COMMENTS, choice.range, choice.kind_range)
                    for combo in itertools.product(*axes))
    return replace(choice, options=options)


_BLANK_LINE = _Line(None, ())


def split_comment(line: str) -> int:
    """Index of the `#` that starts the line's comment (not one inside a string), or -1."""
    if '"' not in line:
        return line.find("#")
    in_string = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "#":
            return i
        i += 1
    return -1


def comment_text(comment: str) -> str:
    """`# note` → `note`: the `#`, one space after it and trailing whitespace go."""
    text = comment[1:].rstrip()
    return text[1:] if text.startswith(" ") else text


@lru_cache(maxsize=1 << 16)
def _line(number: int, text: str) -> _Line:
    hash_at = split_comment(text)
    code = text if hash_at < 0 else text[:hash_at]
    comment = None if hash_at < 0 else comment_text(text[hash_at:])
    stripped = code.lstrip(_BLANK)
    indent = len(code) - len(stripped)
    code = stripped.rstrip()
    if not code:
        if comment is None:
            return _BLANK_LINE
        return _Line(None, (), comment, indented=indent > 0, end=len(text.rstrip()))
    syntax = _code_syntax(code)
    diagnostics = tuple(Diagnostic(_span(number, indent + e.start, indent + max(e.end, e.start + 1)), e.message,
                                   code="syntax") for e in syntax.errors) if syntax.errors else ()
    comments = NO_COMMENTS if comment is None else Comments((), comment)
    statement = _build(syntax.statement, number, indent, comments) if syntax.statement is not None else None
    width = indent if "\t" not in text[:indent] else len(text[:indent].expandtabs(TAB_WIDTH))
    shorthand = syntax.statement if isinstance(syntax.statement, _ShorthandSyntax) else None
    return _Line(statement, diagnostics, opens=syntax.opens, indent=width, lead=indent, shorthand=shorthand)


_span = Range.of


def _build_args(args: tuple[_ArgSyntax, ...], line: int, at: int) -> tuple[Arg, ...]:
    out = []
    for a in args:
        value_range = _span(line, at + a.value_start, at + a.value_end)
        # a positional arg is its value: one range object serves both
        whole = value_range if a.positional else _span(line, at + a.start, at + a.end)
        out.append(Arg(a.name, a.value, a.positional, whole, value_range))
    return tuple(out)


_Built = Layer | Block | DataSpec | TrainSpec | Budget | ModelSpec | Choice | SpaceSpec


def _build(s: _Statement, line: int, at: int, comments: Comments) -> _Built:
    whole = _span(line, at, at + s.end)
    if isinstance(s, _ShorthandSyntax):
        # its options are built by the assembler (`_expand`), outside the caches
        return Choice((), True, comments, whole, _span(line, at, at + s.kind_end))
    if isinstance(s, _ChoiceSyntax):
        return Choice((), False, comments, whole, _span(line, at, at + s.kind_end))
    if isinstance(s, _SpaceSyntax):
        return SpaceSpec(s.name, (), comments, whole, _span(line, at + s.name_start, at + s.name_end))
    if isinstance(s, _LayerSyntax | _BlockSyntax):
        annotations = tuple(Annotation(a.name, a.args, _span(line, at + a.start, at + a.end))
                            for a in s.annotations) if s.annotations else ()
        args = _build_args(s.args, line, at) if s.args else ()
        if isinstance(s, _BlockSyntax):
            # the span over the model's layers is set when the lines below are read
            return Block(s.kind, 0, 0, args, annotations, comments, whole, _span(line, at, at + s.kind_end))
        return Layer(s.kind, args, annotations, comments, whole, _span(line, at, at + s.kind_end))
    if isinstance(s, _ModelSyntax):
        parent_range = _span(line, at + s.parent_start, at + s.parent_end) if s.parent is not None else None
        return ModelSpec(s.name, (), s.parent, comments, whole, _span(line, at + s.name_start, at + s.name_end),
                         parent_range, parent_space=s.parent_space)
    if isinstance(s, _DataSyntax):
        return DataSpec(s.name, s.path, _build_args(s.args, line, at), comments, whole,
                        _span(line, at + s.name_start, at + s.name_end))
    if isinstance(s, _TrainSyntax):
        return TrainSpec(_build_args(s.args, line, at), comments, whole)
    return Budget(s.metric, s.limit, s.unit, s.strict, comments, whole)


# --- stage 3: the lines, assembled into a document --------------------------------------------------

_HEADER_AFTER_MODEL = "header lines (data, train, budget) must come before the first model"
_ORPHAN_LAYER = "a layer line must follow a model line such as 'model small:'"
_ORPHAN_BLOCK = "a block line must be inside a model, below a line such as 'model small:'"
_CHOICE_OUTSIDE = "choices belong in a space, below a line such as 'space small_cnn:'; a model is one path"
_BLOCK_IN_SPACE = "residual blocks are not written inside a space; a space's positions are layers and choices"


class _OpenChoice:
    """A choice whose alternatives are being read (`choice` None: a broken line ending in ':')."""

    __slots__ = ("choice", "indent", "options")

    def __init__(self, choice: Choice | None, indent: int) -> None:
        self.choice = choice
        self.indent = indent
        self.options: list[Layer] = []


class _OpenBlock:
    """A block whose body is being read: where its line is, how deep it and its body are indented."""

    __slots__ = ("block", "body", "filled", "indent", "line", "slot", "start")

    def __init__(self, block: Block | None, line: int, indent: int, start: int, slot: int) -> None:
        self.block = block  # None for a block line that could not be read: its body is still its body
        self.line = line
        self.indent = indent
        self.body: int | None = None  # the indentation of the body's lines, set by its first line
        self.filled = False  # a line, even a broken one, was read into the body
        self.start = start  # the index of its first layer
        self.slot = slot  # its place in the model's list of blocks


class _Assembler:
    """Walks the lines in order: attaches comments, groups layers under models, checks the header rules."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.models: list[ModelSpec] = []
        self.data: DataSpec | None = None
        self.train: TrainSpec | None = None
        self.budgets: list[Budget] = []
        self.comments: list[str] = []
        # for each pending comment: its line, whether it is indented, and the column after it
        self.comment_places: list[tuple[int, bool, int]] = []
        self.header: ModelSpec | None = None  # the model whose layers are being read
        self.model_indent = 0
        self.layers: list[Layer] = []
        self.blocks: list[Block | None] = []  # None: a block that turned out empty
        self.open: list[_OpenBlock] = []  # the blocks around the line being read, innermost last
        self.in_model = False  # False before the first model line and under a model line that cannot be read
        self.spaces: list[SpaceSpec] = []
        self.space: SpaceSpec | None = None  # the space whose positions are being read
        self.positions: list[Layer | Choice] = []
        self.choice: _OpenChoice | None = None
        self.space_broken = False  # a line of the open space could not be read
        self.options_read = 0  # alternatives expanded from shorthand lines so far

    def run(self, lines: list[str]) -> ParseResult:
        for number, text in enumerate(lines):
            line = _line(number, text)
            if line.diagnostics:
                self.diagnostics.extend(line.diagnostics)
                self.space_broken = self.space is not None
            statement = line.statement
            if line.shorthand is not None and isinstance(statement, Choice):
                statement = self._expanded(line.shorthand, statement, number, line.lead)
            if statement is None:
                if line.comment is not None:
                    self.comments.append(line.comment)
                    self.comment_places.append((number, line.indented, line.end))
                elif line.opens and self.space is not None and not text.lstrip(_BLANK).startswith(("model", "space")):
                    # a broken choice line: the lines below it are its alternatives, not positions
                    self._close_choice()
                    self.choice = _OpenChoice(None, line.indent)
                elif line.opens and self.header is not None and line.indent > self.model_indent:
                    self._indentation(number, line)
                    self.open.append(_OpenBlock(None, number, line.indent, len(self.layers), -1))
                elif line.opens:
                    self._close_model()
                    self._close_space()
                    self.in_model = True
                elif self.open and self.header is not None:
                    self._indentation(number, line)
                continue
            if isinstance(statement, ModelSpec | SpaceSpec):
                self._close_model()  # first: it takes the indented comments that end the model above
            if self.space is not None and not isinstance(statement, Layer | Choice | Block):
                self._close_space()
            if self.comments:
                statement = replace(statement, comments=Comments(tuple(self.comments), statement.comments.trailing))
                self.comments, self.comment_places = [], []
            if self.space is not None:
                self._in_space(statement, line)
            elif isinstance(statement, SpaceSpec):
                self.space, self.in_model = statement, True
            elif isinstance(statement, Choice):
                self.diagnostics.append(Diagnostic(statement.range, _CHOICE_OUTSIDE, code="syntax"))
            elif isinstance(statement, Layer):
                if self.open and self.header is not None:
                    self._indentation(number, line)
                self._layer(statement, bool(line.diagnostics))
            elif isinstance(statement, Block):
                self._block(statement, number, line)
            elif isinstance(statement, ModelSpec):
                self.header, self.in_model = statement, True
                self.model_indent = line.indent
            else:
                self._header_line(statement)
        self._close_model()
        self._close_space()
        document = Document(tuple(self.models), self.data, self.train, tuple(self.budgets), tuple(self.comments),
                            tuple(self.spaces))
        return ParseResult(document, tuple(self.diagnostics))

    def _expanded(self, s: _ShorthandSyntax, choice: Choice, number: int, at: int) -> Choice | None:
        count = math.prod(len(axis) for axis in s.axes)
        if self.options_read + count > MAX_DOCUMENT_OPTIONS:
            self.diagnostics.append(Diagnostic(choice.range, f"the spaces of this file hold more than "
                                               f"{MAX_DOCUMENT_OPTIONS:,} alternatives in all; this line's "
                                               f"{count:,} are left out", code="syntax"))
            return None
        self.options_read += count
        return _expand(s, choice, number, at)

    def _in_space(self, statement: _Built, line: _Line) -> None:
        """A layer, choice or block line while a space is open: a position, or an alternative of the choice
        above it when indented deeper than the choice line."""
        open_choice = self.choice
        inside = open_choice is not None and line.indent > open_choice.indent
        if isinstance(statement, Block):
            self.diagnostics.append(Diagnostic(statement.range, _BLOCK_IN_SPACE, code="syntax"))
        elif isinstance(statement, Layer):
            if inside:
                assert open_choice is not None
                open_choice.options.append(statement)
            else:
                self._close_choice()
                self.positions.append(statement)
        elif isinstance(statement, Choice) and statement.shorthand:
            if inside:
                assert open_choice is not None
                open_choice.options.extend(statement.options)  # its alternatives join the choice's
            else:
                self._close_choice()
                self.positions.append(statement)
        elif isinstance(statement, Choice):
            if inside:
                self.diagnostics.append(Diagnostic(statement.range, "a choice cannot hold another choice: write "
                                                   "its alternatives in the choice above", code="syntax"))
                return
            self._close_choice()
            self.choice = _OpenChoice(statement, line.indent)

    def _close_choice(self) -> None:
        open_choice, self.choice = self.choice, None
        if open_choice is None or open_choice.choice is None:
            return
        choice = open_choice.choice
        if not open_choice.options:
            self.diagnostics.append(Diagnostic(choice.range, "this choice is empty: indent its alternatives below "
                                               "it (skip leaves the position out)", code="empty-choice"))
            return
        end = open_choice.options[-1].range.end
        self.positions.append(replace(choice, options=tuple(open_choice.options),
                                      range=Range(choice.range.start, end)))

    def _close_space(self) -> None:
        self._close_choice()
        space = self.space
        if space is None:
            return
        last = self.positions[-1].range.end if self.positions else space.range.end
        final = 0
        while final < len(self.comments) and self.comment_places[final][1]:
            final += 1
        if final:
            line, _, column = self.comment_places[final - 1]
            last = Position(line, column)
        if not self.positions and not self.space_broken:
            self.diagnostics.append(Diagnostic(space.name_range, f"space '{space.name}' has no positions: indent "
                                               "its layers and choices below it", code="empty"))
        self.spaces.append(replace(space, positions=tuple(self.positions), range=Range(space.range.start, last),
                                   final_comments=tuple(self.comments[:final])))
        del self.comments[:final], self.comment_places[:final]
        self.space, self.positions, self.space_broken = None, [], False

    def _layer(self, layer: Layer, reported: bool) -> None:
        if self.header is not None:
            self.layers.append(layer)
        elif not self.in_model and not reported:
            self.diagnostics.append(Diagnostic(layer.range, _ORPHAN_LAYER, code="syntax"))

    def _block(self, block: Block, number: int, line: _Line) -> None:
        if self.header is None:
            if not self.in_model:
                self.diagnostics.append(Diagnostic(block.range, _ORPHAN_BLOCK, code="syntax"))
            return
        if self.open:
            self._indentation(number, line)
        self.open.append(_OpenBlock(block, number, line.indent, len(self.layers), len(self.blocks)))
        self.blocks.append(block)

    def _indentation(self, number: int, line: _Line) -> None:
        """Close the blocks this line is not indented under; check it lines up with the body it is in."""
        indent = line.indent
        while self.open and indent <= self.open[-1].indent:
            self._close_block(self.open.pop())
        if not self.open:
            return
        top = self.open[-1]
        top.filled = True
        if top.body is None:
            top.body = indent
            return
        if indent == top.body:
            return
        where = Range.of(number, 0, max(line.lead, 1))
        if indent > top.body:
            message = (f"unexpected indentation: the block at line {top.line + 1} holds its layers at "
                       f"{_columns(top.body)}, this line is at {_columns(indent)}; only the layers below a block "
                       "line are indented deeper")
        else:
            message = (f"this line's indentation ({_columns(indent)}) matches no block: the block at line "
                       f"{top.line + 1} holds its layers at {_columns(top.body)}, and a line at "
                       f"{_columns(top.indent)} or less ends it")
        self.diagnostics.append(Diagnostic(where, message, code="indentation"))

    def _close_block(self, open_block: _OpenBlock) -> None:
        block = open_block.block
        if block is None:
            return
        stop = len(self.layers)
        if stop == open_block.start:
            self.blocks[open_block.slot] = None
            if not open_block.filled:
                self.diagnostics.append(Diagnostic(
                    block.range, f"this {block.kind} block is empty: indent the layers it holds below its line",
                    code="empty-block"))
            return
        self.blocks[open_block.slot] = replace(block, start=open_block.start, stop=stop)

    def _close_model(self) -> None:
        while self.open:
            self._close_block(self.open.pop())
        header = self.header
        if header is not None:
            end = self.layers[-1].range.end if self.layers else header.range.end
            # Pending comments all follow the last layer; the indented ones among the first close this model
            # (and its range takes them in, so that what is inserted after the model goes after them too).
            final = 0
            while final < len(self.comments) and self.comment_places[final][1]:
                final += 1
            if final:
                line, _, column = self.comment_places[final - 1]
                end = Position(line, column)
            blocks = tuple(b for b in self.blocks if b is not None) if self.blocks else ()
            self.models.append(ModelSpec(header.name, tuple(self.layers), header.parent, header.comments,
                                         Range(header.range.start, end), header.name_range, header.parent_range,
                                         tuple(self.comments[:final]), blocks, header.parent_space))
            del self.comments[:final], self.comment_places[:final]
        self.header, self.layers, self.blocks = None, [], []

    def _header_line(self, statement: DataSpec | TrainSpec | Budget) -> None:
        if self.in_model:
            self.diagnostics.append(Diagnostic(statement.range, _HEADER_AFTER_MODEL, code="syntax"))
        if isinstance(statement, DataSpec):
            if self.data is not None:
                self._again(statement, "data", self.data.range)
            else:
                self.data = statement
        elif isinstance(statement, TrainSpec):
            if self.train is not None:
                self._again(statement, "train", self.train.range)
            else:
                self.train = statement
        else:
            first = next((b for b in self.budgets if b.metric == statement.metric), None)
            if first is not None:
                self._again(statement, f"budget {statement.metric}", first.range)
            else:
                self.budgets.append(statement)

    def _again(self, statement: DataSpec | TrainSpec | Budget, what: str, first: Range) -> None:
        self.diagnostics.append(Diagnostic(
            statement.range, f"a second {what} line; the first is at line {first.start.line + 1}", code="syntax"))


def _columns(width: int) -> str:
    return f"{width} space" if width == 1 else f"{width} spaces"
