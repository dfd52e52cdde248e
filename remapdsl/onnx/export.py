"""Export a model to ONNX, the artefact that is deployed: dynamic batch, validated with `onnx.checker`.

The default exporter is torch's TorchScript-based one (`dynamo=False`): it takes tens of milliseconds per
small model, so every trained model can be exported automatically, where the torch.export-based exporter
takes seconds (see BENCHMARKS.md). Both are available; constant folding is off in both, so BatchNorm stays
a node of its own and the file's parameters are the ones the language counts (onnxruntime fuses
BatchNorm into the convolution itself when it builds a session, so latency does not suffer).
"""

from __future__ import annotations

import io
import logging
import os
import stat
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remapdsl.language.catalog import Shape, describe_shape
from remapdsl.language.model import ModelSpec

if TYPE_CHECKING:
    import onnx
    from torch import nn

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_EXPORTER = "torchscript"
# Opset 18 is read by every onnxruntime since 1.14 (old devices run old runtimes) and is the torch.export-based
# exporter's own, which otherwise converts its output down a version.
DEFAULT_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
# Example batch for tracing: 2, not 1, so that no exporter specialises the batch dimension to a constant.
_TRACE_BATCH = 2


class OnnxError(Exception):
    """Exporting or measuring a model failed; the message says which model and why."""


class ExportError(OnnxError):
    """A model cannot be exported or written; the message says which and why."""


@dataclass(frozen=True)
class OnnxArtifact:
    """A checked ONNX model in memory: the bytes are exactly what `write` puts on disk."""

    model: str
    data: bytes
    input_shape: Shape
    exporter: str
    opset: int
    export_seconds: float

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    def proto(self) -> onnx.ModelProto:
        import onnx

        return onnx.load_model_from_string(self.data)

    def write(self, path: Path) -> Path:
        """Write the model to `path` whole or not at all: through a temporary file beside it, synced and renamed
        over it, so that a reader (onnxruntime, a deployment) never sees half a model and a crash or a full disk
        leaves the previous file. ExportError names the path when it cannot be written."""
        path = Path(path)
        if path.is_dir():
            raise ExportError(f"cannot write {path}: it is a folder; give a file name such as {path / 'model.onnx'}")
        if path.parent.exists() and not path.parent.is_dir():
            raise ExportError(f"cannot write {path}: {path.parent} is a file, not a folder")
        if not path.parent.is_dir():
            raise ExportError(f"cannot write {path}: folder {path.parent} does not exist")
        if path.exists() and not path.is_file():  # a device or a pipe (/dev/stdout) is written to as it is
            try:
                with path.open("wb") as f:
                    f.write(self.data)
            except OSError as e:
                raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
            return path
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
            # created as a new file would be (the umask applies), never following a link left at the temp name
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self.data)
                    f.flush()
                    os.fsync(f.fileno())
                if mode is not None:
                    os.chmod(temp, mode)
                os.replace(temp, path)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except OSError as e:
            raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
        return path


def build_torch_model(model: ModelSpec, input_shape: Shape, state_dict: Mapping[str, Any] | None = None,
                      seed: int = 0) -> nn.Module:
    """The model as a torch module in eval mode: trained weights from `state_dict`, else fresh ones from `seed`."""
    import torch

    from remapdsl.train.torch_model import ModelBuildError, build_model

    # Fresh weights come from the seed alone, without disturbing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = build_model(model, input_shape)
        except ModelBuildError as e:
            raise ExportError(str(e)) from e
    if state_dict is not None:
        try:
            module.load_state_dict(dict(state_dict))
        except (RuntimeError, KeyError) as e:
            raise ExportError(f"the checkpoint of model '{model.name}' does not fit its layers: {e}") from e
    return module.eval()


def export_module(module: nn.Module, input_shape: Shape, *, name: str, exporter: str = DEFAULT_EXPORTER,
                  opset: int = DEFAULT_OPSET) -> OnnxArtifact:
    """Export `module` (inputs N x `input_shape`, batch dimension dynamic) and check the result."""
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}'; expected one of {', '.join(EXPORTERS)}")
    import torch

    module = module.eval()
    example = torch.zeros((_TRACE_BATCH, *input_shape), dtype=torch.float32)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            proto = _export_dynamo(module, example, opset) if exporter == "dynamo" else \
                _export_torchscript(module, example, opset)
    except ExportError:
        raise
    except Exception as e:  # the exporters raise many types (torch, onnxscript, onnx); all mean the same here
        raise ExportError(f"cannot export model '{name}' ({describe_shape(input_shape)} input) "
                          f"with the {exporter} exporter: {e}") from e
    _annotate(proto, name, input_shape)
    check_onnx(proto, name)
    data = proto.SerializeToString()
    seconds = time.perf_counter() - start
    used_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    return OnnxArtifact(name, data, tuple(input_shape), exporter, used_opset, seconds)


def export_model(model: ModelSpec, input_shape: Shape, *, state_dict: Mapping[str, Any] | None = None,
                 seed: int = 0, exporter: str = DEFAULT_EXPORTER, opset: int = DEFAULT_OPSET,
                 ) -> tuple[OnnxArtifact, nn.Module]:
    """Build, export and check a model; returns the artefact and the torch module it came from."""
    module = build_torch_model(model, input_shape, state_dict, seed)
    return export_module(module, input_shape, name=model.name, exporter=exporter, opset=opset), module


def check_onnx(proto: onnx.ModelProto, name: str = "model") -> None:
    """`onnx.checker` with shape inference, and a dynamic batch dimension on the input and the output."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"the ONNX model of '{name}' is not valid: {e}") from e
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or not dims[0].dim_param:
            raise ExportError(f"the ONNX model of '{name}' has a fixed batch size on '{value.name}'; "
                              "expected a dynamic first dimension")


def _export_torchscript(module: nn.Module, example: Any, opset: int) -> onnx.ModelProto:
    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen for its speed; its deprecation notice is known and documented.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            # The stubs say path only; the TorchScript exporter writes to any binary file object.
            module, (example,), buffer, dynamo=False, opset_version=opset,  # type: ignore[arg-type]
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
            do_constant_folding=False,
        )
    return onnx.load_model_from_string(buffer.getvalue())


def _export_dynamo(module: nn.Module, example: Any, opset: int) -> onnx.ModelProto:
    import torch

    # The exporter logs a line per torchvision op it cannot register; none of ours needs torchvision.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
                optimize=False, verbose=False,
            )
    finally:
        quiet.setLevel(level)
    if program is None:
        raise ExportError("the torch.export-based exporter returned no program")
    proto = program.model_proto
    # Per-node debugging records (stack traces with local paths, FX names) are half the file; a deployed
    # model needs none of them.
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    # Name the batch dimension the same way whichever exporter made the file.
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = BATCH_DIM
    return proto


def _annotate(proto: onnx.ModelProto, name: str, input_shape: Shape) -> None:
    from remapdsl import __version__

    proto.producer_name = "remapdsl"
    proto.producer_version = __version__
    meta = {"remapdsl.language.model": name, "remapdsl.input_shape": describe_shape(input_shape)}
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
