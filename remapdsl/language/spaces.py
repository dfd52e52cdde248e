"""Analysis of a search space: its size, whether every path through it is a valid model, its parameter range
and how many paths fit the parameter budget.

A path takes one option at each position. The number of paths is the product of the options per position, so
a space of a hundred two-way choices has 2^100 paths: nothing here walks them one by one. The checks run as
dynamic programming over the positions, carrying for each tensor shape that can reach a position how many
paths reach it and their smallest and largest parameter counts (a layer's parameters depend only on the shape
it receives). The budget count also carries, per shape, how many paths have each parameter count; when more
than `MAX_SIZES` distinct counts arise it falls back to bounds from the smallest and largest counts. The work
is bounded by `MAX_STEPS` (and `MAX_SIZE_STEPS` for the budget), whatever size the space declares.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from remapdsl.language.catalog import LAYER_TYPES, Shape, ShapeError, describe_shape, is_spatial
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.diagnostics import Diagnostic, Fix, Severity
from remapdsl.language.layer_checks import Report, check_args, layer_examples
from remapdsl.language.model import SKIP, Budget, Choice, Layer, ModelSpec, Range, SpaceSpec
from remapdsl.language.printer import budget_limit_text, layer_text

# Distinct tensor shapes that may reach one position, and shapes x options tried over the whole space (about a
# second of work); beyond them the space is too irregular to check.
MAX_SHAPES = 1024
MAX_STEPS = 200_000
# Distinct (shape, parameter count) pairs kept for the exact budget count, and pairs x options added up over
# the whole space; beyond them the count is a range.
MAX_SIZES = 200_000
MAX_SIZE_STEPS = 2_000_000
# `paths` enumerates at most this many paths: callers that need more sample instead.
MAX_ENUMERATED = 1_000_000

Path = tuple[int, ...]  # the option taken at each position


@dataclass(frozen=True)
class SpaceInfo:
    """What analysis knows of one space. Counts are None where the data set's shapes are unknown or the space
    could not be checked (a diagnostic says why)."""

    space: SpaceSpec
    diagnostics: tuple[Diagnostic, ...]
    size: int  # paths through the space
    valid: int | None = None  # paths that are valid models
    min_params: int | None = None  # over the valid paths
    max_params: int | None = None
    # valid paths within `budget params` (None without a budget); when `budget_exact` is False the count lies
    # between `within_budget` and `within_budget_high`
    within_budget: int | None = None
    within_budget_high: int | None = None

    @property
    def budget_exact(self) -> bool:
        return self.within_budget == self.within_budget_high

    def summary(self) -> str:
        """One line for hovers and listings: size, validity, parameter range, budget."""
        parts = [f"{show_count(self.size)} paths"]
        if self.valid is not None and self.valid != self.size:
            parts.append(f"{show_count(self.valid)} valid")
        if self.min_params is not None and self.max_params is not None:
            parts.append(f"{self.min_params:,} to {self.max_params:,} parameters")
        if self.within_budget is not None and self.valid is not None:
            if self.budget_exact:
                parts.append(f"{show_count(self.valid - self.within_budget)} over the budget")
            else:
                assert self.within_budget_high is not None
                parts.append(f"{show_count(self.valid - self.within_budget_high)} to "
                             f"{show_count(self.valid - self.within_budget)} over the budget")
        return ", ".join(parts)


def show_count(n: int) -> str:
    """A path count as people read it: digits with separators up to a trillion, then a power of ten."""
    if n < 10**12:
        return f"{n:,}"
    return f"about 10^{math.floor(math.log10(n))}"


def size(space: SpaceSpec) -> int:
    return math.prod(len(space.options(i)) for i in range(len(space.positions)))


def paths(space: SpaceSpec, limit: int = MAX_ENUMERATED) -> Iterator[Path]:
    """The paths through `space` in order (the first position varying slowest), at most `limit` of them."""
    ranges = [range(len(space.options(i))) for i in range(len(space.positions))]
    return itertools.islice(itertools.product(*ranges), min(limit, MAX_ENUMERATED))


def path_layers(space: SpaceSpec, path: Path) -> tuple[Layer, ...]:
    """The layers of the model a path describes (skipped positions left out)."""
    if len(path) != len(space.positions):
        raise ValueError(f"a path through space '{space.name}' takes {len(space.positions)} options; got {len(path)}")
    out = []
    for i, k in enumerate(path):
        options = space.options(i)
        if not 0 <= k < len(options):
            raise ValueError(f"position {i + 1} of space '{space.name}' has {len(options)} options; got {k + 1}")
        if options[k].kind != SKIP:
            out.append(options[k])
    return tuple(out)


def path_model(space: SpaceSpec, path: Path, name: str) -> ModelSpec:
    """The model a path describes, with the space as its lineage."""
    layers = tuple(Layer(layer.kind, layer.args, layer.annotations) for layer in path_layers(space, path))
    return ModelSpec(name, layers, space.name, parent_space=True)


def find_path(space: SpaceSpec, layers: tuple[Layer, ...]) -> Path | int:
    """The path through `space` whose layers are `layers` (compared as written, annotations aside), or, when
    none is, how many of the first layers some path matches. Linear in positions x options x layers."""
    wanted = [_written(layer) for layer in layers]
    # for each number of layers matched so far, one path that matches them
    reached: dict[int, Path] = {0: ()}
    longest = 0
    for index in range(len(space.positions)):
        after: dict[int, Path] = {}
        for matched, path in reached.items():
            for k, option in enumerate(space.options(index)):
                if option.kind == SKIP:
                    after.setdefault(matched, (*path, k))
                elif matched < len(wanted) and _written(option) == wanted[matched]:
                    after.setdefault(matched + 1, (*path, k))
        reached = after
        longest = max([longest, *reached])
    return reached.get(len(wanted), longest)


def _written(layer: Layer) -> tuple[str, frozenset[tuple[str, object]]]:
    ltype = LAYER_TYPES.get(layer.kind)
    params = ltype.resolve(layer.written()) if ltype is not None else layer.written()
    return layer.kind, frozenset(params.items())


def describe_path(space: SpaceSpec, path: Path) -> str:
    """The options a path takes at the choices, in words: `conv2d 32 kernel=5 (line 3), skip (line 9)`."""
    shown = [f"{layer_text(space.options(i)[k])} (line {space.options(i)[k].range.start.line + 1})"
             for i, k in enumerate(path) if isinstance(space.positions[i], Choice)]
    return ", ".join(shown) if shown else "its layers"


class _Step:
    """Where the paths that reach one shape came from: a chain back to the first position, one path kept."""

    __slots__ = ("option", "prev")

    def __init__(self, prev: _Step | None, option: int) -> None:
        self.prev = prev
        self.option = option

    def path(self) -> Path:
        out = []
        step: _Step | None = self
        while step is not None:
            out.append(step.option)
            step = step.prev
        return tuple(reversed(out))


@dataclass
class _State:
    count: int
    low: int
    high: int
    witness: _Step | None
    sizes: dict[int, int] | None  # parameter count -> paths, for the budget


def _apply(layer: Layer, shape: Shape) -> tuple[Shape, int]:
    """The shape after `layer` and its parameters; ShapeError (message for the user) when it cannot take
    `shape`."""
    if layer.kind == SKIP:
        return shape, 0
    ltype = LAYER_TYPES[layer.kind]
    params = ltype.resolve(layer.written())
    if ltype.needs_spatial and not is_spatial(shape):
        if ltype.name == "flatten":
            return shape, 0
        raise ShapeError(f"{ltype.name} needs an image (channels x height x width), but the tensor is already "
                         f"flat ({shape[0]} features)")
    if ltype.needs_flat and is_spatial(shape):
        raise ShapeError(f"{ltype.name} needs a flat input, but receives {describe_shape(shape)}; insert flatten "
                         "before it")
    try:
        out = ltype.output_shape(shape, params)
    except ShapeError as e:
        raise ShapeError(f"{ltype.name}: {e} ({describe_shape(shape)})", e.code) from None
    return out, ltype.param_count(shape, params)


def analyze_space(space: SpaceSpec, dataset: DatasetInfo | None, budget: Budget | None = None) -> SpaceInfo:
    """Size, validity, parameter range and budget count of `space` for the given input (None: shapes
    unknown), with the diagnostics."""
    out: list[Diagnostic] = []
    seen: set[tuple[Range, str]] = set()

    def report(rng: Range, message: str, code: str, severity: Severity = Severity.ERROR,
               fix: Fix | None = None) -> None:
        if (rng, message) not in seen:  # a shorthand's options share their line
            seen.add((rng, message))
            out.append(Diagnostic(rng, message, severity, code, space.name, fix))

    total = size(space)
    options_ok = _check_options(space, report)
    if not options_ok or dataset is None or not space.positions:
        return SpaceInfo(space, tuple(out), total)
    return _check_paths(space, dataset, budget, total, report, out)


def _check_options(space: SpaceSpec, report: Report) -> bool:
    ok = True
    for position in space.positions:
        if isinstance(position, Layer) and position.kind == SKIP:
            report(position.range, "skip leaves a position out: on its own it does nothing; write it among the "
                   "alternatives of a choice", "skip", Severity.WARNING)
        for layer in position.options if isinstance(position, Choice) else (position,):
            if layer.kind == SKIP:
                if layer.args or layer.annotations:
                    report(layer.range, "skip takes no parameters", "unknown-param")
                    ok = False
                continue
            ltype = LAYER_TYPES.get(layer.kind)
            if ltype is None:
                report(layer.kind_range, f"expected a layer such as {layer_examples()}, or skip; found "
                       f"'{layer.kind}'", "unknown-layer")
                ok = False
                continue
            ok = check_args(layer, ltype, report) and ok
        if isinstance(position, Choice) and not position.shorthand:
            texts = [layer_text(o) for o in position.options]
            for k, text in enumerate(texts):
                if text in texts[:k]:
                    report(position.options[k].range, f"'{text}' is already an alternative of this choice",
                           "duplicate-option", Severity.WARNING)
    return ok


def _check_paths(space: SpaceSpec, dataset: DatasetInfo, budget: Budget | None, total: int, report: Report,
                 out: list[Diagnostic]) -> SpaceInfo:
    counting = budget is not None
    states: dict[Shape, _State] = {
        dataset.input_shape: _State(1, 0, 0, None, {0: 1} if counting else None)}
    sizes_kept = 1
    steps = size_steps = 0
    first_error: tuple[int, Layer, Path, str] | None = None
    for index in range(len(space.positions)):
        options = space.options(index)
        steps += len(states) * len(options)
        if steps > MAX_STEPS:
            report(space.positions[index].range, f"{len(states):,} tensor shapes reach this position and it has "
                   f"{len(options):,} options: the space is too irregular to check its paths (more than "
                   f"{MAX_STEPS:,} steps)", "space-size", Severity.WARNING)
            return SpaceInfo(space, tuple(out), total)
        size_steps += sizes_kept * len(options)
        if counting and size_steps > MAX_SIZE_STEPS:
            counting = False
            for state in states.values():
                state.sizes = None
        after: dict[Shape, _State] = {}
        for shape, state in states.items():
            for k, layer in enumerate(options):
                try:
                    new_shape, params = _apply(layer, shape)
                except ShapeError as e:
                    if first_error is None:
                        first_error = (index, layer, (*_path_of(state.witness), k), str(e))
                    continue
                target = after.get(new_shape)
                if target is None:
                    if len(after) >= MAX_SHAPES:
                        report(space.positions[index].range, f"more than {MAX_SHAPES:,} tensor shapes come out "
                               "of this position: the space is too irregular to check its paths", "space-size",
                               Severity.WARNING)
                        return SpaceInfo(space, tuple(out), total)
                    target = after[new_shape] = _State(0, state.low + params, state.high + params,
                                                       _Step(state.witness, k), {} if counting else None)
                target.count += state.count
                target.low = min(target.low, state.low + params)
                target.high = max(target.high, state.high + params)
                if not counting:
                    target.sizes = None
                elif target.sizes is not None and state.sizes is not None:
                    for n, c in state.sizes.items():
                        key = n + params
                        if key not in target.sizes:
                            sizes_kept += 1
                        target.sizes[key] = target.sizes.get(key, 0) + c
        states = after
        if counting and sizes_kept > MAX_SIZES:
            counting = False
            for state in states.values():
                state.sizes = None
        else:
            sizes_kept = sum(len(s.sizes) for s in states.values() if s.sizes is not None)
    head = (dataset.num_classes,)
    for shape, state in states.items():
        if shape != head and first_error is None:
            last = len(space.positions) - 1
            layer = space.options(last)[_path_of(state.witness)[-1]]
            first_error = (last, layer, _path_of(state.witness),
                           f"the model ends with a {describe_shape(shape)} tensor, not the classifier head: "
                           f"dense {dataset.num_classes}")
    final = states.get(head)
    valid = final.count if final is not None else 0
    if first_error is not None:
        _, layer, path, message = first_error
        report(layer.range, f"{show_count(total - valid)} of {show_count(total)} paths are not valid models; the "
               f"first: with {describe_path(space, path)}: {message}", "space-path")
    if final is None:
        return SpaceInfo(space, tuple(out), total, 0)
    low = high = None
    if budget is not None:
        if final.sizes is not None:
            low = high = sum(c for n, c in final.sizes.items() if budget.allows(n))
        else:
            low = final.count if budget.allows(final.high) else 0
            high = final.count if budget.allows(final.low) else 0
        if high == 0:
            report(space.name_range, f"every path of space '{space.name}' is over the budget of "
                   f"{budget_limit_text(budget)} parameters (the smallest has {final.low:,})", "budget")
        elif low != valid:
            over = f"{show_count(valid - low)}" if low == high else f"{show_count(valid - high)} to " \
                f"{show_count(valid - low)}"
            report(space.name_range, f"{over} of {show_count(valid)} valid paths are over the budget of "
                   f"{budget_limit_text(budget)} parameters and are left out", "budget-pruned", Severity.INFO)
    return SpaceInfo(space, tuple(out), total, valid, final.low, final.high, low, high)


def _path_of(step: _Step | None) -> Path:
    return step.path() if step is not None else ()
