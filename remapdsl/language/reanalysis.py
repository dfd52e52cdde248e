"""Analysing an edited document again, redoing only the models the edit touched.

An edit changes a run of lines. Every model wholly above that run is where it was; every model wholly below it
moved by the number of lines the edit added or removed. Their text is the same, so their shapes, counts and
diagnostics are too: they are kept, moved by as many lines, and only the models inside the edited run are
analysed again. A change to the data or the params budget affects every model, and then nothing is kept.

On a file of a thousand models this turns a keystroke's analysis from the whole file into one model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from remapdsl.language.analysis import Analysis, BlockInfo, LayerInfo, ModelInfo, analyze
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.diagnostics import Diagnostic, Fix, TextEdit
from remapdsl.language.model import Budget, ModelSpec, Position, Range
from remapdsl.language.parser import ParseResult, split_lines


def reanalyze(previous: Analysis, previous_text: str, text: str, result: ParseResult,
              base_dir: Path | None = None) -> Analysis:
    """The analysis of `text` (parsed as `result`), keeping what `previous` (of `previous_text`) found for
    the models whose lines the edit did not touch. Equal to `analyze(result.document, result.diagnostics,
    base_dir)`."""
    old_lines, new_lines = split_lines(previous_text), split_lines(text)
    above, below = unchanged_lines(old_lines, new_lines)
    moved_by = len(new_lines) - len(old_lines)
    first_below = len(new_lines) - below  # lines from here on are the old lines moved by `moved_by`
    by_start = {info.model.range.start.line: info for info in (*previous.models.values(), *previous.duplicates)}
    old_budget = previous.document.budget("params")

    def reuse(model: ModelSpec, dataset: DatasetInfo | None, budget: Budget | None) -> ModelInfo | None:
        if dataset != previous.dataset or budget != old_budget:
            return None
        start, end = model.range.start.line, model.range.end.line
        if end < above:
            shift = 0
        elif start >= first_below:
            shift = moved_by
        else:
            return None
        old = by_start.get(start - shift)
        # a model is read from its own lines only: the same lines of text give an equal model (ranges aside),
        # and so the same analysis, `shift` lines further on
        if old is None or old.model.range.end.line + shift != end or old.model.name != model.name \
                or len(old.layers) != len(model.layers) or len(old.blocks) != len(model.blocks):
            return None
        return moved(old, model, shift)

    return analyze(result.document, result.diagnostics, base_dir, reuse=reuse)


def unchanged_lines(old: Sequence[str], new: Sequence[str]) -> tuple[int, int]:
    """How many lines at the start and at the end both texts share (not overlapping in either)."""
    most = min(len(old), len(new))
    above = 0
    while above < most and old[above] == new[above]:
        above += 1
    below = 0
    while below < most - above and old[-1 - below] == new[-1 - below]:
        below += 1
    return above, below


def moved(old: ModelInfo, model: ModelSpec, lines: int) -> ModelInfo:
    """`old`, the analysis of an equal model `lines` lines earlier, for `model`."""
    if old.model is model:
        return old
    if all(a.layer is b for a, b in zip(old.layers, model.layers, strict=True)):
        layers = old.layers  # the parser handed back the very same layers: nothing moved
    else:
        layers = tuple(LayerInfo(layer, li.type, li.params, li.input_shape, li.output_shape, li.param_count,
                                 li.flops) for li, layer in zip(old.layers, model.layers, strict=True))
    diagnostics = old.diagnostics if lines == 0 else tuple(_moved_diagnostic(d, lines) for d in old.diagnostics)
    blocks = tuple(BlockInfo(block, bi.input_shape, bi.output_shape, bi.shortcut)
                   for bi, block in zip(old.blocks, model.blocks, strict=True)) if old.blocks else ()
    return ModelInfo(model, layers, diagnostics, old.input_shape, blocks)


def _moved_diagnostic(d: Diagnostic, lines: int) -> Diagnostic:
    fix = None if d.fix is None else Fix(d.fix.title, tuple(TextEdit(_moved_range(e.range, lines), e.new_text)
                                                            for e in d.fix.edits))
    return replace(d, range=_moved_range(d.range, lines), fix=fix)


def _moved_range(r: Range, lines: int) -> Range:
    return Range(Position(r.start.line + lines, r.start.character), Position(r.end.line + lines, r.end.character))
