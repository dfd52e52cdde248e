"""Residual models through ONNX: export, parity with torch, latency, and the language's parameter count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from remapdsl.language.analysis import analyze_model
from remapdsl.language.model import ModelSpec
from remapdsl.onnx.bench import PARITY_TOLERANCE, measure_model, onnx_param_count
from remapdsl.onnx.export import build_torch_model, export_model
from tests.samples import DIGITS, model
from tests.strategies import residual_models

pytestmark = pytest.mark.slow

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


def trained_like(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {k: (v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
            for k, v in module.state_dict().items()}


def test_a_nested_residual_model_exports_with_parity_latency_and_the_languages_count() -> None:
    spec = model(NESTED)
    expected = analyze_model(spec, DIGITS).param_count
    state = trained_like(build_torch_model(spec, DIGITS.input_shape))
    inputs = np.random.default_rng(3).standard_normal((32, *DIGITS.input_shape), dtype=np.float32)
    report, _ = measure_model(spec, DIGITS.input_shape, expected, state_dict=state, inputs=inputs, runs=5, warmup=1)
    assert report.param_count == report.expected_params == expected
    assert report.max_abs_diff <= PARITY_TOLERANCE
    assert report.ok and not report.problems()
    assert report.latency and all(lat.p50_ms > 0 for lat in report.latency)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(residual_models())
def test_sampled_residual_models_count_the_same_in_the_onnx_file(spec: ModelSpec) -> None:
    artifact, _ = export_model(spec, DIGITS.input_shape)
    assert onnx_param_count(artifact.proto()) == analyze_model(spec, DIGITS).param_count
