"""The torch builders: one per catalog entry, each giving the shape the catalog infers; and our dropout: torch's
distribution and seeding, faster on the CPU, the stock path everywhere else."""

from __future__ import annotations

import pytest
import torch

from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.train.torch_layers import TORCH_BUILDERS, Dropout


def test_every_catalog_entry_has_a_builder_and_every_builder_an_entry() -> None:
    assert set(TORCH_BUILDERS) == set(LAYER_TYPES)


@pytest.mark.parametrize("kind", sorted(LAYER_TYPES))
def test_each_builder_gives_the_output_shape_the_catalog_infers(kind: str) -> None:
    ltype = LAYER_TYPES[kind]
    # the first grid value of each required parameter, on an image, or on features for the flat-only layers
    params = ltype.resolve({p.name: p.grid[0] for p in ltype.params if p.required})
    shape = (4,) if ltype.needs_flat else (3, 12, 12)
    module = TORCH_BUILDERS[kind](shape, params)
    assert isinstance(module, torch.nn.Module)
    with torch.no_grad():
        out = module.eval()(torch.zeros(2, *shape))
    assert tuple(out.shape[1:]) == ltype.output_shape(shape, params)


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
