"""ONNX export and onnxruntime measurement: the deployable artefact matches the model the language describes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from remapdsl.language.analysis import analyze_model
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.model import Arg, Budget, Document, Layer, ModelSpec, Range
from remapdsl.onnx.bench import (
    PARITY_TOLERANCE,
    BenchError,
    OnnxReport,
    benchmark,
    latency,
    measure_model,
    onnx_param_count,
    open_session,
)
from remapdsl.onnx.budgets import Measurement, check_measured_budgets, check_report
from remapdsl.onnx.export import (
    BATCH_DIM,
    INPUT_NAME,
    ExportError,
    OnnxArtifact,
    build_torch_model,
    check_onnx,
    export_model,
)
from tests.samples import DIGITS
from tests.strategies import sensible_models

pytestmark = pytest.mark.slow


CIFAR = DatasetInfo("cifar10", (3, 32, 32), 10, tuple(str(i) for i in range(10)))


def layer(kind: str, value: object = None, **named: object) -> Layer:
    from remapdsl.language.catalog import LAYER_TYPES

    args = []
    if value is not None:
        positional = LAYER_TYPES[kind].positional
        assert positional is not None
        args.append(Arg(positional.name, value, positional=True))  # type: ignore[arg-type]
    args += [Arg(k, v) for k, v in named.items()]  # type: ignore[arg-type]
    return Layer(kind, tuple(args))


def model(name: str, *layers: Layer) -> ModelSpec:
    return ModelSpec(name, tuple(layers))


# Models that cover every layer type, BatchNorm on images and on features, strides, valid padding and kernels.
MODELS = (
    model("small", layer("conv2d", 16, kernel=3), layer("relu"), layer("maxpool", 2), layer("flatten"),
          layer("dense", 10)),
    model("two_bn", layer("conv2d", 16), layer("batchnorm"), layer("relu"), layer("conv2d", 16, kernel=5),
          layer("batchnorm"), layer("tanh"), layer("avgpool", 2), layer("flatten"), layer("dense", 64),
          layer("batchnorm"), layer("sigmoid"), layer("dropout", 0.5), layer("dense", 10)),
    model("strided", layer("conv2d", 32, kernel=1, stride=2, padding="valid"), layer("dropout", 0.25),
          layer("conv2d", 16, kernel=3, padding=1), layer("relu"), layer("flatten"), layer("dense", 10)),
    model("dense_only", layer("flatten"), layer("dense", 128), layer("relu"), layer("dense", 16),
          layer("batchnorm"), layer("dense", 10)),
)


def expected_params(spec: ModelSpec, data: DatasetInfo = DIGITS) -> int:
    info = analyze_model(spec, data)
    assert info.valid, info.diagnostics
    return info.param_count


def as_if_trained(module: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """A state dict with every tensor perturbed, running statistics included, like one after training."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in module.state_dict().items():
        if not v.is_floating_point():
            state[k] = v
        elif k.endswith("running_var"):
            state[k] = v + torch.rand(v.shape, generator=g)
        else:
            state[k] = v + 0.1 * torch.randn(v.shape, generator=g)
    return state


@pytest.fixture(scope="module")
def reports() -> dict[str, OnnxReport]:
    out = {}
    for spec in MODELS:
        fresh = build_torch_model(spec, DIGITS.input_shape)
        inputs = np.random.default_rng(3).standard_normal((64, *DIGITS.input_shape), dtype=np.float32)
        out[spec.name], _ = measure_model(spec, DIGITS.input_shape, expected_params(spec),
                                          state_dict=as_if_trained(fresh), inputs=inputs)
    return out


# --- parity and parameter counts -------------------------------------------------------------------


@pytest.mark.parametrize("spec", MODELS, ids=lambda m: m.name)
def test_trained_export_matches_torch(reports: dict[str, OnnxReport], spec: ModelSpec) -> None:
    report = reports[spec.name]
    assert report.trained
    assert report.parity_inputs == "validation" and report.parity_batch == 64
    assert 0 <= report.max_abs_diff <= PARITY_TOLERANCE
    assert report.ok and report.problems() == []


@pytest.mark.parametrize("spec", MODELS, ids=lambda m: m.name)
def test_onnx_parameter_count_is_the_languages(reports: dict[str, OnnxReport], spec: ModelSpec) -> None:
    assert reports[spec.name].param_count == expected_params(spec) == reports[spec.name].expected_params


@pytest.mark.parametrize("spec", MODELS, ids=lambda m: m.name)
def test_untrained_export_counts_the_same(spec: ModelSpec) -> None:
    artifact, _ = export_model(spec, DIGITS.input_shape)
    assert onnx_param_count(artifact.proto()) == expected_params(spec)


@pytest.mark.parametrize("data", [DIGITS, CIFAR], ids=["digits", "cifar10"])
def test_sampled_models_export_faithfully(data: DatasetInfo) -> None:
    from remapdsl.search.sampler import sample_models

    specs = sample_models(8, data, seed=7, max_params=300_000)
    for spec in specs:
        fresh = build_torch_model(spec, data.input_shape)
        report, _ = measure_model(spec, data.input_shape, expected_params(spec, data), state_dict=as_if_trained(fresh),
                                  runs=2, warmup=0)
        assert report.param_count == report.expected_params, spec.name
        assert report.max_abs_diff <= PARITY_TOLERANCE, spec.name


def with_head(spec: ModelSpec) -> ModelSpec:
    """The model with a classifier head for digits, so that most drawn models are valid."""
    info = analyze_model(spec, DIGITS)
    last = info.layers[-1].output_shape if info.layers else None
    head = (layer("flatten"),) if last is not None and len(last) == 3 else ()
    return ModelSpec(spec.name, (*spec.layers, *head, layer("dense", 10)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(sensible_models.map(with_head).filter(lambda m: analyze_model(m, DIGITS).valid), st.booleans())
def test_parameter_count_of_drawn_models(spec: ModelSpec, trained: bool) -> None:
    state = as_if_trained(build_torch_model(spec, DIGITS.input_shape)) if trained else None
    artifact, _ = export_model(spec, DIGITS.input_shape, state_dict=state)
    assert onnx_param_count(artifact.proto()) == expected_params(spec)


def test_batchnorm_is_not_folded_and_counts_weight_and_bias_only() -> None:
    spec = MODELS[1]
    artifact, module = export_model(spec, DIGITS.input_shape, state_dict=as_if_trained(
        build_torch_model(spec, DIGITS.input_shape)))
    proto = artifact.proto()
    assert [n.op_type for n in proto.graph.node].count("BatchNormalization") == 3
    stored = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    running = sum(v.numel() for k, v in module.state_dict().items() if "running" in k)
    # Trained running statistics are stored in the file, but they are not parameters.
    assert stored == expected_params(spec) + running
    assert onnx_param_count(proto) == expected_params(spec)


def test_fresh_batchnorm_tensors_stored_once_still_count_per_layer() -> None:
    # Two fresh BatchNorm layers of 16 channels hold equal tensors, which the exporter stores once.
    spec = MODELS[1]
    proto = export_model(spec, DIGITS.input_shape)[0].proto()
    stored = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert stored < expected_params(spec)
    assert onnx_param_count(proto) == expected_params(spec)


def test_counts_on_a_colour_input() -> None:
    spec = model("colour", layer("conv2d", 32, kernel=5), layer("batchnorm"), layer("relu"), layer("maxpool", 3),
                 layer("conv2d", 64), layer("relu"), layer("avgpool", 5), layer("flatten"), layer("dense", 10))
    report, _ = measure_model(spec, CIFAR.input_shape, expected_params(spec, CIFAR), runs=5, warmup=1)
    assert report.param_count == expected_params(spec, CIFAR)
    assert report.parity_inputs == "random" and report.parity_ok


def test_corrupted_weights_fail_parity() -> None:
    spec = MODELS[0]
    artifact, module = export_model(spec, DIGITS.input_shape)
    proto = artifact.proto()
    weight = proto.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 0.01, weight.name))
    broken = OnnxArtifact(spec.name, proto.SerializeToString(), artifact.input_shape, artifact.exporter,
                          artifact.opset, artifact.export_seconds)
    report = benchmark(broken, module, expected_params(spec), trained=False, runs=3, warmup=0)
    assert report.max_abs_diff > PARITY_TOLERANCE
    assert not report.ok
    assert "differ by" in report.problems()[0]


def test_parameter_mismatch_is_a_problem() -> None:
    spec = MODELS[0]
    artifact, module = export_model(spec, DIGITS.input_shape)
    report = benchmark(artifact, module, expected_params(spec) + 1, trained=False, runs=3, warmup=0)
    assert report.parity_ok and not report.params_ok
    assert "the language counts" in report.problems()[0]


# --- the artefact ---------------------------------------------------------------------------------


def test_batch_dimension_is_dynamic() -> None:
    spec = MODELS[1]
    artifact, module = export_model(spec, DIGITS.input_shape)
    proto = artifact.proto()
    assert proto.graph.input[0].name == INPUT_NAME
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == BATCH_DIM
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == BATCH_DIM
    session, _ = open_session(artifact.data, "cpu")
    for batch in (1, 3, 64, 100):
        x = np.random.default_rng(batch).standard_normal((batch, *DIGITS.input_shape), dtype=np.float32)
        out = session.run(None, {INPUT_NAME: x})[0]
        assert out.shape == (batch, 10)
        with torch.no_grad():
            assert np.abs(out - module(torch.from_numpy(x)).numpy()).max() <= PARITY_TOLERANCE


def test_written_file_is_the_artifact_and_passes_the_checker(tmp_path) -> None:
    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    path = artifact.write(tmp_path / "small.onnx")
    assert path.stat().st_size == artifact.size_bytes
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    meta = {p.key: p.value for p in loaded.metadata_props}
    assert meta == {"remapdsl.language.model": "small", "remapdsl.input_shape": "1x8x8"}


def test_checker_rejects_a_broken_graph() -> None:
    proto = export_model(MODELS[0], DIGITS.input_shape)[0].proto()
    del proto.graph.initializer[0]
    with pytest.raises(ExportError, match="not valid"):
        check_onnx(proto, "small")


def test_checker_rejects_a_fixed_batch() -> None:
    proto = export_model(MODELS[0], DIGITS.input_shape)[0].proto()
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    dim.dim_value = 1
    with pytest.raises(ExportError, match="fixed batch size on 'input'"):
        check_onnx(proto, "small")


def test_unwritable_paths_are_named(tmp_path) -> None:
    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    with pytest.raises(ExportError, match=r"missing does not exist"):
        artifact.write(tmp_path / "missing" / "m.onnx")
    with pytest.raises(ExportError, match="is a folder"):
        artifact.write(tmp_path)
    (tmp_path / "plain").write_text("")
    with pytest.raises(ExportError, match="plain is a file, not a folder"):
        artifact.write(tmp_path / "plain" / "m.onnx")
    # A device that refuses every write: the operating system's reason is passed on with the path.
    with pytest.raises(ExportError, match=r"cannot write /dev/full: No space left on device"):
        artifact.write(Path("/dev/full"))


def test_a_write_that_fails_leaves_the_previous_file_whole(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the previous model")
    path.chmod(0o640)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ExportError, match=r"cannot write .*m\.onnx: No space left on device"):
        artifact.write(path)
    assert path.read_bytes() == b"the previous model" and sorted(tmp_path.iterdir()) == [path]
    monkeypatch.undo()
    assert artifact.write(path) == path and path.read_bytes() == artifact.data
    assert path.stat().st_mode & 0o777 == 0o640 and sorted(tmp_path.iterdir()) == [path]


def test_checkpoint_that_does_not_fit_is_refused() -> None:
    other = build_torch_model(MODELS[2], DIGITS.input_shape).state_dict()
    with pytest.raises(ExportError, match="checkpoint of model 'small' does not fit"):
        export_model(MODELS[0], DIGITS.input_shape, state_dict=other)


def test_invalid_model_is_refused() -> None:
    broken = model("broken", layer("conv2d", 16), layer("dense", 10))  # dense on an image: flatten missing
    with pytest.raises(ExportError, match="broken"):
        export_model(broken, DIGITS.input_shape)


def test_fresh_weights_follow_the_seed_and_leave_global_state_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_torch_model(MODELS[0], DIGITS.input_shape, seed=5).state_dict()
    after = torch.rand(1)
    b = build_torch_model(MODELS[0], DIGITS.input_shape, seed=5).state_dict()
    c = build_torch_model(MODELS[0], DIGITS.input_shape, seed=6).state_dict()
    assert torch.equal(before, after)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_the_torch_export_based_exporter_gives_the_same_model() -> None:
    spec = MODELS[1]
    fresh = build_torch_model(spec, DIGITS.input_shape)
    report, artifact = measure_model(spec, DIGITS.input_shape, expected_params(spec),
                                     state_dict=as_if_trained(fresh), exporter="dynamo", runs=5, warmup=1)
    assert artifact.exporter == "dynamo" and report.exporter == "dynamo"
    assert report.ok, report.problems()
    assert artifact.proto().graph.input[0].type.tensor_type.shape.dim[0].dim_param == BATCH_DIM


def test_unknown_exporter() -> None:
    with pytest.raises(ExportError, match="unknown exporter 'tflite'"):
        export_model(MODELS[0], DIGITS.input_shape, exporter="tflite")


# --- sessions and latency -------------------------------------------------------------------------


def test_latency_figures(reports: dict[str, OnnxReport]) -> None:
    report = reports["two_bn"]
    assert [lat.batch for lat in report.latency] == [1, 64]
    for lat in report.latency:
        assert lat.runs >= 100 and lat.warmup > 0
        assert 0 < lat.p50_ms <= lat.p95_ms
    assert report.session.provider == "CPUExecutionProvider"
    assert report.session.intra_op_threads == 1 and report.session.inter_op_threads == 1
    assert report.session.onnxruntime_version and report.session.device


def test_latency_runs_as_many_times_as_asked() -> None:
    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    session, _ = open_session(artifact.data, "cpu", threads=2)
    lat = latency(session, DIGITS.input_shape, batch=8, runs=7, warmup=2)
    assert (lat.batch, lat.runs, lat.warmup) == (8, 7, 2)
    with pytest.raises(BenchError, match="runs >= 1"):
        latency(session, DIGITS.input_shape, batch=1, runs=0)


def test_cuda_request_on_a_cpu_only_runtime_falls_back_and_says_so() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.fail("these tests expect the CPU onnxruntime; the GPU one is covered by the benchmark")
    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    _, settings = open_session(artifact.data, "cuda")
    assert settings.provider == "CPUExecutionProvider"
    assert "no CUDAExecutionProvider" in settings.fallback
    _, auto = open_session(artifact.data, "auto")
    assert auto.provider == "CPUExecutionProvider" and auto.fallback == ""


def test_bad_session_settings() -> None:
    artifact, _ = export_model(MODELS[0], DIGITS.input_shape)
    with pytest.raises(BenchError, match="unknown provider 'tpu'"):
        open_session(artifact.data, "tpu")
    with pytest.raises(BenchError, match="cannot load"):
        open_session(b"not a model", "cpu")


def test_validation_batch_of_the_wrong_shape() -> None:
    artifact, module = export_model(MODELS[0], DIGITS.input_shape)
    with pytest.raises(BenchError, match=r"3x8x8; model 'small' takes 1x8x8"):
        benchmark(artifact, module, 1, trained=False, inputs=np.zeros((4, 3, 8, 8), np.float32))


def test_report_survives_json(reports: dict[str, OnnxReport]) -> None:
    report = reports["small"]
    again = OnnxReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert json.loads(json.dumps(report.to_dict()))["parity_ok"] is True


# --- budgets --------------------------------------------------------------------------------------


def budget_document(*budgets: Budget) -> Document:
    spec = ModelSpec("small", MODELS[0].layers, name_range=Range.of(5, 6, 11))
    return Document(models=(spec,), budgets=budgets)


LATENCY = Budget("latency", 0.5, "ms", range=Range.of(2, 0, 24))
SIZE = Budget("size", 400e3, "KB", range=Range.of(3, 0, 22))


def test_measured_budgets_within_limits() -> None:
    doc = budget_document(LATENCY, SIZE, Budget("params", 100e3, "k"))
    assert check_measured_budgets(doc, "small", Measurement(0.5, 400_000)) == []


def test_latency_over_budget_is_reported_on_model_and_budget_line() -> None:
    doc = budget_document(LATENCY, SIZE)
    found = check_measured_budgets(doc, "small", Measurement(0.73, 1000, "CPUExecutionProvider on a test CPU"))
    assert [d.range for d in found] == [Range.of(5, 6, 11), LATENCY.range]
    assert {d.code for d in found} == {"budget-latency"}
    assert all(d.model == "small" for d in found)
    assert found[0].message == ("model 'small' takes 0.73ms per example at batch 1 (p50 with CPUExecutionProvider "
                                "on a test CPU), over the budget of 0.5ms")


def test_size_over_budget() -> None:
    doc = budget_document(LATENCY, SIZE)
    found = check_measured_budgets(doc, "small", Measurement(0.01, 400_001))
    assert [d.code for d in found] == ["budget-size", "budget-size"]
    assert "is 400,001 bytes as ONNX, over the budget of 400KB" in found[0].message
    assert found[1].range == SIZE.range


def test_strict_budget_and_small_units() -> None:
    doc = budget_document(Budget("latency", 0.05, "us", strict=True, range=Range.of(1, 0, 10)))
    found = check_measured_budgets(doc, "small", Measurement(0.05, None))
    assert len(found) == 2 and "50µs per example" in found[0].message and "budget of < 50us" in found[0].message


def test_unmeasured_figures_and_unknown_models_give_nothing() -> None:
    doc = budget_document(LATENCY, SIZE)
    assert check_measured_budgets(doc, "small", Measurement(None, None)) == []
    assert check_measured_budgets(doc, "nosuch", Measurement(9.0, 10**9)) == []


def test_budgets_from_a_report(reports: dict[str, OnnxReport]) -> None:
    report = reports["small"]
    tight = budget_document(Budget("size", 100, "B", range=Range.of(1, 0, 10)), LATENCY)
    found = check_report(tight, report)
    assert [d.code for d in found] == ["budget-size", "budget-size"]
    assert f"{report.size_bytes:,} bytes" in found[0].message
    assert check_report(budget_document(Budget("latency", 1e3, "s")), report) == []


# --- the store ------------------------------------------------------------------------------------


def add_run(store, spec: ModelSpec, status: str, state: dict[str, torch.Tensor] | None) -> int:  # type: ignore[no-untyped-def]
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.printer import format_model
    from remapdsl.store.db import EpochRow
    from remapdsl.train.trainer import Checkpoint

    h = architecture_hash(spec)
    store.add_model(h, format_model(spec), name=spec.name)
    run_id = store.add_run(h, spec.name, data_key="digits|test", data_text="", settings_key="epochs=1", settings={})
    checkpoint = Checkpoint(1, state, {}, {}, 1.0, 0).to_bytes() if state is not None else None
    store.record_epoch(run_id, EpochRow(run_id, 1, 1.0, 0.5, 1.0, 0.5, 0.1), checkpoint)
    store.finish_run(run_id, status)
    return run_id


def test_trained_weights_come_from_the_newest_finished_run(tmp_path) -> None:
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.onnx.records import trained_weights
    from remapdsl.store.db import Store

    spec = MODELS[0]
    fresh = build_torch_model(spec, DIGITS.input_shape)
    first, second = as_if_trained(fresh, 1), as_if_trained(fresh, 2)
    with Store(tmp_path / "remap.db") as store:
        h = architecture_hash(spec)
        assert trained_weights(store, h, "digits|test", "epochs=1") is None
        done = add_run(store, spec, "done", first)
        add_run(store, spec, "failed", second)  # newer, but failed: its weights are not a result
        found = trained_weights(store, h, "digits|test", "epochs=1")
        assert found is not None and found.run_id == done and found.epoch == 1
        assert torch.equal(found.state["0.weight"], first["0.weight"])
        stopped = add_run(store, spec, "stopped", second)  # early stopping is a finished training
        assert trained_weights(store, h, "digits|test", "epochs=1").run_id == stopped  # type: ignore[union-attr]
        assert trained_weights(store, h, "digits|other", "epochs=1") is None
        assert trained_weights(store, h, "digits|test", "epochs=2") is None


def test_measure_and_store_records_the_report_under_the_run(tmp_path) -> None:
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.onnx.records import latest_report, latest_reports, measure_and_store, stored_reports
    from remapdsl.store.db import Store
    from remapdsl.train.data import load_dataset

    spec = MODELS[1]
    data = load_dataset(None)
    state = as_if_trained(build_torch_model(spec, data.input_shape))
    with Store(tmp_path / "remap.db") as store:
        run_id = add_run(store, spec, "done", state)
        # onnxruntime here has the CPU's provider only: one report, which says so
        [report] = measure_and_store(store, run_id, spec, data, state)
        [row] = store.artifacts(run_id=run_id, kind="onnx")
        h = architecture_hash(spec)
        assert report.session.provider == "CPUExecutionProvider" and report.session.fallback == ""
        assert latest_reports(store, h) == {"CPUExecutionProvider": report}
        assert report.trained and report.ok
        assert report.parity_inputs == "validation" and report.parity_batch == 64
        assert row.model_hash == h and Path(row.path).read_bytes() == onnx.load(row.path).SerializeToString()
        assert latest_report(store, h) == report
        assert latest_report(store, h, trained=False) is None
        assert stored_reports(store, architecture_hash(MODELS[0])) == []


def test_measure_and_store_without_onnxruntime(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from remapdsl.onnx.export import OnnxError
    from remapdsl.onnx.records import measure_and_store
    from remapdsl.store.db import Store
    from remapdsl.train.data import load_dataset

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the 'onnx' extra were not installed
    data = load_dataset(None)
    with Store(tmp_path / "remap.db") as store:
        run_id = add_run(store, MODELS[0], "done", None)
        with pytest.raises(OnnxError, match="onnxruntime is not installed"):
            measure_and_store(store, run_id, MODELS[0], data, build_torch_model(MODELS[0], (1, 8, 8)).state_dict())
        assert store.artifacts(kind="onnx") == []


def test_a_model_is_measured_with_every_provider_onnxruntime_has() -> None:
    import onnxruntime as ort

    from remapdsl.onnx.bench import available_providers, measured_providers

    assert measured_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == ("cuda", "cpu")
    assert measured_providers(["CPUExecutionProvider"]) == ("cpu",)
    assert available_providers() == ort.get_available_providers()
    # this machine's onnxruntime is the CPU build
    assert measured_providers(available_providers()) == ("cpu",)


def test_asking_for_cuda_without_it_falls_back_once_and_says_why() -> None:
    from remapdsl.onnx.bench import measure_on_providers

    spec = MODELS[0]
    reports, _ = measure_on_providers(spec, (1, 8, 8), 0, ("cuda", "cpu"), runs=100)
    # the CUDA attempt fell back to the CPU, whose own report is kept instead of a second CPU figure
    assert [r.session.requested for r in reports] == ["cpu"]
    [alone] = measure_on_providers(spec, (1, 8, 8), 0, ("cuda",), runs=100)[0]
    assert alone.session.provider == "CPUExecutionProvider" and "onnxruntime-gpu" in alone.session.fallback
