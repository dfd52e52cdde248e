"""ONNX checks of a model: the export from torch, onnxruntime's parameter count, parity and latency, the
measured budgets, and the reports kept in the store.

Names are loaded on first use: export needs torch and onnx, the checks onnxruntime (the `onnx` extra), and
`import remapdsl.onnx` must not fail without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remapdsl.faces import lazy_names

if TYPE_CHECKING:
    from remapdsl.onnx.bench import DEFAULT_THREADS, MIN_RUNS, PROVIDERS, OnnxReport, measure_model, onnx_param_count
    from remapdsl.onnx.budgets import check_report, has_measured_budgets, measured_budget_diagnostics
    from remapdsl.onnx.export import DEFAULT_EXPORTER, EXPORTERS, ExportError, OnnxArtifact, OnnxError, export_model
    from remapdsl.onnx.records import (
        TrainedWeights,
        latest_report,
        measure_and_store,
        record_onnx_failure,
        store_report,
        trained_weights,
    )

# Each public name and the module that defines it.
_HOMES = {
    "DEFAULT_EXPORTER": "export",
    "EXPORTERS": "export",
    "ExportError": "export",
    "OnnxArtifact": "export",
    "OnnxError": "export",
    "export_model": "export",
    "MIN_RUNS": "bench",
    "PROVIDERS": "bench",
    "DEFAULT_THREADS": "bench",
    "OnnxReport": "bench",
    "measure_model": "bench",
    "onnx_param_count": "bench",
    "check_report": "budgets",
    "has_measured_budgets": "budgets",
    "measured_budget_diagnostics": "budgets",
    "TrainedWeights": "records",
    "latest_report": "records",
    "measure_and_store": "records",
    "record_onnx_failure": "records",
    "store_report": "records",
    "trained_weights": "records",
}

__all__ = [
    "DEFAULT_EXPORTER",
    "DEFAULT_THREADS",
    "EXPORTERS",
    "MIN_RUNS",
    "PROVIDERS",
    "ExportError",
    "OnnxArtifact",
    "OnnxError",
    "OnnxReport",
    "TrainedWeights",
    "check_report",
    "export_model",
    "has_measured_budgets",
    "latest_report",
    "measure_and_store",
    "measure_model",
    "measured_budget_diagnostics",
    "onnx_param_count",
    "record_onnx_failure",
    "store_report",
    "trained_weights",
]

__getattr__ = lazy_names(__name__, _HOMES)
