"""Torch modules of our own, where torch's stock one is slow for the small models the catalog builds.

Imported by the catalog's torch factories only, so the language core never imports torch.
"""

from __future__ import annotations

import torch
from torch import nn


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
