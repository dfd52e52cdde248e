"""ONNX measurements in the store: trained weights in, reports and files out.

A report is an artifact of kind "onnx": the ONNX file lies in the store's `onnx/` folder and the report
(`OnnxReport.to_dict()`) is the artifact's meta. A trained model's report hangs off its run and its
architecture; an untrained one's off the architecture alone. The newest report of a model is the one that
counts, so the overview and the language server read `latest_report`. A trained model is measured with every
execution provider onnxruntime has (CUDA too with the `gpu` extra), each report saying which; the CPU's is
stored last, so the newest report, which measured budgets are checked against, is the CPU's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remapdsl.language.model import ModelSpec
from remapdsl.onnx.bench import (
    DEFAULT_THREADS,
    OnnxReport,
    available_providers,
    measure_on_providers,
    measured_providers,
)
from remapdsl.onnx.export import DEFAULT_EXPORTER, OnnxArtifact
from remapdsl.store.db import FINISHED, Store

if TYPE_CHECKING:
    from remapdsl.train.data import Dataset

ONNX_KIND = "onnx"
# a measurement that failed: an artifact without a file, the error in its meta
ONNX_ERROR_KIND = "onnx-error"
PARITY_EXAMPLES = 64


@dataclass(frozen=True)
class TrainedWeights:
    run_id: int
    epoch: int
    state: Mapping[str, Any]


def trained_weights(store: Store, model_hash: str, data_key: str, settings_key: str) -> TrainedWeights | None:
    """The last checkpoint of the newest finished run of this architecture, data and settings, or None."""
    from remapdsl.train.trainer import Checkpoint

    for run in store.find_runs(model_hash, data_key, settings_key):
        if run.status not in FINISHED:
            continue
        found = store.last_checkpoint(run.id)
        if found is None:
            continue
        epoch, data = found
        return TrainedWeights(run.id, epoch, Checkpoint.from_bytes(data).model_state)
    return None


def store_report(store: Store, report: OnnxReport, artifact: OnnxArtifact, model: ModelSpec,
                 run_id: int | None = None) -> int:
    """Write the ONNX file next to the store and record the report; returns the artifact id.

    A model measured before it was ever queued is registered first, so its report has an architecture to
    hang off.
    """
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.printer import format_model

    model_hash = architecture_hash(model)
    if store.model(model_hash) is None:
        store.add_model(model_hash, format_model(model), params=report.expected_params)
    weights = f"run-{run_id}" if run_id is not None else "fresh"
    path = artifact.write(store.folder("onnx") / f"{model_hash}-{weights}-{report.exporter}.onnx")
    return store.add_artifact(ONNX_KIND, path, run_id=run_id, model_hash=model_hash, meta=report.to_dict())


def stored_reports(store: Store, model_hash: str) -> list[OnnxReport]:
    """Every report of an architecture, newest first."""
    rows = store.artifacts(model_hash=model_hash, kind=ONNX_KIND)
    return [OnnxReport.from_dict(row.meta) for row in reversed(rows)]


def latest_report(store: Store, model_hash: str, *, trained: bool | None = None) -> OnnxReport | None:
    """The newest report of an architecture (with `trained`, only of trained or of fresh weights)."""
    return next((r for r in stored_reports(store, model_hash) if trained is None or r.trained == trained), None)


def latest_reports(store: Store, model_hash: str, *, trained: bool | None = None) -> dict[str, OnnxReport]:
    """The newest report of an architecture per execution provider, the newest provider first."""
    out: dict[str, OnnxReport] = {}
    for r in stored_reports(store, model_hash):
        if (trained is None or r.trained == trained) and r.session.provider not in out:
            out[r.session.provider] = r
    return out


def record_onnx_failure(store: Store, run_id: int | None, model_hash: str, error: str) -> int:
    """Record why a model could not be exported or measured, under its run; returns the artifact id."""
    return store.add_artifact(ONNX_ERROR_KIND, "", run_id=run_id, model_hash=model_hash, meta={"error": error})


def onnx_failure(store: Store, run_id: int) -> str | None:
    """Why the measurement of a run failed, when its latest attempt did."""
    rows = [r for r in store.artifacts(run_id=run_id) if r.kind in (ONNX_KIND, ONNX_ERROR_KIND)]
    return str(rows[-1].meta.get("error", "")) if rows and rows[-1].kind == ONNX_ERROR_KIND else None


def measure_and_store(store: Store, run_id: int, model: ModelSpec, data: Dataset, model_state: Mapping[str, Any],
                      *, provider: str = "auto", threads: int = DEFAULT_THREADS,
                      exporter: str = DEFAULT_EXPORTER) -> list[OnnxReport]:
    """Export a trained model, measure it on its validation data with each provider asked for ("auto": every
    one onnxruntime has, see `measured_providers`) and store the reports under its run.

    Raises OnnxError (export, checker or onnxruntime failure; onnx not installed) for the caller to record;
    a report whose parity or parameter check fails is stored all the same, with `ok` false.
    """
    from remapdsl.language.analysis import analyze_model
    from remapdsl.onnx.bench import BenchError

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise BenchError(f"cannot measure model '{model.name}': {e.name} is not installed "
                         "(install the 'onnx' extra, or 'gpu' on a CUDA machine)") from e
    expected = analyze_model(model, data.info()).param_count
    inputs = data.x_val[:PARITY_EXAMPLES] if len(data.x_val) else None
    providers = measured_providers(available_providers()) if provider == "auto" else (provider,)
    reports, artifact = measure_on_providers(model, data.input_shape, expected, providers, state_dict=model_state,
                                             inputs=inputs, exporter=exporter, threads=threads)
    for report in reports:
        store_report(store, report, artifact, model, run_id)
    return reports
