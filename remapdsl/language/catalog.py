"""The layer catalog: what each layer type is, one entry per type.

An entry holds the layer's DSL name, its parameters (ranges, defaults, sampler grids), its shape rule,
parameter and FLOP counts, its SNAC style and its OTMANN label and mass. Adding a layer type means adding
one entry here, and its torch module to `remapdsl.train.torch_layers.TORCH_BUILDERS`, keyed by the same name:
the catalog says what a layer is, the backend how to run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal

from remapdsl.language.model import Value, as_int

# (channels, height, width) for images, (features,) once flattened.
Shape = tuple[int, ...]
Params = Mapping[str, Value]


class ShapeError(ValueError):
    """A layer cannot take the tensor that reaches it; the message is for the user.

    `fix`, when the remedy is obvious, names a parameter and the value that makes the layer fit.
    """

    def __init__(self, message: str, code: str = "shape", fix: tuple[str, Value] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.fix = fix


def is_spatial(shape: Shape) -> bool:
    return len(shape) == 3


def describe_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a layer type.

    Numbers are checked against `low`..`high` (open at an end when `open_low`/`open_high`); words
    against `words`. `grid` holds the values the sampler and reparameterization draw from.
    """

    name: str
    type: type = int
    default: Value | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    words: tuple[str, ...] = ()
    grid: tuple[Value, ...] = ()
    positional: bool = False
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def describe_allowed(self) -> str:
        parts = []
        if self.low is not None and self.high is not None:
            lo = "(" if self.open_low else "["
            hi = ")" if self.open_high else "]"
            kind = "an integer" if self.type is int else "a number"
            parts.append(f"{kind} in {lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}")
        if self.words:
            parts.append(" or ".join(f"'{w}'" for w in self.words))
        return " or ".join(parts)

    def check(self, value: Value) -> str | None:
        """None if `value` is allowed, else a message saying what is."""
        if isinstance(value, str):
            if value in self.words:
                return None
            return f"{self.name} must be {self.describe_allowed()}; found '{show_value(value)}'"
        if isinstance(value, tuple) or (self.low is None and self.high is None):
            return f"{self.name} must be {self.describe_allowed()}; found {show_value(value)}"
        if self.type is int and not (isinstance(value, int) or float(value).is_integer()):
            return f"{self.name} must be a whole number; found {show_value(value)}"
        # ints compare with the float bounds exactly, however many digits they have (float() would overflow)
        v = value if isinstance(value, int) else float(value)
        too_low = self.low is not None and (v <= self.low if self.open_low else v < self.low)
        too_high = self.high is not None and (v >= self.high if self.open_high else v > self.high)
        if too_low or too_high:
            return f"{self.name} must be {self.describe_allowed()}; found {show_value(value)}"
        return None


# Beyond this many digits a whole number is shown in scientific notation (1e+308, not 309 digits), and a
# written value beyond this many characters is cut short: a message quotes it, it need not repeat it.
_SHOWN_DIGITS = 15
_SHOWN_CHARS = 40


def _fmt(x: float) -> str:
    """A number as a message shows it: `16`, `0.5`, `1e+308`."""
    if isinstance(x, int) or float(x).is_integer():
        n = int(x)
        if abs(n) < 10**_SHOWN_DIGITS:
            return str(n)
        # Decimal rounds exactly however large the int (float() would overflow past 1.8e308)
        return f"{Decimal(n).normalize(Context(prec=6)):g}"
    return str(x)


def show_value(value: Value) -> str:
    """A written value as messages quote it: numbers short, long words and lists cut at 40 characters."""
    if isinstance(value, tuple):
        text = ",".join(show_value(v) for v in value)
    elif isinstance(value, str):
        text = value
    else:
        text = _fmt(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


@dataclass(frozen=True)
class SnacStyle:
    """How a layer type looks in a SNAC chip: colour and symbol encode the type twice."""

    colour: str
    symbol: str
    glyph: str | None = None  # activation function curve: "relu", "tanh", "sigmoid"
    dotted: bool = False  # dropout draws a dotted border


@dataclass(frozen=True)
class OtmannSpec:
    """The layer's part in the OTMANN distance (REMAP's profile).

    `label` names the node's label, or None when the layer is not a node (flatten). `mass` says how its
    mass follows from the channels entering it: "product" (in x out), "channels" (in), "square" (in^2).
    A label's path-length group follows from its name by NASBOT's rule (`otmann.path_group`).
    """

    label: Callable[[Params], str] | None
    mass: str = "square"
    # label-mismatch costs (REMAP's table) between this type's labels and the labels they may be matched
    # with, as (label, label, cost); any other pair of different labels cannot be matched
    mismatch: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class LayerType:
    name: str
    category: str  # conv | pool | dense | dropout | activation | reshape | norm
    params: tuple[ParamSpec, ...]
    doc: str
    output_shape: Callable[[Shape, Params], Shape]
    param_count: Callable[[Shape, Params], int]
    flops: Callable[[Shape, Shape, Params], int]
    snac: SnacStyle
    otmann: OtmannSpec
    # Which Markov-chain state the sampler enters after this layer; None: the sampler never draws it.
    sampler_state: str | None = None
    needs_spatial: bool = False
    needs_flat: bool = False
    out_channels: Callable[[int, Params], int] = field(default=lambda c, p: c)
    # Resolved parameters in one spelling per meaning, for the architecture hash (conv2d: padding=1 with
    # kernel 3 is padding=same).
    canonical: Callable[[Params], dict[str, Value]] = field(default=lambda p: dict(p))

    @property
    def positional(self) -> ParamSpec | None:
        for p in self.params:
            if p.positional:
                return p
        return None

    def param(self, name: str) -> ParamSpec | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def resolve(self, written: Params) -> dict[str, Value]:
        """Written parameters with defaults filled in, in catalog order."""
        out: dict[str, Value] = {}
        for p in self.params:
            if p.name in written:
                v = written[p.name]
                out[p.name] = int(v) if p.type is int and isinstance(v, float) and v.is_integer() else v
            elif p.default is not None:
                out[p.name] = p.default
        return out


# --- shape rules -------------------------------------------------------------------------------


def conv_padding(kernel: int, padding: Value | None) -> int:
    """The pixels a conv2d pads on each side: `same` centres an odd kernel, `valid` pads nothing."""
    if padding == "same":
        return kernel // 2
    if padding == "valid":
        return 0
    return as_int(padding)


def _conv_canonical(p: Params) -> dict[str, Value]:
    """Padding by what it does: pixels equal to what `same` (odd kernels) or `valid` pads are spelt that way, so
    `padding=1` with kernel 3 is `padding=same` and `padding=0` is `padding=valid`. The words are the
    representatives (not the pixels) so that the default spelling, which most models have, keeps its meaning
    and its hash. A padding that is not valid stays as written."""
    kernel, padding = p.get("kernel"), p.get("padding")
    pads = padding in ("same", "valid") or (isinstance(padding, int) and not isinstance(padding, bool))
    if not isinstance(kernel, int) or not pads or (padding == "same" and kernel % 2 == 0):
        return dict(p)
    pixels = conv_padding(kernel, padding)
    spelt: Value = "same" if kernel % 2 == 1 and pixels == kernel // 2 else "valid" if pixels == 0 else pixels
    return {**p, "padding": spelt}


def _window_out(size: int, window: int, stride: int, pad: int, what: str) -> int:
    out = (size + 2 * pad - window) // stride + 1
    if size + 2 * pad < window or out < 1:
        raise ShapeError(f"{what} {window} does not fit the {size}x{size} input", code="collapse")
    return out


def nearest_odd_kernel(kernel: int) -> int:
    """The odd kernel next to an even one, which padding=same can centre: a sampler grid size first, else the
    larger."""
    candidates = [k for k in (kernel + 1, kernel - 1) if 1 <= k <= CONV_KERNEL_MAX]
    return min(candidates, key=lambda k: k not in CONV_KERNEL_GRID)


def _conv_shape(shape: Shape, p: Params) -> Shape:
    _, h, w = shape
    k, s = as_int(p["kernel"]), as_int(p["stride"])
    if p["padding"] == "same" and k % 2 == 0:
        raise ShapeError("padding=same needs an odd kernel; use padding=valid or an odd kernel", code="value",
                         fix=("kernel", nearest_odd_kernel(k)))
    pad = conv_padding(k, p["padding"])
    return (as_int(p["filters"]), _window_out(h, k, s, pad, "kernel"), _window_out(w, k, s, pad, "kernel"))


def _pool_shape(shape: Shape, p: Params) -> Shape:
    c, h, w = shape
    k, s = as_int(p["size"]), as_int(p["stride"])
    return (c, _window_out(h, k, s, 0, "pool size"), _window_out(w, k, s, 0, "pool size"))


def _same(shape: Shape, p: Params) -> Shape:
    return shape


def _flatten_shape(shape: Shape, p: Params) -> Shape:
    return (numel(shape),)


def _dense_shape(shape: Shape, p: Params) -> Shape:
    return (as_int(p["units"]),)


# --- parameter and FLOP counts -------------------------------------------------------------------


def _no_params(shape: Shape, p: Params) -> int:
    return 0


def _conv_params(shape: Shape, p: Params) -> int:
    k = as_int(p["kernel"])
    return as_int(p["filters"]) * (shape[0] * k * k + 1)


def _dense_params(shape: Shape, p: Params) -> int:
    return as_int(p["units"]) * (shape[0] + 1)


def _norm_params(shape: Shape, p: Params) -> int:
    # weight and bias per channel; running statistics are buffers, not parameters
    return 2 * shape[0]


def _conv_flops(i: Shape, o: Shape, p: Params) -> int:
    k = as_int(p["kernel"])
    return 2 * i[0] * k * k * numel(o)


def _pool_flops(i: Shape, o: Shape, p: Params) -> int:
    return as_int(p["size"]) ** 2 * numel(o)


def _dense_flops(i: Shape, o: Shape, p: Params) -> int:
    return 2 * i[0] * o[0]


def _elementwise_flops(i: Shape, o: Shape, p: Params) -> int:
    return numel(o)


def _free_flops(i: Shape, o: Shape, p: Params) -> int:
    return 0


# --- the entries ---------------------------------------------------------------------------------

# Okabe–Ito, a palette that stays distinct under the common colour-vision deficiencies.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999",
)

POOL_GRID = (2, 3, 5)
CONV_KERNEL_GRID = (1, 3, 5)
CONV_KERNEL_MAX = 15


def _pool_params() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("size", int, None, 1, 32, grid=POOL_GRID, positional=True, doc="window size"),
        ParamSpec("stride", int, 2, 1, 32, grid=(2,), doc="step between windows"),
    )


def _size_mismatch(prefix: str, small: int, middle: int, large: int) -> tuple[tuple[str, str, float], ...]:
    """REMAP's costs between kernel (or pool) sizes: 0.2 for neighbouring sizes, 0.3 from smallest to largest."""
    s, m, lg = (f"{prefix}{n}" for n in (small, middle, large))
    return ((s, m, 0.2), (m, lg, 0.2), (s, lg, 0.3))


def _constant_label(name: str) -> Callable[[Params], str]:
    def label(p: Params) -> str:
        return name
    return label


def _activation(name: str, symbol: str, mismatch: tuple[tuple[str, str, float], ...]) -> LayerType:
    return LayerType(
        name=name,
        category="activation",
        params=(),
        doc=f"{name} activation, element-wise",
        output_shape=_same,
        param_count=_no_params,
        flops=_elementwise_flops,
        snac=SnacStyle(ORANGE, symbol, glyph=name),
        otmann=OtmannSpec(_constant_label(name), "square", mismatch),
        sampler_state="activation",
    )


LAYER_TYPES: dict[str, LayerType] = {
    t.name: t
    for t in (
        LayerType(
            name="conv2d",
            category="conv",
            params=(
                ParamSpec("filters", int, None, 1, 4096, grid=(16, 32, 64, 128), positional=True,
                          doc="number of output channels"),
                ParamSpec("kernel", int, 3, 1, CONV_KERNEL_MAX, grid=CONV_KERNEL_GRID, doc="kernel height and width"),
                ParamSpec("stride", int, 1, 1, 8, doc="step of the kernel"),
                ParamSpec("padding", int, "same", 0, 7, words=("same", "valid"),
                          doc="'same' keeps the size (odd kernels), 'valid' pads nothing, or a number of pixels"),
            ),
            doc="2-D convolution with bias",
            output_shape=_conv_shape,
            param_count=_conv_params,
            flops=_conv_flops,
            snac=SnacStyle(BLUE, "C"),
            otmann=OtmannSpec(lambda p: f"conv{p['kernel']}", "product", _size_mismatch("conv", 1, 3, 5)),
            sampler_state="conv",
            needs_spatial=True,
            out_channels=lambda c, p: as_int(p["filters"]),
            canonical=_conv_canonical,
        ),
        LayerType(
            name="maxpool",
            category="pool",
            params=_pool_params(),
            doc="max pooling",
            output_shape=_pool_shape,
            param_count=_no_params,
            flops=_pool_flops,
            snac=SnacStyle(GREEN, "M"),
            otmann=OtmannSpec(lambda p: f"pool{p['size']}", "channels", _size_mismatch("pool", 2, 3, 5)),
            sampler_state="pool",
            needs_spatial=True,
        ),
        LayerType(
            name="avgpool",
            category="pool",
            params=_pool_params(),
            doc="average pooling",
            output_shape=_pool_shape,
            param_count=_no_params,
            flops=_pool_flops,
            snac=SnacStyle(SKY, "A"),
            otmann=OtmannSpec(lambda p: f"pool{p['size']}", "channels", _size_mismatch("pool", 2, 3, 5)),
            sampler_state="pool",
            needs_spatial=True,
        ),
        LayerType(
            name="dense",
            category="dense",
            params=(
                ParamSpec("units", int, None, 1, 65536, grid=(16, 64, 128, 256), positional=True,
                          doc="number of output units"),
            ),
            doc="fully connected layer with bias",
            output_shape=_dense_shape,
            param_count=_dense_params,
            flops=_dense_flops,
            snac=SnacStyle(VERMILLION, "D"),
            otmann=OtmannSpec(lambda p: "dense", "product"),
            sampler_state="dense",
            needs_flat=True,
            out_channels=lambda c, p: as_int(p["units"]),
        ),
        LayerType(
            name="dropout",
            category="dropout",
            params=(
                ParamSpec("rate", float, None, 0, 1, open_low=True, open_high=True,
                          grid=tuple(i / 8 for i in range(1, 8)), positional=True,
                          doc="probability of zeroing an element during training"),
            ),
            doc="dropout (active in training only)",
            output_shape=_same,
            param_count=_no_params,
            flops=_free_flops,
            snac=SnacStyle(PURPLE, "O", dotted=True),
            otmann=OtmannSpec(lambda p: "dropout", "square"),
            sampler_state="dropout",
        ),
        _activation("relu", "R", (("relu", "tanh", 0.25), ("relu", "sigmoid", 0.25))),
        _activation("tanh", "T", (("tanh", "relu", 0.25), ("tanh", "sigmoid", 0.1))),
        _activation("sigmoid", "S", (("sigmoid", "relu", 0.25), ("sigmoid", "tanh", 0.1))),
        LayerType(
            name="flatten",
            category="reshape",
            params=(),
            doc="flattens channels x height x width into one vector",
            output_shape=_flatten_shape,
            param_count=_no_params,
            flops=_free_flops,
            snac=SnacStyle(GREY, "F"),
            otmann=OtmannSpec(None),
            needs_spatial=True,
        ),
        LayerType(
            name="batchnorm",
            category="norm",
            params=(),
            doc="batch normalization over channels (or features once flattened)",
            output_shape=_same,
            param_count=_norm_params,
            flops=_elementwise_flops,
            snac=SnacStyle(YELLOW, "B"),
            otmann=OtmannSpec(lambda p: "batchnorm", "square"),
        ),
    )
}

def _mismatch_table(types: Iterable[LayerType]) -> dict[frozenset[str], float]:
    """Every entry's mismatch costs in one table; two entries that give one pair must agree."""
    table: dict[frozenset[str], float] = {}
    for ltype in types:
        for a, b, cost in ltype.otmann.mismatch:
            pair = frozenset((a, b))
            if table.setdefault(pair, cost) != cost:
                raise ValueError(f"OTMANN mismatch cost of {a}-{b} given twice: {table[pair]} and {cost}")
    return table


# OTMANN label-mismatch costs between labels that may be matched, gathered from the entries; any pair not
# here, and not equal, cannot be matched.
OTMANN_MISMATCH: dict[frozenset[str], float] = _mismatch_table(LAYER_TYPES.values())
