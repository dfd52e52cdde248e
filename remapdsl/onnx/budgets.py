"""Measured budgets: a model's ONNX latency and file size against the document's `budget` lines.

The parameter budget is static and checked with everything else in `analysis`; latency and size exist only
once a model has been exported and measured, so they are checked here, from the stored measurement.
`budget latency` bounds the median (p50) time of one example at batch 1 on the measuring device.
Each violation is reported twice: on the model's name, where its author looks, and on the budget line,
where the limit can be changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.model import Document
from remapdsl.language.printer import budget_limit_text

if TYPE_CHECKING:
    from remapdsl.onnx.bench import OnnxReport
    from remapdsl.store.db import Store

MEASURED_METRICS = ("latency", "size")


@dataclass(frozen=True)
class Measurement:
    """What the budgets need from a model's ONNX measurement."""

    latency_ms: float | None  # p50 at batch 1
    size_bytes: int | None
    where: str = ""  # provider and device the latency was measured on

    @staticmethod
    def from_report(report: OnnxReport) -> Measurement:
        one = report.at_batch(1)
        where = f"{report.session.provider} on {report.session.device}"
        return Measurement(one.p50_ms if one else None, report.size_bytes, where)


def check_measured_budgets(document: Document, model: str, measured: Measurement) -> list[Diagnostic]:
    """Diagnostics for each measured budget that `model` exceeds; none for unmeasured figures."""
    spec = document.model(model)
    if spec is None:
        return []
    out: list[Diagnostic] = []
    for budget in document.budgets:
        figure = _figure(budget.metric, measured)
        if figure is None or budget.allows(figure[0]):
            continue
        over = f"{figure[1]}, over the budget of {budget_limit_text(budget)}"
        out.append(Diagnostic(spec.name_range, f"model '{model}' {over}", Severity.ERROR,
                              f"budget-{budget.metric}", model))
        out.append(Diagnostic(budget.range, f"model '{model}' {over}", Severity.ERROR,
                              f"budget-{budget.metric}", model))
    return out


def check_report(document: Document, report: OnnxReport) -> list[Diagnostic]:
    return check_measured_budgets(document, report.model, Measurement.from_report(report))


def measured_budget_diagnostics(store: Store | None, document: Document) -> list[Diagnostic]:
    """Latency and size budgets against the newest stored ONNX measurement of each of the document's models
    (by architecture, so a renamed model keeps its measurement); none without a store or such budgets."""
    if store is None or not has_measured_budgets(document):
        return []
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.onnx.records import latest_report

    out: list[Diagnostic] = []
    for model in document.models:
        report = latest_report(store, architecture_hash(model))
        if report is not None:
            out += check_measured_budgets(document, model.name, Measurement.from_report(report))
    return out


def has_measured_budgets(document: Document) -> bool:
    return any(b.metric in MEASURED_METRICS for b in document.budgets)


def _figure(metric: str, measured: Measurement) -> tuple[float, str] | None:
    if metric == "latency" and measured.latency_ms is not None:
        where = f" with {measured.where}" if measured.where else ""
        return measured.latency_ms, f"takes {_ms(measured.latency_ms)} per example at batch 1 (p50{where})"
    if metric == "size" and measured.size_bytes is not None:
        return float(measured.size_bytes), f"is {measured.size_bytes:,} bytes as ONNX"
    return None


def _ms(value: float) -> str:
    return f"{value * 1e3:.0f}µs" if value < 0.1 else f"{value:.3g}ms"

