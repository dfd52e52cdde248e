"""The torch module of each layer type, in a table keyed by the catalog's names, and our own modules where
torch's stock one is slow for the small models the catalog describes.

Only the training side imports this module, so the language core never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from remapdsl.language.catalog import Params, Shape, conv_padding, is_spatial
from remapdsl.language.model import as_float, as_int

# A layer's module, given the shape that enters it and its resolved parameters.
Builder = Callable[[Shape, Params], nn.Module]


class Dropout(nn.Dropout):
    """`nn.Dropout` whose mask, on the CPU, comes from `torch.rand` rather than `bernoulli_`.

    Torch's CPU dropout draws its Bernoulli numbers through a slow path: on the activations of the sampled
    models it took a quarter of all training time, about twice the cost of drawing uniform numbers and
    comparing. The mask has the same distribution (kept with probability 1 − p, scaled by 1 / (1 − p)) and
    comes from the same seeded generator, so runs stay reproducible and resumable. Evaluation, CUDA and
    export use the stock path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.is_cuda or self.p == 0.0 or self.inplace or not x.is_floating_point():
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        mask = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * mask


class Residual(nn.Module):
    """A residual block: its body's output plus its input, projected by the shortcut when one is given."""

    def __init__(self, body: nn.Sequential, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + skip


def _conv(shape: Shape, p: Params) -> nn.Module:
    k = as_int(p["kernel"])
    padding = conv_padding(k, p["padding"])
    return nn.Conv2d(shape[0], as_int(p["filters"]), k, stride=as_int(p["stride"]), padding=padding)


def _batchnorm(shape: Shape, p: Params) -> nn.Module:
    return nn.BatchNorm2d(shape[0]) if is_spatial(shape) else nn.BatchNorm1d(shape[0])


TORCH_BUILDERS: dict[str, Builder] = {
    "conv2d": _conv,
    "maxpool": lambda shape, p: nn.MaxPool2d(as_int(p["size"]), stride=as_int(p["stride"])),
    "avgpool": lambda shape, p: nn.AvgPool2d(as_int(p["size"]), stride=as_int(p["stride"])),
    "dense": lambda shape, p: nn.Linear(shape[0], as_int(p["units"])),
    "dropout": lambda shape, p: Dropout(as_float(p["rate"])),
    "relu": lambda shape, p: nn.ReLU(),
    "tanh": lambda shape, p: nn.Tanh(),
    "sigmoid": lambda shape, p: nn.Sigmoid(),
    "flatten": lambda shape, p: nn.Flatten(),
    "batchnorm": _batchnorm,
}


# A projection shortcut's module, given the block's input and output shapes and the stride the analysis found;
# keyed by the language's shortcut kinds (`remapdsl.language.blocks.SHORTCUTS`, the identity needing none).
ShortcutBuilder = Callable[[Shape, Shape, int], nn.Module]

SHORTCUT_BUILDERS: dict[str, ShortcutBuilder] = {
    "conv": lambda i, o, stride: nn.Conv2d(i[0], o[0], 1, stride=stride),
    "dense": lambda i, o, stride: nn.Linear(i[0], o[0]),
}
