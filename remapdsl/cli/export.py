"""`remap export FILE MODEL`: write a model as a checked ONNX file (trained weights, or fresh with --untrained).

Trained weights come from the store (default `.remap/remap.db` beside FILE): the last checkpoint of the
newest finished run of the model with FILE's data and training settings. Also holds what `remap bench`
shares: reading FILE with its data and store, and finding a model's trained weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remapdsl.cli import UsageError
from remapdsl.cli.check import read_source
from remapdsl.language.analysis import Analysis, ModelInfo, analyze, did_you_mean
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.onnx.export import DEFAULT_EXPORTER, EXPORTERS

if TYPE_CHECKING:
    from remapdsl.language.header import TrainSettings
    from remapdsl.onnx.records import TrainedWeights
    from remapdsl.store.db import Store
    from remapdsl.train.data import Dataset


@dataclass
class Workspace:
    """A .remap file read and analysed, with its data (when it loads) and its store (when there is one)."""

    path: Path
    analysis: Analysis
    store_path: Path
    store: Store | None
    data: Dataset | None
    data_problem: str  # why `data` is None
    epochs: int | None = None  # the epochs the models were trained with, when not the file's

    @property
    def input_shape(self) -> tuple[int, ...]:
        assert self.analysis.dataset is not None
        return tuple(self.analysis.dataset.input_shape)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def add_store_options(p: argparse.ArgumentParser) -> None:
    from remapdsl.cli.train import positive_int

    p.add_argument("--store", type=Path, metavar="PATH",
                   help="the store file (default: .remap/remap.db in FILE's folder)")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="the epochs the models were trained with, if not the file's (as given to remap train)")


def open_workspace(path: Path, store: Path | None, epochs: int | None = None, *,
                   create_store: bool = False) -> Workspace:
    """Read FILE; the input shape must be known (a broken data line is a usage error)."""
    from remapdsl.language.parser import parse
    from remapdsl.store.db import Store, StoreError, default_store_path

    result = parse(read_source(str(path)))
    analysis = analyze(result.document, result.diagnostics, Path(path).parent)
    if analysis.dataset is None:
        _print_diagnostics(path, (d for d in analysis.diagnostics if d.model is None and d.severity == Severity.ERROR))
        raise UsageError(f"{path}: the input shape is unknown until the data line is fixed")
    data, problem = _load_data(analysis, path)
    store_path = store or default_store_path(path)
    opened = None
    if create_store or store_path.exists():
        try:
            opened = Store(store_path)
        except StoreError as e:
            raise UsageError(str(e)) from None
    return Workspace(path, analysis, store_path, opened, data, problem, epochs)


def _load_data(analysis: Analysis, path: Path) -> tuple[Dataset | None, str]:
    from remapdsl.language.datasets import DataError
    from remapdsl.train.data import load_dataset

    try:
        return load_dataset(analysis.document.data, path.resolve().parent), ""
    except (DataError, OSError) as e:
        return None, str(e)


def select(ws: Workspace, name: str) -> ModelInfo:
    """The model called `name`; unknown or invalid models are usage errors that say why."""
    info = ws.analysis.models.get(name)
    if info is None:
        names = list(ws.analysis.models)
        listing = f"; models: {', '.join(names)}" if names else "; it defines no models"
        raise UsageError(f"{ws.path} has no model '{name}'{did_you_mean(name, names)}{listing}")
    if not info.valid:
        _print_diagnostics(ws.path, (d for d in info.diagnostics if d.severity == Severity.ERROR))
        raise UsageError(f"model '{name}' has errors (above); fix them first")
    return info


def find_trained(ws: Workspace, info: ModelInfo) -> tuple[TrainedWeights | None, str]:
    """The model's trained weights, or None and why there are none (in words, for the user)."""
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.header import TrainSettings
    from remapdsl.onnx.records import trained_weights
    from remapdsl.store.db import StoreError

    name = info.model.name
    if ws.store is None:
        return None, f"model '{name}' has not been trained: there is no store at {ws.store_path}"
    if ws.data is None:
        return None, f"the trained weights of model '{name}' cannot be looked up: {ws.data_problem}"
    try:
        settings = TrainSettings.from_document(ws.analysis.document, epochs=ws.epochs)
    except ValueError as e:
        return None, f"the trained weights of model '{name}' cannot be looked up: {e}"
    model_hash = architecture_hash(info.model)
    try:
        found = trained_weights(ws.store, model_hash, ws.data.key, settings.key())
    except (ValueError, StoreError) as e:  # a checkpoint file that is not one, or is gone
        return None, f"the checkpoint of model '{name}' in {ws.store_path} cannot be read: {e}"
    if found is None:
        return None, (f"model '{name}' has no finished training with {ws.path.name}'s data and settings "
                      f"in {ws.store_path}{_other_settings(ws.store, model_hash, ws.data.key, settings)}")
    return found, ""


def _other_settings(store: Store, model_hash: str, data_key: str, wanted: TrainSettings) -> str:
    """A hint naming the settings of the newest finished training of the model on the same data, when it was
    trained with other settings than those looked up: most often other --epochs."""
    from remapdsl.store.db import FINISHED

    run = next((r for r in reversed(store.runs(model_hash)) if r.status in FINISHED and r.data_key == data_key),
               None)
    if run is None:
        return ""
    wanted_values = asdict(wanted)
    differ = {k: v for k, v in run.settings.items() if k in wanted_values and wanted_values[k] != v}
    if not differ:
        return ""
    shown = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in differ.items())
    flag = f"; pass --epochs {differ['epochs']} to use it" if set(differ) == {"epochs"} else (
        "; set the train line to these to use it")
    return f" (run {run.id} trained it with {shown}{flag})"


def _print_diagnostics(path: Path, diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        print(d.format(str(path)), file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("export", help="write a model as an ONNX file (dynamic batch, checked)",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="the .remap file")
    p.add_argument("model", metavar="MODEL", help="name of the model in FILE")
    p.add_argument("-o", "--output", type=Path, help="where to write the file (default: MODEL.onnx)")
    p.add_argument("--untrained", action="store_true",
                   help="export fresh weights (for size and latency before training)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh weights with --untrained (default 0)")
    p.add_argument("--exporter", choices=EXPORTERS, default=DEFAULT_EXPORTER,
                   help=f"torch exporter (default {DEFAULT_EXPORTER}: fast enough to run after every training)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from remapdsl.onnx.bench import onnx_param_count
    from remapdsl.onnx.export import ExportError, export_model

    ws = open_workspace(args.file, args.store, args.epochs)
    try:
        info = select(ws, args.model)
        output: Path = args.output or Path(f"{info.model.name}.onnx")
        weights, why = (None, "") if args.untrained else find_trained(ws, info)
        if weights is None and not args.untrained:
            raise UsageError(f"{why}; train it first (remap train {args.file} -m {info.model.name}), "
                             "or pass --untrained to export fresh weights")
    finally:
        ws.close()
    try:
        artifact, _ = export_model(info.model, ws.input_shape, state_dict=weights.state if weights else None,
                                   seed=args.seed, exporter=args.exporter)
        artifact.write(output)
    except ExportError as e:
        raise UsageError(str(e)) from e
    result: dict[str, Any] = {
        "model": info.model.name,
        "path": str(output),
        "trained": weights is not None,
        "run": weights.run_id if weights else None,
        "epoch": weights.epoch if weights else None,
        "seed": None if weights else args.seed,
        "input_shape": list(ws.input_shape),
        "size_bytes": artifact.size_bytes,
        "param_count": onnx_param_count(artifact.proto()),
        "expected_params": info.param_count,
        "exporter": artifact.exporter,
        "opset": artifact.opset,
        "export_seconds": round(artifact.export_seconds, 4),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        source = (f"trained weights of run {weights.run_id}, epoch {weights.epoch}" if weights
                  else f"fresh weights, seed {args.seed}")
        print(f"wrote {output}: model '{info.model.name}' ({source}), {artifact.size_bytes:,} bytes, "
              f"{result['param_count']:,} parameters, input N x {'x'.join(map(str, ws.input_shape))}, "
              f"{artifact.exporter} exporter, opset {artifact.opset}, {artifact.export_seconds:.2f} s")
    return 0
