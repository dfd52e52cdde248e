"""The in-memory form of a `.remap` document: plain, immutable dataclasses.

Source ranges ride along for diagnostics and editor features but never take part in equality, so a
document parsed from its own canonical printout compares equal to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# A value written in the language: a number, a bare word (`same`, `adam`), a string, or a
# comma-separated list of those.
Scalar = int | float | str
Value = Scalar | tuple[Scalar, ...]


def as_int(value: Value | None) -> int:
    """A value the analysis has checked to be one number, as an int."""
    if value is None or isinstance(value, tuple):
        raise TypeError(f"expected one number, got {value!r}")
    return int(value)


def as_float(value: Value | None) -> float:
    """A value the analysis has checked to be one number, as a float."""
    if value is None or isinstance(value, tuple):
        raise TypeError(f"expected one number, got {value!r}")
    return float(value)


# Positions and ranges are tuples rather than dataclasses: a large file has tens of thousands of them, and a
# tuple is several times cheaper to build; they compare (and order) as tuples.
class Position(NamedTuple):
    """Zero-based line and character, as in the Language Server Protocol."""

    line: int
    character: int


class Range(tuple[int, int, int, int]):
    """From `start` up to `end`, stored as four ints (start line, character, end line, character).

    One flat tuple rather than a pair of Positions: a parsed file holds one per statement, argument and name,
    and every object the cycle collector tracks costs time whenever it runs. Ranges order as (start, end).
    """

    __slots__ = ()

    def __new__(cls, start: Position | tuple[int, int], end: Position | tuple[int, int]) -> Range:
        return tuple.__new__(cls, (start[0], start[1], end[0], end[1]))

    @staticmethod
    def of(line: int, start: int, end: int) -> Range:
        return tuple.__new__(Range, (line, start, line, end))

    @property
    def start(self) -> Position:
        return Position(self[0], self[1])

    @property
    def end(self) -> Position:
        return Position(self[2], self[3])

    def __getnewargs__(self) -> tuple[Position, Position]:
        return self.start, self.end

    def __repr__(self) -> str:
        return f"Range({self.start!r}, {self.end!r})"

    def __str__(self) -> str:
        return f"{self[0] + 1}:{self[1] + 1}"

    def contains(self, position: Position) -> bool:
        return self.start <= position <= self.end


NO_RANGE = Range(Position(0, 0), Position(0, 0))


def _range() -> Range:
    return field(default=NO_RANGE, compare=False, repr=False)


@dataclass(frozen=True)
class Comments:
    """Comments attached to a statement: full lines above it and the one at the end of its line.

    Texts are stored without the leading `#` and the one space after it.
    """

    leading: tuple[str, ...] = ()
    trailing: str | None = None


NO_COMMENTS = Comments()


@dataclass(frozen=True)
class Arg:
    """One `name=value` of a layer or header line; a layer's positional value gets its parameter's name."""

    name: str
    value: Value
    positional: bool = False
    range: Range = _range()  # noqa: RUF009
    value_range: Range = _range()  # noqa: RUF009


@dataclass(frozen=True)
class Annotation:
    """A per-layer constraint on variations: `@keep`, `@allow(remove, replace)`, `@deny(prepend)`."""

    name: str
    args: tuple[str, ...] = ()
    range: Range = _range()  # noqa: RUF009


@dataclass(frozen=True)
class Layer:
    kind: str
    args: tuple[Arg, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    kind_range: Range = _range()  # noqa: RUF009

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def written(self) -> dict[str, Value]:
        """The parameters as written, without defaults."""
        return {a.name: a.value for a in self.args}


@dataclass(frozen=True)
class Block:
    """A block line (`residual shortcut=conv:`) and the run of the model's layers indented below it.

    The block holds the model's layers `start` up to `stop` (exclusive): the layers stay one flat sequence, so
    that a layer keeps its index whatever blocks wrap it, and a block is a span over them. A model's blocks are
    listed in the order their lines appear (an outer block before the blocks inside it); spans nest or are
    disjoint. A residual block's output is its body's output plus its input (through the shortcut).
    """

    kind: str
    start: int
    stop: int
    args: tuple[Arg, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    kind_range: Range = _range()  # noqa: RUF009

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def written(self) -> dict[str, Value]:
        return {a.name: a.value for a in self.args}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: tuple[Layer, ...]
    parent: str | None = None
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    name_range: Range = _range()  # noqa: RUF009
    parent_range: Range | None = field(default=None, compare=False, repr=False)
    # Indented comment lines after the last layer (or after the model line of a model without layers): they
    # close the block, so they stay with it rather than opening the next model.
    final_comments: tuple[str, ...] = ()
    # Residual blocks over spans of `layers`, outer before inner; empty for a sequential model.
    blocks: tuple[Block, ...] = ()
    # `model m from space s:`: the parent is a space (a path through it), not a model.
    parent_space: bool = False

    def depth(self, index: int) -> int:
        """How many blocks hold layer `index`."""
        return sum(1 for b in self.blocks if b.start <= index < b.stop)


SKIP = "skip"  # the alternative of a choice that leaves the position out (identity)


@dataclass(frozen=True)
class Choice:
    """One position of a space that holds alternatives: a `choice:` line and the layer lines indented below it
    (`skip` among them leaves the position out), or, when `shorthand`, one layer line with alternative values
    (`conv2d 16|32 kernel=3|5`), whose `options` are every combination, the first value varying slowest."""

    options: tuple[Layer, ...]
    shorthand: bool = False
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    kind_range: Range = _range()  # noqa: RUF009


SpacePosition = Layer | Choice


@dataclass(frozen=True)
class SpaceSpec:
    """`space NAME:` and its positions, in order: a path through the space takes one option at each choice."""

    name: str
    positions: tuple[SpacePosition, ...]
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    name_range: Range = _range()  # noqa: RUF009
    final_comments: tuple[str, ...] = ()

    def options(self, index: int) -> tuple[Layer, ...]:
        """The options at position `index`: its alternatives, or its one layer."""
        position = self.positions[index]
        return position.options if isinstance(position, Choice) else (position,)


@dataclass(frozen=True)
class DataSpec:
    """`data NAME ["PATH"] [key=value ...]`."""

    name: str
    path: str | None = None
    args: tuple[Arg, ...] = ()
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009
    name_range: Range = _range()  # noqa: RUF009

    def option(self, name: str, default: Value | None = None) -> Value | None:
        for a in self.args:
            if a.name == name:
                return a.value
        return default


@dataclass(frozen=True)
class TrainSpec:
    """`train key=value ...`."""

    args: tuple[Arg, ...] = ()
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009

    def option(self, name: str, default: Value | None = None) -> Value | None:
        for a in self.args:
            if a.name == name:
                return a.value
        return default


@dataclass(frozen=True)
class Budget:
    """`budget METRIC <= LIMIT`: limit in the metric's base unit (parameters, milliseconds, bytes).

    `unit` keeps the unit the user wrote so that the printer gives it back.
    """

    metric: str
    limit: float
    unit: str = ""
    strict: bool = False
    comments: Comments = NO_COMMENTS
    range: Range = _range()  # noqa: RUF009

    def allows(self, measured: float) -> bool:
        return measured < self.limit if self.strict else measured <= self.limit


@dataclass(frozen=True)
class Document:
    models: tuple[ModelSpec, ...] = ()
    data: DataSpec | None = None
    train: TrainSpec | None = None
    budgets: tuple[Budget, ...] = ()
    # Comments after the last statement of the file.
    final_comments: tuple[str, ...] = ()
    spaces: tuple[SpaceSpec, ...] = ()

    def space(self, name: str) -> SpaceSpec | None:
        for s in self.spaces:
            if s.name == name:
                return s
        return None

    def model(self, name: str) -> ModelSpec | None:
        for m in self.models:
            if m.name == name:
                return m
        return None

    def budget(self, metric: str) -> Budget | None:
        for b in self.budgets:
            if b.metric == metric:
                return b
        return None
