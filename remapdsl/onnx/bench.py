"""Measure an exported model with onnxruntime: parity with torch, parameters, size and latency.

Latency is measured at batch 1 (one example, as an app classifies it) and at a batch of 64, after a
warm-up, over at least 100 timed runs, as p50 and p95; the execution provider and the thread settings
are part of every report, because a figure means nothing without them.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from remapdsl.language.catalog import Shape, describe_shape
from remapdsl.language.model import ModelSpec
from remapdsl.onnx.export import DEFAULT_EXPORTER, INPUT_NAME, OnnxArtifact, OnnxError, export_model

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort
    from torch import nn

PARITY_TOLERANCE = 1e-4  # max |onnxruntime - torch| over a batch, fp32
LATENCY_BATCHES = (1, 64)
MIN_RUNS = 100
DEFAULT_WARMUP = 10
DEFAULT_THREADS = 1
PROVIDERS = ("auto", "cpu", "cuda")
_CPU, _CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
# BatchNormalization inputs 3 and 4 are its running mean and variance: buffers, not learned parameters.
_RUNNING_STATS = {"BatchNormalization": (3, 4)}


class BenchError(OnnxError):
    """A model cannot be measured; the message says which and why."""


@dataclass(frozen=True)
class Latency:
    batch: int
    runs: int
    warmup: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @property
    def p50_per_example_ms(self) -> float:
        return self.p50_ms / self.batch


@dataclass(frozen=True)
class SessionSettings:
    """Where and how onnxruntime ran: the provider it used, and why not the one asked for, if it did not."""

    provider: str
    requested: str
    fallback: str  # "" when the provider asked for is the one used
    intra_op_threads: int
    inter_op_threads: int
    graph_optimization: str
    onnxruntime_version: str
    device: str


@dataclass(frozen=True)
class OnnxReport:
    model: str
    trained: bool
    input_shape: Shape
    exporter: str
    opset: int
    export_seconds: float
    size_bytes: int
    param_count: int  # from the ONNX file
    expected_params: int  # the language's count
    max_abs_diff: float
    parity_inputs: str  # "validation" (real examples) or "random"
    parity_batch: int
    latency: tuple[Latency, ...]
    session: SessionSettings

    @property
    def parity_ok(self) -> bool:
        return self.max_abs_diff <= PARITY_TOLERANCE

    @property
    def params_ok(self) -> bool:
        return self.param_count == self.expected_params

    @property
    def ok(self) -> bool:
        return self.parity_ok and self.params_ok

    def at_batch(self, batch: int) -> Latency | None:
        return next((lat for lat in self.latency if lat.batch == batch), None)

    def problems(self) -> list[str]:
        """What failed, in words; empty when the export is faithful."""
        out = []
        if not self.parity_ok:
            out.append(f"model '{self.model}': onnxruntime and torch differ by {self.max_abs_diff:.3g} "
                       f"(allowed {PARITY_TOLERANCE:g})")
        if not self.params_ok:
            out.append(f"model '{self.model}': the ONNX file holds {self.param_count:,} parameters, "
                       f"the language counts {self.expected_params:,}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["latency"] = [asdict(lat) for lat in self.latency]
        d["parity_ok"] = self.parity_ok
        d["params_ok"] = self.params_ok
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> OnnxReport:
        fields = {k: v for k, v in d.items() if k not in ("parity_ok", "params_ok")}
        fields["input_shape"] = tuple(d["input_shape"])
        fields["latency"] = tuple(Latency(**lat) for lat in d["latency"])
        fields["session"] = SessionSettings(**d["session"])
        return OnnxReport(**fields)


def measured_providers(available: Sequence[str]) -> tuple[str, ...]:
    """The providers a model is measured with, given onnxruntime's available ones: the CPU always, and CUDA
    first where onnxruntime has it (the `gpu` extra), so that the CPU's report is the newest of the two."""
    return ("cuda", "cpu") if _CUDA in available else ("cpu",)


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def onnx_param_count(proto: onnx.ModelProto) -> int:
    """Learned parameters stored in the file, counted as the language counts them.

    A parameter is a floating-point tensor from the file (an initializer, or an Identity alias of one) that a
    node consumes, other than BatchNormalization's running statistics. Aliases matter: in eval mode the
    exporter stores equal tensors once (two fresh BatchNorm layers share their ones and zeros), yet each
    is a parameter of its own. Each consumed name counts once.
    """
    from onnx import TensorProto, numpy_helper

    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    sizes = {t.name: int(np.prod(t.dims, dtype=np.int64)) for t in proto.graph.initializer if t.data_type in floats}
    aliases = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "Identity"}
    for node in proto.graph.node:
        # Constant nodes hold data too (the torch.export-based exporter emits shapes this way).
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            if t.data_type in floats:
                sizes[node.output[0]] = int(numpy_helper.to_array(t).size)

    def stored(name: str) -> str | None:
        seen = set()
        while name not in sizes and name in aliases and name not in seen:
            seen.add(name)
            name = aliases[name]
        return name if name in sizes else None

    counted: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type == "Identity":
            continue
        skip = _RUNNING_STATS.get(node.op_type, ())
        for i, name in enumerate(node.input):
            if i in skip or name in counted:
                continue
            source = stored(name)
            if source is not None:
                counted[name] = sizes[source]
    return sum(counted.values())


def open_session(data: bytes, provider: str = "auto", threads: int = DEFAULT_THREADS) -> tuple[
        ort.InferenceSession, SessionSettings]:
    """An onnxruntime session on the provider asked for ("auto": CUDA where it works, else CPU)."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise BenchError(f"unknown provider '{provider}'; expected one of {', '.join(PROVIDERS)}")
    if threads < 0:
        raise BenchError(f"threads must be 0 (onnxruntime's default) or more; found {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: fallback is reported in the result, not on stderr

    fallback = ""
    providers: list[Any] = [_CPU]
    if provider != "cpu":
        if _CUDA in ort.get_available_providers():
            # TF32 would trade the fp32 parity the report promises for speed.
            providers = [(_CUDA, {"device_id": 0, "use_tf32": 0}), _CPU]
        elif provider == "cuda":
            fallback = ("onnxruntime has no CUDAExecutionProvider: install the 'gpu' extra (onnxruntime-gpu) "
                        "in place of onnxruntime")
        # "auto" on a CPU-only onnxruntime: the CPU is the expected choice, not a fallback
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types per failure
        raise BenchError(f"onnxruntime cannot load the model: {e}") from e
    used = session.get_providers()[0]
    if len(providers) > 1 and used != _CUDA:
        fallback = "CUDAExecutionProvider is installed but could not start (no GPU, driver or CUDA libraries)"
    settings = SessionSettings(
        provider=used, requested=provider, fallback=fallback,
        intra_op_threads=options.intra_op_num_threads, inter_op_threads=options.inter_op_num_threads,
        graph_optimization="all", onnxruntime_version=ort.__version__, device=_device_name(used),
    )
    return session, settings


def parity(session: ort.InferenceSession, module: nn.Module, inputs: np.ndarray) -> float:
    """Largest absolute difference between onnxruntime's and torch's outputs on `inputs`."""
    import torch

    x = np.ascontiguousarray(inputs, dtype=np.float32)
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(x)).numpy()
    try:
        got = session.run(None, {INPUT_NAME: x})[0]
    except Exception as e:  # onnxruntime raises its own exception types per failure
        raise BenchError(f"onnxruntime cannot run the model: {e}") from e
    if got.shape != expected.shape:
        raise BenchError(f"onnxruntime returns shape {got.shape}, torch {expected.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if x.shape[0] else 0.0


def latency(session: ort.InferenceSession, input_shape: Shape, batch: int, runs: int = MIN_RUNS,
            warmup: int = DEFAULT_WARMUP, seed: int = 0) -> Latency:
    """Wall time of one `session.run` on a batch, over `runs` timed runs after `warmup` untimed ones."""
    if runs < 1 or warmup < 0 or batch < 1:
        raise BenchError(f"need runs >= 1, warmup >= 0 and batch >= 1; found {runs}, {warmup}, {batch}")
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape), dtype=np.float32)
    feed = {INPUT_NAME: x}
    times = np.empty(runs, dtype=np.float64)
    try:  # around the loops, not each run, so that the timed runs carry no extra work
        for _ in range(warmup):
            session.run(None, feed)
        for i in range(runs):
            start = time.perf_counter_ns()
            session.run(None, feed)
            times[i] = time.perf_counter_ns() - start
    except Exception as e:  # onnxruntime raises its own exception types per failure
        raise BenchError(f"onnxruntime cannot run the model at batch {batch}: {e}") from e
    ms = times / 1e6
    return Latency(batch, runs, warmup, float(np.percentile(ms, 50)), float(np.percentile(ms, 95)),
                   float(ms.mean()))


def benchmark(artifact: OnnxArtifact, module: nn.Module, expected_params: int, *, trained: bool,
              inputs: np.ndarray | None = None, provider: str = "auto", threads: int = DEFAULT_THREADS,
              runs: int = MIN_RUNS, warmup: int = DEFAULT_WARMUP, batches: tuple[int, ...] = LATENCY_BATCHES,
              seed: int = 0) -> OnnxReport:
    """Measure an exported model against the module it came from.

    `inputs` is a validation batch for the parity check; without one, a random batch of 64 is used.
    """
    if inputs is None:
        inputs = np.random.default_rng(seed).standard_normal((64, *artifact.input_shape), dtype=np.float32)
        parity_inputs = "random"
    else:
        parity_inputs = "validation"
        if tuple(inputs.shape[1:]) != tuple(artifact.input_shape):
            raise BenchError(f"the validation batch has examples of shape {describe_shape(inputs.shape[1:])}; "
                             f"model '{artifact.model}' takes {describe_shape(artifact.input_shape)}")
    session, settings = open_session(artifact.data, provider, threads)
    diff = parity(session, module, inputs)
    timings = tuple(latency(session, artifact.input_shape, b, runs, warmup, seed) for b in batches)
    return OnnxReport(
        model=artifact.model, trained=trained, input_shape=artifact.input_shape, exporter=artifact.exporter,
        opset=artifact.opset, export_seconds=artifact.export_seconds, size_bytes=artifact.size_bytes,
        param_count=onnx_param_count(artifact.proto()), expected_params=expected_params, max_abs_diff=diff,
        parity_inputs=parity_inputs, parity_batch=int(inputs.shape[0]), latency=timings, session=settings,
    )


def measure_model(model: ModelSpec, input_shape: Shape, expected_params: int, *,
                  state_dict: Mapping[str, Any] | None = None, seed: int = 0, inputs: np.ndarray | None = None,
                  exporter: str = DEFAULT_EXPORTER, provider: str = "auto", threads: int = DEFAULT_THREADS,
                  runs: int = MIN_RUNS, warmup: int = DEFAULT_WARMUP) -> tuple[OnnxReport, OnnxArtifact]:
    """Export (trained weights from `state_dict`, else fresh ones from `seed`) and measure one model."""
    artifact, module = export_model(model, input_shape, state_dict=state_dict, seed=seed, exporter=exporter)
    report = benchmark(artifact, module, expected_params, trained=state_dict is not None, inputs=inputs,
                       provider=provider, threads=threads, runs=runs, warmup=warmup, seed=seed)
    return report, artifact


def measure_on_providers(model: ModelSpec, input_shape: Shape, expected_params: int, providers: Sequence[str], *,
                         state_dict: Mapping[str, Any] | None = None, seed: int = 0,
                         inputs: np.ndarray | None = None, exporter: str = DEFAULT_EXPORTER,
                         threads: int = DEFAULT_THREADS, runs: int = MIN_RUNS,
                         warmup: int = DEFAULT_WARMUP) -> tuple[list[OnnxReport], OnnxArtifact]:
    """Export one model once and measure it with each provider; a provider that fell back to another is left
    out when that other is measured too (its figure would be the other's twice)."""
    artifact, module = export_model(model, input_shape, state_dict=state_dict, seed=seed, exporter=exporter)
    reports = [benchmark(artifact, module, expected_params, trained=state_dict is not None, inputs=inputs,
                         provider=p, threads=threads, runs=runs, warmup=warmup, seed=seed) for p in providers]
    used = [r.session.provider for r in reports]
    kept = [r for r in reports if not r.session.fallback or used.count(r.session.provider) == 1]
    return kept, artifact


def _device_name(provider: str) -> str:
    if provider == _CUDA:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
        except ImportError:
            pass
        return "CUDA GPU"
    return f"{_cpu_model()} ({os.cpu_count()} logical cores)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"

