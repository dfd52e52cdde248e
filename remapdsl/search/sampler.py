"""The initial population: a Markov chain over layer types, after REMAP's sampler.

Each step draws the next state from the current state's row of a transition table, then a layer of that
state's type with hyperparameters drawn uniformly from the catalog's sampler grids. A layer that does not fit
the tensor reaching it is redrawn; `flatten` goes in before the first dense layer on its own; once a dense
layer is drawn only dense, activation and dropout may follow; the head (dense to the number of classes) ends
the chain. A network over the parameter cap is drawn again, as the reference did, and so is one that
repeats an architecture already in the sample. The same seed gives the same models.

Residual blocks, optional: with probability `residual` a drawn network wraps one run of its layers whose
shapes allow it (`remapdsl.search.residual.wrappable_runs`: a run that starts with a conv2d or dense layer,
its input joined to its output as it is or through a projection) in a residual block. At 0, the default, the
random stream is not touched, so a seed gives REMAP's population exactly as before.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from remapdsl.language.analysis import analyze_model
from remapdsl.language.catalog import LAYER_TYPES, Shape, ShapeError, is_spatial
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Arg, Comments, Layer, ModelSpec
from remapdsl.search.residual import new_block, wrappable_runs

HEAD = "head"
START = "start"
# States whose layers need an image; they never follow a dense layer.
SPATIAL_STATES = frozenset({"conv", "pool"})
STATES = ("conv", "pool", "dropout", "activation", "dense")
# Redraws of one step whose layer does not fit, before the network is given up and drawn again.
STEP_TRIES = 20
# Networks drawn per wanted model before the sampler gives up (cap, depth bounds and duplicates reject).
ATTEMPTS_PER_MODEL = 1000
# Draws in a row that give no new model before the sampler gives up, however many models are wanted: an
# impossible request (a cap no network fits under) or an exhausted space then fails in a fraction of a second
# rather than after ATTEMPTS_PER_MODEL x n draws.
FRUITLESS_DRAWS = 20_000

Row = Mapping[str, float]


def _rows(**rows: dict[str, float]) -> dict[str, Row]:
    return dict(rows)


@dataclass(frozen=True)
class TransitionTable:
    """Weights of the next state given the current one.

    `spatial` holds the rows before the first dense layer (`start` and every state), `flat` the rows after it
    (`dense`, `activation`, `dropout`); targets are states or `head`. Weights need not sum to anything.
    """

    spatial: Mapping[str, Row]
    flat: Mapping[str, Row]

    def __post_init__(self) -> None:
        if START not in self.spatial:
            raise ValueError("the transition table needs a 'start' row")
        for part, rows in (("before the first dense layer", self.spatial), ("after it", self.flat)):
            for state, row in rows.items():
                if state != START and state not in STATES:
                    raise ValueError(f"unknown state '{state}' {part}; expected start or {', '.join(STATES)}")
                for target, weight in row.items():
                    if target != HEAD and target not in STATES:
                        raise ValueError(f"row '{state}' {part} names unknown state '{target}'; expected "
                                         f"{', '.join(STATES)} or head")
                    if weight < 0:
                        raise ValueError(f"row '{state}' {part} gives '{target}' a negative weight ({weight})")
                    if rows is self.flat and target in SPATIAL_STATES and weight > 0:
                        raise ValueError(f"row '{state}' after the first dense layer leads to '{target}'; "
                                         "no conv or pool may follow a dense layer")
                    needed = self.flat if rows is self.flat or target == "dense" else self.spatial
                    if target != HEAD and weight > 0 and target not in needed:
                        where = "after the first dense layer" if needed is self.flat else "before it"
                        raise ValueError(f"row '{state}' {part} leads to '{target}', which has no row {where}")

    def row(self, state: str, after_dense: bool) -> Row:
        return (self.flat if after_dense else self.spatial)[state]


# REMAP's reference weights (the 2019 code's table).
REFERENCE_TABLE = TransitionTable(
    spatial=_rows(
        start={"conv": 6, "dense": 1, "pool": 2, "dropout": 1, "activation": 1, HEAD: 1},
        conv={"activation": 3, "conv": 1, "dropout": 1, "pool": 1, "dense": 1, HEAD: 1},
        pool={"conv": 2, "dense": 1, "dropout": 1, "pool": 1, "activation": 1, HEAD: 1},
        dropout={"conv": 2, "pool": 1, "dense": 1, HEAD: 1},
        activation={"conv": 3, "pool": 1, "dense": 1, "dropout": 1, HEAD: 1},
    ),
    flat=_rows(
        dense={"activation": 3, "dropout": 1, "dense": 1, HEAD: 1},
        activation={"dense": 1, "dropout": 1, HEAD: 1},
        dropout={"dense": 1, HEAD: 1},
    ),
)


def kinds_of(state: str) -> tuple[str, ...]:
    """The layer types the sampler draws for `state`, from the catalog (equally likely)."""
    return tuple(name for name, t in LAYER_TYPES.items() if t.sampler_state == state)


def draw_layer(rng: random.Random, state: str) -> Layer:
    """A layer of one of `state`'s types, every gridded parameter drawn uniformly from its grid.

    Only the positional value and parameters that differ from the catalog default are written.
    """
    kinds = kinds_of(state)
    if not kinds:
        raise ValueError(f"no layer type in the catalog has sampler state '{state}'")
    ltype = LAYER_TYPES[rng.choice(kinds)]
    args = []
    for spec in ltype.params:
        if not spec.grid:
            if spec.required:
                raise ValueError(f"{ltype.name} needs {spec.name} but the catalog gives it no sampler grid")
            continue
        value = rng.choice(spec.grid)
        if spec.positional or value != spec.default:
            args.append(Arg(spec.name, value, spec.positional))
    return Layer(ltype.name, tuple(args))


def output_of(layer: Layer, shape: Shape) -> tuple[Shape, int] | None:
    """(output shape, parameter count) of `layer` on `shape`, or None when it does not fit."""
    ltype = LAYER_TYPES[layer.kind]
    if (ltype.needs_spatial and not is_spatial(shape)) or (ltype.needs_flat and is_spatial(shape)):
        return None
    params = ltype.resolve(layer.written())
    try:
        out = ltype.output_shape(shape, params)
    except ShapeError:
        return None
    return out, ltype.param_count(shape, params)


@dataclass(frozen=True)
class _Limits:
    max_params: int
    min_layers: int
    max_layers: int
    classes: int


@dataclass
class _Chain:
    """One network being drawn."""

    shape: Shape
    layers: list[Layer] = field(default_factory=list)
    params: int = 0
    state: str = START
    after_dense: bool = False

    def head_cost(self) -> int:
        return 2 if is_spatial(self.shape) else 1

    def allowed(self, limits: _Limits) -> set[str]:
        """Targets that keep the chain within its depth bounds (and need no image once it is flat)."""
        n, head = len(self.layers), self.head_cost()
        out = set()
        if n + head >= limits.min_layers:
            out.add(HEAD)
        if n + head + 1 <= limits.max_layers:  # a dense layer costs the flatten the head would need
            out.add("dense")
            out |= {"dropout", "activation"}
            if is_spatial(self.shape):
                out |= SPATIAL_STATES
        return out

    def add(self, layers: list[Layer]) -> bool:
        """Append `layers` if they all fit; False (and nothing appended) otherwise."""
        shape, params = self.shape, self.params
        for layer in layers:
            result = output_of(layer, shape)
            if result is None:
                return False
            shape, count = result
            params += count
        self.layers += layers
        self.shape, self.params = shape, params
        return True


def _choose(rng: random.Random, row: Row, allowed: set[str]) -> str | None:
    targets = [t for t, w in row.items() if w > 0 and t in allowed]
    if not targets:
        return None
    return rng.choices(targets, weights=[row[t] for t in targets])[0]


def _flattened(chain: _Chain, layer: Layer) -> list[Layer]:
    return [Layer("flatten"), layer] if is_spatial(chain.shape) else [layer]


def _draw_network(rng: random.Random, dataset: DatasetInfo, table: TransitionTable,
                 limits: _Limits) -> tuple[Layer, ...] | None:
    """One walk of the chain; None when it breaks a bound (then the caller draws again)."""
    chain = _Chain(dataset.input_shape)
    while True:
        row = table.row(chain.state, chain.after_dense)
        allowed = chain.allowed(limits)
        for _ in range(STEP_TRIES):
            target = _choose(rng, row, allowed)
            if target is None:
                return None
            if target == HEAD:
                head = Layer("dense", (Arg("units", limits.classes, True),))
                if not chain.add(_flattened(chain, head)) or chain.params > limits.max_params:
                    return None
                return tuple(chain.layers)
            layer = draw_layer(rng, target)
            new = _flattened(chain, layer) if target == "dense" else [layer]
            if chain.add(new):
                break
        else:
            return None
        if chain.params > limits.max_params:
            return None
        chain.state = target
        chain.after_dense = chain.after_dense or target == "dense"


def sample_models(n: int, dataset: DatasetInfo, seed: int = 0, *, table: TransitionTable = REFERENCE_TABLE,
                  max_params: int = 1_000_000, min_layers: int = 2, max_layers: int = 12,
                  name_prefix: str = "m", residual: float = 0.0) -> list[ModelSpec]:
    """`n` distinct valid models for `dataset`, named m000, m001, ..., each marked `# sampled, seed S`; with
    probability `residual` each wraps a run of its layers in a residual block.

    Raises ValueError for impossible bounds, or when `n` distinct models cannot be found within the bounds.
    """
    if n < 0:
        raise ValueError(f"the number of models must be 0 or more; found {n}")
    if not 0 <= residual <= 1:
        raise ValueError(f"the residual probability must be from 0 to 1; found {residual}")
    if max_params < 1:
        raise ValueError(f"the parameter cap must be at least 1; found {max_params}")
    if min_layers < 1 or max_layers < min_layers:
        raise ValueError(f"layer bounds must satisfy 1 <= min <= max; found min {min_layers}, max {max_layers}")
    smallest = 2 if is_spatial(dataset.input_shape) else 1
    if max_layers < smallest:
        raise ValueError(f"max layers must be at least {smallest} for {dataset.name} (flatten and the head)")
    limits = _Limits(max_params, min_layers, max_layers, dataset.num_classes)
    rng = random.Random(seed)
    width = max(3, len(str(n - 1)))
    comments = Comments((f"sampled, seed {seed}",))
    seen: set[str] = set()
    out: list[ModelSpec] = []
    attempts = fruitless = 0
    while len(out) < n:
        if attempts >= ATTEMPTS_PER_MODEL * n or fruitless >= FRUITLESS_DRAWS:
            streak = f" (none new in the last {fruitless:,})" if fruitless >= FRUITLESS_DRAWS else ""
            raise ValueError(f"found only {len(out)} distinct models of {n} in {attempts:,} draws{streak} within "
                             f"{max_params:,} parameters and {min_layers}..{max_layers} layers; "
                             "raise the parameter cap or widen the layer bounds")
        attempts += 1
        fruitless += 1
        layers = _draw_network(rng, dataset, table, limits)
        if layers is None:
            continue
        model = ModelSpec(f"{name_prefix}{len(out):0{width}d}", layers, comments=comments)
        if residual > 0 and rng.random() < residual:
            model = _wrapped(rng, model, dataset, max_params)
        key = architecture_hash(model)
        if key in seen:
            continue
        info = analyze_model(model, dataset)
        if not info.valid:
            problems = "; ".join(d.message for d in info.diagnostics)
            raise RuntimeError(f"the sampler drew an invalid model ({problems}); the transition rules are broken")
        seen.add(key)
        out.append(model)
        fruitless = 0
    return out


def _wrapped(rng: random.Random, model: ModelSpec, dataset: DatasetInfo, max_params: int) -> ModelSpec:
    """`model` with one run of layers its shapes allow wrapped in a residual block (a projection's parameters
    within the cap), or `model` itself when no run qualifies."""
    info = analyze_model(model, dataset)
    runs = wrappable_runs(info)
    if not runs:
        return model
    start, stop, kind = rng.choice(runs)
    wrapped = ModelSpec(model.name, model.layers, comments=model.comments, blocks=(new_block(start, stop, kind),))
    if analyze_model(wrapped, dataset).param_count > max_params:
        return model
    return wrapped
