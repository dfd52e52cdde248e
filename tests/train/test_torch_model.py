"""The torch module of a model agrees with the language core: same parameter count, same shapes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remapdsl.language.analysis import analyze_model
from remapdsl.language.catalog import LAYER_TYPES, ShapeError
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Arg, Layer, ModelSpec
from remapdsl.search.sampler import sample_models
from remapdsl.train import trainer
from remapdsl.train.data import load_dataset
from remapdsl.train.torch_model import ModelBuildError, build_model, build_module, check_buildable

INPUTS = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 9, 13)]
SPATIAL = ("conv2d", "maxpool", "avgpool", "dropout", "relu", "tanh", "sigmoid", "batchnorm")
FLAT = ("dense", "dropout", "relu", "tanh", "sigmoid", "batchnorm")


def layer_from_grid(draw: st.DrawFn, kind: str) -> Layer:
    args = []
    for p in LAYER_TYPES[kind].params:
        if p.positional:
            args.append(Arg(p.name, draw(st.sampled_from(p.grid)), True))
        elif p.name == "padding":
            args.append(Arg(p.name, draw(st.sampled_from(("same", "valid", 0, 1, 2)))))
        elif p.grid and draw(st.booleans()):
            args.append(Arg(p.name, draw(st.sampled_from(p.grid))))
    return Layer(kind, tuple(args))


@st.composite
def buildable(draw: st.DrawFn) -> tuple[ModelSpec, tuple[int, int, int], int]:
    """A model that fits its input: spatial layers while they fit, flatten, flat layers, the head."""
    shape: tuple[int, ...] = draw(st.sampled_from(INPUTS))
    input_shape = shape
    classes = draw(st.integers(2, 12))
    layers: list[Layer] = []
    for _ in range(draw(st.integers(0, 6))):
        layer = layer_from_grid(draw, draw(st.sampled_from(SPATIAL)))
        ltype = LAYER_TYPES[layer.kind]
        try:
            shape = ltype.output_shape(shape, ltype.resolve(layer.written()))
        except ShapeError:
            continue
        layers.append(layer)
    layers.append(Layer("flatten"))
    for _ in range(draw(st.integers(0, 4))):
        layers.append(layer_from_grid(draw, draw(st.sampled_from(FLAT))))
    layers.append(Layer("dense", (Arg("units", classes, True),)))
    return ModelSpec("m", tuple(layers)), input_shape, classes  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(buildable())
def test_parameter_count_and_every_shape_match_the_language_core(case: tuple[ModelSpec, tuple, int]) -> None:
    model, input_shape, classes = case
    info = analyze_model(model, DatasetInfo("x", input_shape, classes, ()))
    assert info.valid, [d.message for d in info.diagnostics]
    net = build_model(model, input_shape, classes)
    assert sum(p.numel() for p in net.parameters()) == info.param_count
    assert len(net) == len(model.layers)
    seen: list[tuple[int, ...]] = []
    for module in net:
        module.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(2, *input_shape))
    assert out.shape == (2, classes)
    assert seen == [li.output_shape for li in info.layers]


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(INPUTS[:3]))
def test_every_sampled_model_has_the_language_cores_parameter_count(seed: int, input_shape: tuple) -> None:
    info = DatasetInfo("x", input_shape, 10, tuple(str(i) for i in range(10)))
    for model in sample_models(12, info, seed):
        net = build_model(model, input_shape, 10)
        assert sum(p.numel() for p in net.parameters()) == analyze_model(model, info).param_count, model.name
        with torch.no_grad():
            assert net.eval()(torch.zeros(1, *input_shape)).shape == (1, 10)


def test_batchnorm_follows_the_tensor_it_receives() -> None:
    model = ModelSpec("m", (Layer("batchnorm"), Layer("flatten"), Layer("batchnorm"), Layer("dense", (
        Arg("units", 3, True),))))
    net = build_model(model, (2, 4, 4))
    assert isinstance(net[0], torch.nn.BatchNorm2d) and net[0].num_features == 2
    assert isinstance(net[2], torch.nn.BatchNorm1d) and net[2].num_features == 32


def test_a_model_that_does_not_fit_is_refused_with_its_problems() -> None:
    too_big = ModelSpec("big_pool", (Layer("maxpool", (Arg("size", 5, True),)), Layer("maxpool", (
        Arg("size", 5, True),)), Layer("flatten"), Layer("dense", (Arg("units", 10, True),))))
    with pytest.raises(ModelBuildError, match=r"model 'big_pool' cannot be built for a 1x8x8 input: .*does not fit"):
        build_model(too_big, (1, 8, 8))
    unflattened = ModelSpec("m", (Layer("conv2d", (Arg("filters", 4, True),)), Layer("dense", (Arg("units", 10,
                                                                                                  True),))))
    with pytest.raises(ModelBuildError, match="insert flatten"):
        build_model(unflattened, (1, 8, 8))
    with pytest.raises(ModelBuildError, match="has no layers"):
        build_model(ModelSpec("empty", ()), (1, 8, 8))


def test_the_head_is_checked_only_when_the_classes_are_known() -> None:
    model = ModelSpec("m", (Layer("flatten"), Layer("dense", (Arg("units", 7, True),))))
    assert sum(p.numel() for p in build_model(model, (1, 8, 8)).parameters()) == 64 * 7 + 7
    with pytest.raises(ModelBuildError, match="head must have 10 units"):
        build_model(model, (1, 8, 8), num_classes=10)


def test_fresh_weights_come_from_torch_random_state() -> None:
    model = ModelSpec("m", (Layer("flatten"), Layer("dense", (Arg("units", 3, True),))))
    torch.manual_seed(5)
    a = build_model(model, (1, 4, 4)).state_dict()
    torch.manual_seed(5)
    b = build_model(model, (1, 4, 4)).state_dict()
    assert a.keys() == b.keys() == {"1.weight", "1.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_analysis_in_hand_is_built_and_trained_without_analysing_again(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset(None)
    model = ModelSpec("m", (Layer("flatten"), Layer("dense", (Arg("units", 10, True),))))
    info = analyze_model(model, data.info())
    check_buildable(info, data.num_classes)
    assert sum(p.numel() for p in build_module(info).parameters()) == info.param_count

    def analysed_again(*args: object) -> None:
        raise AssertionError("the model was analysed again")

    monkeypatch.setattr(trainer, "analyze_model", analysed_again)
    result = trainer.train(model, data, TrainSettings(epochs=1), "cpu", info=info)
    assert result.status == "done" and result.param_count == info.param_count


def test_an_analysis_with_errors_is_refused_before_building() -> None:
    model = ModelSpec("m", (Layer("flatten"), Layer("dense", (Arg("units", 7, True),))))
    info = analyze_model(model, DatasetInfo("x", (1, 8, 8), 10, ()))
    with pytest.raises(ModelBuildError, match=r"model 'm' cannot be built for a 1x8x8 input: .*head must"):
        check_buildable(info, 10)
    check_buildable(info)  # without the classes the head is not checked
