"""Hypothesis strategies for valid Documents: every one prints to text that parses back equal to it.

"Valid" means syntactically valid (what the printer and parser promise to round-trip), not necessarily
meaningful to analysis: layers take random parameters, unknown kinds and options appear on purpose.
Use `documents()` for whole files, `models()` and `layers()` for parts, `sensible_models()` for models
built only from catalog layers with parameters from their sampler grids, `residual_models` for valid models
on the digits data with residual blocks (nested, with and without projection shortcuts).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from hypothesis import strategies as st

from remapdsl.language.blocks import SHORTCUTS
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS
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
from remapdsl.language.parser import KEYWORDS, NAME_RE, data_option_names, layer_param_names, order_args, parse

# Mostly ASCII with a few non-ASCII letters, so that unicode names are covered without drowning in them.
_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_éµß"
_REST = _FIRST + "0123456789"

names = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(_REST, max_size=8)).filter(
    lambda n: n not in KEYWORDS
)
# Names with inner '-' or '.' (small-wide, v1.2) are names too.
dotted_names = st.builds(lambda a, sep, b: f"{a}{sep}{b}", names, st.sampled_from("-."), st.text(_REST, min_size=1,
                                                                                              max_size=4))
any_names = st.one_of(names, names, dotted_names).filter(lambda n: NAME_RE.fullmatch(n) is not None)

# Comment text as stored: no line breaks, no trailing whitespace.
comment_texts = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20).map(
    str.rstrip
)
comments = st.builds(Comments, st.lists(comment_texts, max_size=2).map(tuple), st.none() | comment_texts)

scalars: st.SearchStrategy[Value] = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    any_names,
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)
values: st.SearchStrategy[Value] = st.one_of(scalars, scalars, st.lists(scalars, min_size=2, max_size=4).map(tuple))


@cache
def _args(known: tuple[str, ...], positional: str | None) -> st.SearchStrategy[tuple[Arg, ...]]:
    """Args as the parser stores them: the positional one first, then catalog order, unknown names last."""
    arg_names = st.sampled_from(known) | any_names if known else any_names
    named = st.lists(st.builds(Arg, arg_names, values), max_size=4)
    first = st.none() if positional is None else st.none() | st.builds(Arg, st.just(positional), values,
                                                                         st.just(True))
    return st.builds(lambda p, rest: order_args(known, ([p] if p else []) + rest), first, named)


annotations = st.builds(
    Annotation,
    st.one_of(st.sampled_from(("keep", "allow", "deny")), names.filter(lambda n: "." not in n and "-" not in n)),
    st.lists(st.sampled_from(("prepend", "remove", "replace", "reparameterize")) | any_names, max_size=3).map(tuple),
)


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    kind = draw(st.sampled_from(sorted(LAYER_TYPES)) | any_names)
    ltype = LAYER_TYPES.get(kind)
    positional = (ltype.positional.name if ltype.positional else "") if ltype else ""
    args = draw(_args(layer_param_names(kind), positional))
    return Layer(kind, args, tuple(draw(st.lists(annotations, max_size=2))), draw(comments))


block_args = st.one_of(
    st.just(()),
    st.sampled_from(SHORTCUTS).map(lambda s: (Arg("shortcut", s),)),
    _args(("shortcut",), ""),
)


@st.composite
def block_spans(draw: st.DrawFn, n_layers: int) -> list[tuple[int, int]]:
    """Non-empty spans over `n_layers` layers that nest or stay apart, outer before inner."""
    spans: list[tuple[int, int]] = []
    if n_layers == 0:
        return spans
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, n_layers - 1))
        stop = draw(st.integers(start + 1, n_layers))
        if all(stop <= a or b <= start or (a <= start and stop <= b) or (start <= a and b <= stop)
               for a, b in spans):
            spans.append((start, stop))
    return sorted(spans, key=lambda span: (span[0], -span[1]))


@st.composite
def models(draw: st.DrawFn) -> ModelSpec:
    body = tuple(draw(st.lists(layers(), max_size=5)))
    blocks = tuple(Block("residual", start, stop, draw(block_args), tuple(draw(st.lists(annotations, max_size=2))),
                         draw(comments)) for start, stop in draw(block_spans(len(body))))
    return ModelSpec(draw(any_names), body, draw(st.none() | any_names), draw(comments),
                     final_comments=tuple(draw(st.lists(comment_texts, max_size=2))), blocks=blocks)


SHORTHANDS = ("conv2d 8|16 kernel=3|5", "dense 32|64", "maxpool 2|3 stride=1|2", "dropout 0.1|0.25|0.5",
              "conv2d 8 kernel=1|3|5 padding=same|valid", "dense 10|20  @keep")


@st.composite
def choices(draw: st.DrawFn) -> Choice:
    """A `choice:` over random layers (skip among them), or a shorthand line with alternative values."""
    if draw(st.booleans()):
        line = draw(st.sampled_from(SHORTHANDS))
        position = parse(f"space s:\n    {line}\n").document.spaces[0].positions[0]
        assert isinstance(position, Choice)
        return replace(position, comments=draw(comments))
    options = draw(st.lists(layers() | st.builds(Layer, st.just("skip"), comments=comments), min_size=1, max_size=4))
    return Choice(tuple(options), False, draw(comments))


spaces = st.builds(
    SpaceSpec,
    any_names,
    st.lists(layers() | choices(), min_size=1, max_size=5).map(tuple),
    comments,
    final_comments=st.lists(comment_texts, max_size=2).map(tuple),
)


data_specs = st.sampled_from(sorted(DATASET_KINDS)).flatmap(
    lambda name: st.builds(DataSpec, st.just(name), st.none() | st.text(max_size=20),
                           _args(data_option_names(name), None), comments)
) | st.builds(DataSpec, any_names, st.none() | st.text(max_size=20), _args((), None), comments)

train_specs = st.builds(TrainSpec, _args(tuple(TRAIN_OPTIONS), None), comments)


@st.composite
def budgets(draw: st.DrawFn) -> tuple[Budget, ...]:
    metrics = draw(st.lists(st.sampled_from(sorted(BUDGET_UNITS)), unique=True, max_size=3))
    out = []
    for metric in metrics:
        unit = draw(st.sampled_from(sorted(BUDGET_UNITS[metric])))
        limit = draw(st.floats(min_value=0, max_value=1e15) | st.integers(0, 10**9).map(float))
        out.append(Budget(metric, limit, unit, draw(st.booleans()), draw(comments)))
    return tuple(out)


documents = st.builds(
    Document,
    st.lists(models(), max_size=3).map(tuple),
    st.none() | data_specs,
    st.none() | train_specs,
    budgets(),
    st.lists(comment_texts, max_size=2).map(tuple),
)

# Documents with spaces: the canonical text puts the spaces before the models.
documents_with_spaces = st.builds(
    Document,
    st.lists(models(), max_size=2).map(tuple),
    st.none() | data_specs,
    st.none() | train_specs,
    budgets(),
    st.lists(comment_texts, max_size=2).map(tuple),
    st.lists(spaces, min_size=1, max_size=2).map(tuple),
)


@st.composite
def sensible_layers(draw: st.DrawFn) -> Layer:
    """A catalog layer with its positional value and other parameters drawn from the sampler grids."""
    ltype = LAYER_TYPES[draw(st.sampled_from(sorted(LAYER_TYPES)))]
    args = []
    for p in ltype.params:
        if p.positional:
            args.append(Arg(p.name, draw(st.sampled_from(p.grid)), True))
        elif p.grid and draw(st.booleans()):
            args.append(Arg(p.name, draw(st.sampled_from(p.grid))))
    return Layer(ltype.name, tuple(args))


sensible_models = st.builds(ModelSpec, names, st.lists(sensible_layers(), min_size=1, max_size=8).map(tuple))


def _layer(kind: str, *positional: int | float, **named: int | str) -> Layer:
    ltype = LAYER_TYPES[kind]
    args = [Arg(ltype.positional.name, positional[0], True)] if positional and ltype.positional else []
    args += [Arg(name, value) for name, value in named.items()]
    return Layer(kind, order_args(layer_param_names(kind), args))


@st.composite
def _keeping_stage(draw: st.DrawFn, layers: list[Layer], blocks: list[Block], channels: int) -> None:
    """A nested block whose body keeps its input's shape."""
    start = len(layers)
    slot = len(blocks)
    blocks.append(Block("residual", 0, 0))
    layers.append(_layer("conv2d", channels, kernel=draw(st.sampled_from((1, 3)))))
    layers.append(_layer("relu"))
    blocks[slot] = Block("residual", start, len(layers))


@st.composite
def residual_models(draw: st.DrawFn) -> ModelSpec:
    """A valid model on the 1x8x8 digits with one to three residual blocks (some nested, some projecting)."""
    layers: list[Layer] = []
    blocks: list[Block] = []
    channels = draw(st.sampled_from((8, 16)))
    layers += [_layer("conv2d", channels, kernel=3), _layer("relu")]
    size = 8
    for _ in range(draw(st.integers(1, 2))):
        start = len(layers)
        slot = len(blocks)
        blocks.append(Block("residual", 0, 0))
        project = draw(st.booleans())
        out = draw(st.sampled_from((8, 16, 32))) if project else channels
        stride = draw(st.sampled_from((1, 2))) if project and size >= 4 else 1
        layers.append(_layer("conv2d", out, kernel=draw(st.sampled_from((1, 3))), stride=stride))
        if draw(st.booleans()):
            layers.append(_layer("batchnorm"))
        layers.append(_layer(draw(st.sampled_from(("relu", "tanh", "sigmoid")))))
        if draw(st.booleans()):
            draw(_keeping_stage(layers, blocks, out))
        blocks[slot] = Block("residual", start, len(layers), (Arg("shortcut", "conv"),) if project else ())
        channels, size = out, (size - 1) // stride + 1
    if size >= 2 and draw(st.booleans()):
        layers.append(_layer(draw(st.sampled_from(("maxpool", "avgpool"))), 2))
        size //= 2
    layers.append(_layer("flatten"))
    if draw(st.booleans()):
        units = draw(st.sampled_from((16, 64)))
        layers += [_layer("dense", units), _layer("relu")]
        start = len(layers)
        layers += [_layer("dense", units), _layer("relu")]
        blocks.append(Block("residual", start, len(layers)))
    layers.append(_layer("dense", 10))
    return ModelSpec(draw(names), tuple(layers), blocks=tuple(blocks))
