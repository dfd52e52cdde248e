"""SNAC (Sequential Neural Architecture Chip) geometry shared by the SVG and text renderers.

A chip draws one block per layer, in order. Block height shows how many elements leave the layer, on a
log scale that is the same for every model, so two chips placed side by side compare directly: a block
for 1,024 elements is as tall in every chip, whatever else the model holds. (REMAP's chips scaled each
model to its own largest tensor, so heights could not be compared across models.)

The scale runs from 1 element (the lowest block) to `HEIGHT_CEILING_ELEMENTS`, an ImageNet-sized input
(3x224x224); anything larger is drawn at full height. A block whose shape is unknown (the model has an
error at or before that layer) is drawn at `NEUTRAL_FRACTION` of the range and marked as unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import LayerInfo, ModelInfo
from remapdsl.language.catalog import Shape, SnacStyle, describe_shape, numel
from remapdsl.language.model import Value

HEIGHT_FLOOR_ELEMENTS = 1
HEIGHT_CEILING_ELEMENTS = 3 * 224 * 224
# Where a block of unknown size sits on the height scale: mid-way, so it reads as "some size".
NEUTRAL_FRACTION = 0.5
# The longest repeated pattern of layers that is folded into one plate.
MAX_PLATE_PATTERN = 4

# A layer kind that the catalog does not know still gets a block.
UNKNOWN_STYLE = SnacStyle("#BBBBBB", "?")


def height_fraction(shape: Shape | None) -> float | None:
    """Where a tensor of `shape` sits on the global log scale, 0 (1 element) to 1 (the ceiling); None if unknown."""
    if shape is None:
        return None
    n = numel(shape)
    if n <= HEIGHT_FLOOR_ELEMENTS:
        return 0.0
    span = math.log2(HEIGHT_CEILING_ELEMENTS) - math.log2(HEIGHT_FLOOR_ELEMENTS)
    return min(1.0, (math.log2(n) - math.log2(HEIGHT_FLOOR_ELEMENTS)) / span)


def scaled_height(shape: Shape | None, low: float, high: float) -> float:
    """Block height between `low` (1 element) and `high` (the ceiling); unknown shapes sit at the neutral height."""
    fraction = height_fraction(shape)
    return low + (NEUTRAL_FRACTION if fraction is None else fraction) * (high - low)


@dataclass(frozen=True)
class SnacBlock:
    """One layer as a chip draws it."""

    index: int
    kind: str
    category: str | None
    style: SnacStyle
    params: Mapping[str, Value]
    defaults: Mapping[str, Value]
    positional: str | None
    output_shape: Shape | None
    param_count: int
    flops: int

    @property
    def known(self) -> bool:
        return self.output_shape is not None

    @property
    def key(self) -> tuple[object, ...]:
        """What makes two blocks the same layer: kind and resolved parameters."""
        return (self.kind, tuple(sorted(self.params.items(), key=lambda kv: kv[0])))

    def short_params(self) -> str:
        """The positional value and any parameter that differs from its default: `16 k5 s2`."""
        parts: list[str] = []
        if self.positional is not None and self.positional in self.params:
            parts.append(value_text(self.params[self.positional]))
        for name, value in self.params.items():
            if name == self.positional or self.defaults.get(name) == value:
                continue
            # an unnamed value (the positional one of a kind the catalog does not know) has no initial
            parts.append(value_text(value) if isinstance(value, str) or not name else f"{name[0]}{value_text(value)}")
        return " ".join(parts)

    def shape_text(self) -> str:
        return describe_shape(self.output_shape) if self.output_shape is not None else "?"

    def args_text(self) -> str:
        """The parameters as `name=value`, an unnamed value bare: `filters=16 kernel=3`, `16 depth=3`."""
        return " ".join(param_text(k, v) for k, v in self.params.items())

    def describe(self) -> str:
        """A one-line description for tooltips: `conv2d filters=16 kernel=3 → 16x8x8, 160 parameters`."""
        args = self.args_text()
        head = f"{self.index}: {self.kind}" + (f" {args}" if args else "")
        if not self.known:
            return f"{head} → shape unknown"
        return f"{head} → {self.shape_text()}, {self.param_count:,} parameters"


def param_text(name: str, value: Value) -> str:
    """`kernel=3`; a value without a name (the parser names an unknown kind's positional value '') bare: `16`."""
    return f"{name}={value_text(value)}" if name else value_text(value)


def value_text(value: Value) -> str:
    if isinstance(value, tuple):
        return ",".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def block_of(index: int, info: LayerInfo) -> SnacBlock:
    ltype = info.type
    if ltype is None:
        # the parser keeps an unknown kind's positional value under the name ''
        positional = "" if any(a.positional for a in info.layer.args) else None
        return SnacBlock(index, info.layer.kind, None, UNKNOWN_STYLE, info.layer.written(), {}, positional,
                         info.output_shape, info.param_count, info.flops)
    defaults = {p.name: p.default for p in ltype.params if p.default is not None}
    positional = ltype.positional.name if ltype.positional else None
    return SnacBlock(index, ltype.name, ltype.category, ltype.snac, info.params, defaults, positional,
                     info.output_shape, info.param_count, info.flops)


def blocks_of(model: ModelInfo) -> tuple[SnacBlock, ...]:
    """One block per layer of the model, in order."""
    return tuple(block_of(i, li) for i, li in enumerate(model.layers))


@dataclass(frozen=True)
class Run:
    """`pattern` repeated `repeat` times from layer `start`; a run with repeat 1 is a plain stretch of layers.

    `members` holds every layer the run covers, the copies one after the other: copies look alike (kind,
    parameters, output shape) but need not weigh alike, as the first copy's input may differ.
    """

    start: int
    pattern: tuple[SnacBlock, ...]
    repeat: int
    members: tuple[SnacBlock, ...]

    @property
    def length(self) -> int:
        return len(self.pattern) * self.repeat

    @property
    def is_plate(self) -> bool:
        return self.repeat > 1

    def copies_of(self, position: int) -> tuple[SnacBlock, ...]:
        """The layers at `position` of the pattern, one per copy."""
        return self.members[position:: len(self.pattern)]

    def param_count(self, position: int) -> int:
        """Parameters of the layers at `position` of the pattern, all copies together."""
        return sum(b.param_count for b in self.copies_of(position))


def _plate_key(block: SnacBlock) -> tuple[object, ...]:
    # Shapes take part: a plate draws its pattern once, which is only faithful when every copy looks alike.
    return (*block.key, block.output_shape)


def group_runs(blocks: Sequence[SnacBlock], max_pattern: int = MAX_PLATE_PATTERN) -> tuple[Run, ...]:
    """Fold consecutive repeats of the same layers into plates, greedily from the left.

    At each position the pattern (up to `max_pattern` layers) that covers the most layers wins, the shorter
    pattern on ties; layers that do not repeat become runs of one.
    """
    keys = [_plate_key(b) for b in blocks]
    runs: list[Run] = []
    i = 0
    while i < len(blocks):
        best_p, best_r = 1, 1
        for p in range(1, max_pattern + 1):
            if i + 2 * p > len(blocks):
                break
            r = 1
            while keys[i + r * p: i + (r + 1) * p] == keys[i: i + p]:
                r += 1
            if r > 1 and p * r > best_p * best_r:
                best_p, best_r = p, r
        runs.append(Run(i, tuple(blocks[i: i + best_p]), best_r, tuple(blocks[i: i + best_p * best_r])))
        i += best_p * best_r
    return tuple(runs)


def plain_runs(blocks: Sequence[SnacBlock]) -> tuple[Run, ...]:
    """Every block on its own: the chip without plates."""
    return tuple(Run(b.index, (b,), 1, (b,)) for b in blocks)


def si_number(n: float) -> str:
    """1234 → 1.2k, 2_500_000 → 2.5M: counts short enough for a chip header."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}"
    return f"{n:g}"


def model_summary(model: ModelInfo) -> str:
    """`1x8x8 → 10, 26,250 parameters, 1.23M FLOPs` (shapes unknown: `shapes unknown`)."""
    if model.input_shape is None or model.output_shape is None:
        return f"shapes unknown, {len(model.layers)} layers"
    return (f"{describe_shape(model.input_shape)} → {describe_shape(model.output_shape)}, "
            f"{model.param_count:,} parameters, {si_number(model.flops)} FLOPs")
