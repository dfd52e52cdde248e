"""Hypothesis strategies for valid Documents: every one prints to text that parses back equal to it.

"Valid" means syntactically valid (what the printer and parser promise to round-trip), not necessarily
meaningful to analysis: layers take random parameters, unknown kinds and options appear on purpose.
Use `documents()` for whole files, `models()` and `layers()` for parts, `sensible_models()` for models
built only from catalog layers with parameters from their sampler grids.
"""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS
from remapdsl.language.model import (
    Annotation,
    Arg,
    Budget,
    Comments,
    DataSpec,
    Document,
    Layer,
    ModelSpec,
    TrainSpec,
    Value,
)
from remapdsl.language.parser import KEYWORDS, NAME_RE, data_option_names, layer_param_names, order_args

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


models = st.builds(ModelSpec, any_names, st.lists(layers(), max_size=5).map(tuple), st.none() | any_names, comments,
                   final_comments=st.lists(comment_texts, max_size=2).map(tuple))

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
    st.lists(models, max_size=3).map(tuple),
    st.none() | data_specs,
    st.none() | train_specs,
    budgets(),
    st.lists(comment_texts, max_size=2).map(tuple),
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
