"""Residual models in torch: one `Residual` child per block, the language's parameter count and shapes, and
training that runs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from remapdsl.language.analysis import analyze_model
from remapdsl.language.blocks import SHORTCUTS
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import ModelSpec
from remapdsl.train import trainer
from remapdsl.train.data import load_dataset
from remapdsl.train.torch_layers import SHORTCUT_BUILDERS, Residual
from remapdsl.train.torch_model import ModelBuildError, build_model
from tests.samples import DIGITS, model
from tests.strategies import residual_models

NESTED = """\
model nested:
    conv2d 8
    relu
    residual shortcut=conv:
        conv2d 16 stride=2
        batchnorm
        residual:
            conv2d 16
            relu
        relu
    flatten
    residual shortcut=dense:
        dense 32
        relu
    dense 10
"""


def test_every_projection_shortcut_has_a_builder() -> None:
    assert set(SHORTCUT_BUILDERS) == set(SHORTCUTS) - {"identity"}


def test_a_block_is_one_child_holding_its_body_and_its_shortcut() -> None:
    m = model(NESTED)
    net = build_model(m, (1, 8, 8), 10)
    assert len(net) == 6
    outer, dense_block = net[2], net[4]
    assert isinstance(outer, Residual) and isinstance(outer.shortcut, torch.nn.Conv2d)
    assert outer.shortcut.stride == (2, 2) and outer.shortcut.kernel_size == (1, 1)
    assert isinstance(outer.body[2], Residual) and outer.body[2].shortcut is None
    assert isinstance(dense_block.shortcut, torch.nn.Linear)
    info = analyze_model(m, DIGITS)
    assert sum(p.numel() for p in net.parameters()) == info.param_count


def test_the_output_is_the_body_plus_the_input() -> None:
    m = model("model r:\n    residual:\n        conv2d 1 kernel=1\n    flatten\n    dense 10\n")
    net = build_model(m, (1, 8, 8), 10)
    block = net[0]
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), block.body(x) + x)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_models())
def test_sampled_residual_models_have_the_language_cores_parameter_count(m: ModelSpec) -> None:
    info = analyze_model(m, DIGITS)
    net = build_model(m, (1, 8, 8), 10)
    assert sum(p.numel() for p in net.parameters()) == info.param_count
    with torch.no_grad():
        assert net.eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_block_whose_shapes_do_not_join_is_refused() -> None:
    m = model("model r:\n    conv2d 8\n    residual:\n        conv2d 16\n    flatten\n    dense 10\n")
    with pytest.raises(ModelBuildError, match="shortcut=conv"):
        build_model(m, (1, 8, 8), 10)


@pytest.mark.slow
def test_a_residual_model_trains() -> None:
    data = load_dataset(None)
    result = trainer.train(model(NESTED), data, TrainSettings(epochs=1, batch=256), "cpu")
    assert result.status == "done"
    assert result.param_count == analyze_model(model(NESTED), data.info()).param_count
