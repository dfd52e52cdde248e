"""Our dropout: torch's distribution and seeding, faster on the CPU, the stock path everywhere else."""

from __future__ import annotations

import pytest
import torch

from remapdsl.train.torch_layers import Dropout


def test_it_keeps_one_minus_p_of_the_values_and_scales_them_to_keep_the_mean() -> None:
    torch.manual_seed(0)
    out = Dropout(0.25).train()(torch.ones(1000, 1000))
    values = torch.unique(out).tolist()
    assert values[0] == 0.0 and values[1] == pytest.approx(4 / 3) and len(values) == 2
    assert (out > 0).float().mean().item() == pytest.approx(0.75, abs=0.002)
    assert out.mean().item() == pytest.approx(1.0, abs=0.003)


def test_the_same_seed_gives_the_same_mask_and_gradients_flow_through_the_kept_values() -> None:
    x = torch.randn(64, 16, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    masks = []
    for _ in range(2):
        torch.manual_seed(7)
        out = Dropout(0.5).train()(x)
        masks.append(out != 0)
    assert torch.equal(masks[0], masks[1])
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.sum().backward()
    assert torch.equal(x.grad, masks[1].float() * 2.0)


def test_evaluation_and_the_edge_rates_are_exact() -> None:
    x = torch.randn(8, 10)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.count_nonzero(Dropout(1.0).train()(x)) == 0
