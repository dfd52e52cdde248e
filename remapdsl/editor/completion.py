"""Completion from the text before the cursor, so it works on lines that do not parse yet."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from remapdsl.language.annotations import ANNOTATIONS, VARIATION_OPS
from remapdsl.language.blocks import BLOCK_DOCS, BLOCK_KINDS
from remapdsl.language.catalog import LAYER_TYPES, ParamSpec
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS
from remapdsl.language.model import Document
from remapdsl.language.printer import value_text

HEADER_WORDS = {"data": "the data set to train on", "train": "training settings", "budget": "a bound on every model",
                "model": "a new model block", "space": "a search space: positions that are layers or choices"}
SPACE_WORDS = {"choice": ("alternatives for one position, indented below it", "choice:"),
               "skip": ("the alternative that leaves the position out", "skip")}


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # keyword | layer | parameter | value | dataset | model | annotation | option
    detail: str = ""
    insert_text: str | None = None


def token_start(before: str) -> int:
    """Where the word being completed starts: after the last space, or after `(`/`,` inside `@allow(...)`."""
    stops = " \t(," if re.search(r"@\w+\([^)]*$", before) else " \t"
    return max(before.rfind(c) for c in stops) + 1


def complete(before: str, document: Document | None = None, in_space: bool = False) -> list[Completion]:
    """What may follow `before`, the text of the cursor's line up to the cursor; each item replaces the text
    from `token_start(before)` to the cursor. `in_space`: the line is inside a space, where choices and skip
    are written rather than blocks."""
    if "#" in before:
        return []
    indented = before[:1] in (" ", "\t")
    words = before.split()
    typing_word = not before[-1:].isspace() and bool(words)
    done = words[:-1] if typing_word else words
    current = words[-1] if typing_word else ""

    if current.startswith("@") or re.search(r"@\w+\([^)]*$", before):
        return _annotation_items(before)
    if not done:
        if indented:
            layers = [Completion(k, "layer", t.doc.split(".")[0]) for k, t in LAYER_TYPES.items()]
            if in_space:
                return layers + [Completion(k, "keyword", doc, text) for k, (doc, text) in SPACE_WORDS.items()]
            return layers + [Completion(k, "keyword", BLOCK_DOCS[k], f"{k}:") for k in BLOCK_KINDS]
        return [Completion(w, "keyword", d) for w, d in HEADER_WORDS.items()]
    head = done[0]
    if not indented and head == "data":
        if len(done) == 1:
            return [Completion(k, "dataset", d.doc.split(".")[0]) for k, d in DATASET_KINDS.items()]
        kind = DATASET_KINDS.get(done[1])
        return _option_items(kind.options if kind else (), current)
    if not indented and head == "train":
        return _option_items(tuple(TRAIN_OPTIONS.values()), current)
    if not indented and head == "budget":
        if len(done) == 1:
            return [Completion(m, "keyword", f"units: {', '.join(u for u in units if u) or 'none'}",
                               f"{m} <= ") for m, units in BUDGET_UNITS.items()]
        return _budget_items(done[1], done[2:], current)
    if not indented and head == "model":
        if done[-1] == "space" and len(done) >= 3 and done[-2] == "from":
            return [Completion(s.name, "model", f"a space of {len(s.positions)} positions")
                    for s in document.spaces] if document is not None else []
        if done[-1] == "from":
            itself = done[1] if len(done) == 3 else None
            models = [Completion(m.name, "model", f"{len(m.layers)} layers") for m in document.models
                      if m.name != itself] if document is not None else []
            if document is None or not document.spaces:
                return models
            return [*models, Completion("space", "keyword", "the space this model is a path of", "space ")]
        return [Completion("from", "keyword", "the parent this model was derived from")] if len(done) == 2 else []
    layer = LAYER_TYPES.get(head) if indented else None
    if layer is not None:
        return _option_items(layer.params, current, positional_first=len(done) == 1)
    block = BLOCK_KINDS.get(head) if indented else None
    if block is not None and not any(w.endswith(":") for w in done):
        return _option_items(block, current)
    return []


def _option_items(params: Iterable[ParamSpec], current: str, positional_first: bool = False) -> list[Completion]:
    params = tuple(params)
    if "=" in current:
        name = current.split("=", 1)[0]
        spec = next((p for p in params if p.name == name), None)
        return _values(spec, prefix=f"{name}=") if spec is not None else []
    out = []
    if positional_first:
        positional = next((p for p in params if p.positional), None)
        if positional is not None:
            out += _values(positional)
    out += [Completion(f"{p.name}=", "parameter", _describe(p), f"{p.name}=") for p in params if not p.positional]
    return out


def _values(spec: ParamSpec, prefix: str = "") -> list[Completion]:
    values = spec.words or spec.grid or ((spec.default,) if spec.default is not None else ())
    return [Completion(prefix + value_text(v), "value", f"{spec.name}: {spec.doc}" if spec.doc else spec.name)
            for v in values]


def _describe(p: ParamSpec) -> str:
    default = f" (default {value_text(p.default)})" if p.default is not None else " (required)"
    return f"{p.doc}{default}" if p.doc else default.strip(" ()")


def _annotation_items(before: str) -> list[Completion]:
    if re.search(r"@(allow|deny)\([^)]*$", before):
        return [Completion(op, "value", "variation operator") for op in VARIATION_OPS]
    return [Completion(f"@{name}", "annotation", doc) for name, doc in ANNOTATIONS.items()]


def _budget_items(metric: str, after: list[str], current: str) -> list[Completion]:
    """After `budget METRIC`: the comparison, then the limit with each of the metric's units."""
    units = BUDGET_UNITS.get(metric)
    if units is None:
        return []
    if not after:
        return [Completion("<=", "keyword", "at most"), Completion("<", "keyword", "less than")]
    number = re.match(r"\d+(?:\.\d*)?", current)
    if len(after) != 1 or number is None:
        return []
    return [Completion(number.group() + unit, "value", f"{metric} in {unit}") for unit in units if unit]
