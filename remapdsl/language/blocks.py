"""Blocks: a line ending in a colon inside a model opens a run of indented layers.

One kind today, `residual`: the block's output is its body's output plus its input. When the body changes the
shape (filters, or the spatial size), the input reaches the addition through a projection that the block line
names, `shortcut=conv` (a 1x1 convolution whose stride matches the body's downsampling) or `shortcut=dense` (a
linear map, for flat tensors). The default, `shortcut=identity`, adds the input as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from remapdsl.language.catalog import ParamSpec, Shape, ShapeError, describe_shape, is_spatial, numel

SHORTCUTS = ("identity", "conv", "dense")
SHORTCUT = ParamSpec("shortcut", str, "identity", words=SHORTCUTS,
                     doc="how the input reaches the addition: as it is, a 1x1 convolution or a dense projection")
BLOCK_KINDS: dict[str, tuple[ParamSpec, ...]] = {"residual": (SHORTCUT,)}
BLOCK_DOCS = {"residual": "the output of the layers below is added to the input of the block"}


@dataclass(frozen=True)
class Shortcut:
    """How a block's input reaches its addition: `kind`, the projection's stride, its parameters and FLOPs."""

    kind: str
    stride: int = 1
    param_count: int = 0
    flops: int = 0


def shortcut_kind(written: Mapping[str, object]) -> str:
    value = written.get("shortcut", "identity")
    return value if isinstance(value, str) and value in SHORTCUTS else "identity"


def projection_stride(in_shape: Shape, out_shape: Shape) -> int | None:
    """The stride of the 1x1 convolution (no padding) that turns `in_shape`'s height and width into
    `out_shape`'s, or None when no stride does."""
    (_, h, w), (_, oh, ow) = in_shape, out_shape
    for s in range(1, max(h, w) + 1):
        if (h - 1) // s + 1 == oh and (w - 1) // s + 1 == ow:
            return s
    return None


def shortcut(kind: str, in_shape: Shape, out_shape: Shape) -> Shortcut:
    """The shortcut `kind` from `in_shape` to the body's `out_shape`; ShapeError (its message for the user)
    when it cannot join them."""
    shown = f"{describe_shape(in_shape)} in, {describe_shape(out_shape)} out"
    if is_spatial(in_shape) != is_spatial(out_shape):
        raise ShapeError(f"the block's body flattens its input ({shown}), so no shortcut can join them: move "
                         "flatten out of the block", code="residual-shape")
    if kind == "identity":
        if in_shape == out_shape:
            return Shortcut("identity")
        hint = "shortcut=conv" if is_spatial(in_shape) and is_spatial(out_shape) else "shortcut=dense"
        raise ShapeError(f"the block's body changes the shape ({shown}), so its input cannot be added to its "
                         f"output: project it with {hint}", code="residual-shape")
    if kind == "conv":
        if not is_spatial(in_shape):
            raise ShapeError(f"shortcut=conv needs images ({shown}); use shortcut=dense for flat tensors",
                             code="residual-shape")
        stride = projection_stride(in_shape, out_shape)
        if stride is None:
            raise ShapeError(f"no 1x1 convolution turns the block's input into its output ({shown}): the body "
                             "may only keep or shrink height and width", code="residual-shape")
        return Shortcut("conv", stride, out_shape[0] * (in_shape[0] + 1), 2 * in_shape[0] * numel(out_shape))
    if is_spatial(in_shape):
        raise ShapeError(f"shortcut=dense needs flat tensors ({shown}); use shortcut=conv for images",
                         code="residual-shape")
    return Shortcut("dense", 1, out_shape[0] * (in_shape[0] + 1), 2 * in_shape[0] * out_shape[0])
