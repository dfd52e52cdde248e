"""The checks of one layer's written arguments against the catalog, and the did-you-mean fixes they offer:
shared by the analysis of models and of search spaces."""

from __future__ import annotations

import difflib
from fractions import Fraction
from typing import Protocol

from remapdsl.language.catalog import LayerType, ParamSpec
from remapdsl.language.diagnostics import Fix, Severity, TextEdit
from remapdsl.language.model import Arg, Layer, Range


def suggestion(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice closest to a mistyped `word`, if one is close enough to be what was meant."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = suggestion(word, choices)
    return f"; did you mean '{close}'?" if close else ""


def replace_fix(rng: Range, word: str) -> Fix:
    """The quick fix of a did-you-mean: the mistyped text at `rng` replaced by `word`."""
    return Fix(f"Replace with '{word}'", (TextEdit(rng, word),))


def suggest(word: str, choices: list[str] | tuple[str, ...], rng: Range | None) -> tuple[str, Fix | None]:
    """The did-you-mean text for a message about `word` (written at `rng`), and the fix that applies it."""
    close = suggestion(word, choices)
    if close is None:
        return "", None
    return f"; did you mean '{close}'?", replace_fix(rng, close) if rng is not None else None


def name_range(arg: Arg) -> Range:
    """Where a named arg's name is written: the start of `name=value`."""
    line, start = arg.range.start
    return Range.of(line, start, start + len(arg.name))


def layer_examples() -> str:
    return "conv2d, dense, maxpool"


class Report(Protocol):
    """How the checks of one model add a diagnostic to it."""

    def __call__(self, rng: Range, message: str, code: str, severity: Severity = ...,
                 fix: Fix | None = ...) -> None: ...


def check_args(layer: Layer, ltype: LayerType, report: Report) -> bool:
    ok = True
    seen: set[str] = set()
    names = [p.name for p in ltype.params]
    for arg in layer.args:
        if arg.positional and arg.name == "":
            report(arg.range, f"{ltype.name} takes no positional value" + (
                f"; name it, e.g. {names[0]}=..." if names else ""), "unknown-param")
            ok = False
            continue
        spec = ltype.param(arg.name)
        if spec is None:
            listing = f" (parameters: {', '.join(names)})" if names else " (it takes no parameters)"
            hint, fix = suggest(arg.name, names, name_range(arg))
            report(arg.range, f"{ltype.name} has no parameter '{arg.name}'{hint}{listing}", "unknown-param",
                   fix=fix)
            ok = False
            continue
        if arg.name in seen:
            report(arg.range, f"{arg.name} is given twice", "duplicate-param")
            ok = False
            continue
        seen.add(arg.name)
        if (msg := spec.check(arg.value)) is not None:
            hint, fix = value_hint(arg, spec)
            report(arg.value_range, msg + hint, "value", fix=fix)
            ok = False
    for spec in ltype.params:
        if spec.required and spec.name not in seen:
            example = spec.grid[0] if spec.grid else 1
            report(layer.kind_range, f"{ltype.name} needs {spec.name}, e.g. {ltype.name} {example}", "missing-param")
            ok = False
    return ok


def value_hint(arg: Arg, spec: ParamSpec) -> tuple[str, Fix | None]:
    """For a value `spec` refuses: a did-you-mean for a mistyped word (`sme` → `same`), else the nearest grid
    value as a fix (the message already says what is allowed)."""
    if isinstance(arg.value, str):
        return suggest(arg.value, spec.words, arg.value_range) if spec.words else ("", None)
    return "", nearest_value_fix(arg, spec)


def nearest_value_fix(arg: Arg, spec: ParamSpec) -> Fix | None:
    written = arg.value
    if not spec.grid or isinstance(written, str | tuple):
        return None
    # exact distances: a written int may be far beyond what a float holds (a grid holds numbers only, which
    # the catalog's Value type cannot say)
    nearest = min(spec.grid, key=lambda g: abs(Fraction(g) - Fraction(written)))  # type: ignore[arg-type]
    return Fix(f"Set {spec.name} to {nearest}", (TextEdit(arg.value_range, str(nearest)),))
