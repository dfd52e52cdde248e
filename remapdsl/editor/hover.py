"""Hover texts (Markdown) for models, layers and header lines. Pure: the caller reads the store."""

from __future__ import annotations

import re
from collections.abc import Sequence

from remapdsl.editor.facts import StoreFacts
from remapdsl.language.analysis import ModelInfo
from remapdsl.language.catalog import describe_shape
from remapdsl.language.header import TRAIN_OPTIONS
from remapdsl.language.model import Document, as_int
from remapdsl.snac.geometry import si_number
from remapdsl.snac.svg import data_uri, render_svg
from remapdsl.snac.text import render_text
from remapdsl.store.estimate import DEFAULT_BATCH, Work
from remapdsl.store.results import duration

SPARKS = "▁▂▃▄▅▆▇█"
# Big enough to read in a hover; the image is an SVG data URI of a few KB.
HOVER_CHIP = "compact"

HEADER_HELP = {
    "data": "**data** — what the models train on: `digits` (bundled), `mnist`, `cifar10`, `quickdraw`, `folder` "
            "or `npz` with a path. It fixes the input shape and the number of classes.",
    "train": "**train** — training settings shared by every model of the file: `epochs`, `batch`, `lr`, "
             "`optimizer` (adam, adamw, sgd), `seed`, `patience` (early stopping on validation loss).",
    "budget": "**budget** — a bound every model must respect: `params <= 100k` is checked as you type; "
              "`latency <= 0.5ms` and `size <= 400KB` once the model is exported to ONNX and measured.",
}


def sparkline(values: tuple[float, ...] | list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / span * (len(SPARKS) - 1) + 0.5))] for v in values)


def model_hover(info: ModelInfo, *, images: bool, facts: StoreFacts | None = None, epochs: int | None = None,
                parent: ModelInfo | None = None, parent_acc: float | None = None,
                class_names: tuple[str, ...] = (), neighbours: Sequence[tuple[str, float]] = (),
                batch: int = DEFAULT_BATCH) -> str:
    """The model's chip, size and shape, estimated or actual training, accuracy, classes and parent delta, and
    the models closest in structure (`neighbours`: names and OTMANN distances, nearest first)."""
    name = info.model.name
    lineage = "space " if info.model.parent_space else ""
    parts = [f"**{name}**" + (f" — from {lineage}`{info.model.parent}`" if info.model.parent else "")]
    if images:
        parts.append(f"![SNAC chip of {name}]({data_uri(render_svg(info, size=HOVER_CHIP))})")
    else:
        parts.append("```text\n" + render_text(info, rows=2, header=False) + "```")
    out_shape = describe_shape(info.output_shape) if info.output_shape is not None else "unknown"
    facts_lines = [f"{info.param_count:,} parameters · {si_number(info.flops)} FLOPs per example · "
                   f"{describe_shape(info.input_shape) if info.input_shape else '?'} → {out_shape}"]
    if not info.valid:
        facts_lines.append(f"{sum(1 for d in info.diagnostics if d.severity == 1)} error(s): see the problems list")
    trained = facts.trained if facts else None
    if trained is not None:
        line = f"validation accuracy **{trained.val_acc:.1%}**"
        if trained.curve:
            line += f" · {sparkline(trained.curve)} over {len(trained.curve)} epoch(s)"
        if trained.seconds is not None:
            line += f" · trained in {duration(trained.seconds)}" + (f" on {trained.device}" if trained.device else "")
        facts_lines.append(line)
        if trained.per_class and len(class_names) == len(trained.per_class):
            ranked = sorted(zip(trained.per_class, class_names, strict=True))
            worst = ", ".join(f"{n} {a:.0%}" for a, n in ranked[:2])
            best = ", ".join(f"{n} {a:.0%}" for a, n in reversed(ranked[-2:]))
            facts_lines.append(f"best classes: {best} · worst: {worst}")
        if trained.latency_ms is not None:
            facts_lines.append(f"ONNX latency {trained.latency_ms:.3g} ms per example at batch 1 (p50"
                               + (f", {trained.latency_where})" if trained.latency_where else ")")
                               + "".join(f" · {ms:.3g} ms with {where}" for where, ms in trained.other_latencies))
    elif facts is not None and facts.n_train and epochs and facts.timing is not None:
        estimate = facts.timing.seconds(Work(info.flops, facts.n_train, batch, len(info.layers)), epochs)
        facts_lines.append(f"not trained · estimated training time {duration(estimate)} for {epochs} epoch(s)")
    else:
        facts_lines.append("not trained (an estimate of its training time comes once a model has trained here)")
    if parent is not None:
        delta = info.param_count - parent.param_count
        line = f"vs `{parent.model.name}`: {delta:+,} parameters"
        if trained is not None and parent_acc is not None:
            line += f", {(trained.val_acc - parent_acc) * 100:+.1f} points of accuracy"
        facts_lines.append(line)
    if neighbours:
        facts_lines.append("closest in structure: " + " · ".join(f"`{n}` {short_distance(d)}" for n, d in neighbours))
    if facts is not None and facts.overview is not None:
        facts_lines.append(f"[show in overview]({facts.overview})")
    parts.append("\n\n".join(facts_lines))
    return "\n\n".join(parts)


def short_distance(d: float) -> str:
    """Two decimals tell neighbours apart; 0 is the same structure, and a near twin is not rounded to it."""
    if d == 0:
        return "0"
    return f"{d:.2f}" if d >= 0.01 else f"{d:.3f}" if d >= 0.001 else "<0.001"


def layer_hover(info: ModelInfo, index: int) -> str:
    layer = info.layers[index]
    kind = layer.layer.kind
    shapes = (f"{describe_shape(layer.input_shape) if layer.input_shape else '?'} → "
              f"{describe_shape(layer.output_shape) if layer.output_shape else '?'}")
    total = info.param_count
    share = f" ({layer.param_count / total:.1%} of the model)" if total else ""
    settings = " ".join(f"{k}={v}" for k, v in layer.params.items())
    doc = f"\n\n{layer.type.doc}" if layer.type is not None and layer.type.doc else ""
    return (f"**{kind}** {settings}".rstrip() + f" — layer {index} of `{info.model.name}`\n\n"
            f"{shapes} · {layer.param_count:,} parameters{share}{doc}")


def planned_epochs(document: Document) -> int:
    """The epochs the train line asks for (the default when it gives none, or a value that is not one)."""
    return _planned(document, "epochs")


def planned_batch(document: Document) -> int:
    """The batch size the train line asks for (the default when it gives none, or a value that is not one)."""
    return _planned(document, "batch")


def _planned(document: Document, option: str) -> int:
    default = TRAIN_OPTIONS[option].default
    value = document.train.option(option, default) if document.train else default
    if isinstance(value, int) and not isinstance(value, bool) and TRAIN_OPTIONS[option].check(value) is None:
        return value
    return as_int(default)


def plain_text(markdown: str) -> str:
    """A hover for clients that show plain text only. The hovers use bold, inline code, fenced text blocks and
    links and nothing else, so dropping their marks (a link becomes "text: URL") leaves the text."""
    lines = [line for line in markdown.split("\n") if not line.startswith("```")]
    text = "\n".join(lines).replace("**", "").replace("`", "")
    return _LINK.sub(r"\1: \2", text)


# a Markdown link that is not an image
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
