"""`remap bench FILE`: export each model to ONNX and measure it with onnxruntime.

Prints parameters, file size, latency p50/p95 at batch 1 and 64 and the execution provider, then the
budget lines each model exceeds. By default each model is measured with every provider onnxruntime has (the
CPU, and CUDA with the `gpu` extra), one row per provider. Trained weights are used where the store has
them, fresh ones otherwise; the reports go into the store when there is one. Exits 1 when a model fails a
check (parity, parameter count) or a measured budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from remapdsl.cli.options import MAX_PROCESSES, MAX_RUNS, UsageError, add_trained_weights_options, check_count
from remapdsl.cli.workspace import Workspace, find_trained, open_workspace, select
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.onnx.bench import DEFAULT_THREADS, MIN_RUNS, PROVIDERS
from remapdsl.onnx.export import DEFAULT_EXPORTER, EXPORTERS

VALIDATION_BATCH = 64


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("bench", help="export models to ONNX and measure size and latency",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="the .remap file")
    p.add_argument("--model", "-m", action="append", metavar="M",
                   help="measure only this model (repeatable; default: every valid model)")
    p.add_argument("--untrained", action="store_true", help="measure fresh weights even where trained ones exist")
    p.add_argument("--seed", type=int, default=0, help="seed of fresh weights and of random inputs (default 0)")
    p.add_argument("--provider", choices=("all", *PROVIDERS), default="all",
                   help="onnxruntime execution provider (all, the default: each one onnxruntime has; auto: CUDA "
                        "where it works, else CPU)")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help=f"onnxruntime intra-op threads (default {DEFAULT_THREADS}; 0: onnxruntime's choice)")
    p.add_argument("--runs", type=int, default=MIN_RUNS, help=f"timed runs per batch size ({MIN_RUNS} to {MAX_RUNS:,})")
    p.add_argument("--exporter", choices=EXPORTERS, default=DEFAULT_EXPORTER, help="torch exporter")
    p.add_argument("--no-store", action="store_true", help="do not record the reports in the store")
    p.add_argument("--json", action="store_true", help="print the reports and budget diagnostics as JSON")
    add_trained_weights_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.runs < MIN_RUNS:
        raise UsageError(f"--runs must be at least {MIN_RUNS}, so that p95 is a measured figure; found {args.runs}")
    check_count("--runs", args.runs, MIN_RUNS, MAX_RUNS)
    check_count("--threads", args.threads, 0, MAX_PROCESSES)
    ws = open_workspace(args.file, args.store, args.epochs, read_only=args.no_store)
    try:
        return _bench(ws, args)
    finally:
        ws.close()


def _bench(ws: Workspace, args: argparse.Namespace) -> int:
    from remapdsl.onnx.bench import OnnxReport, measure_on_providers, measured_providers
    from remapdsl.onnx.budgets import check_report
    from remapdsl.onnx.export import OnnxError
    from remapdsl.onnx.records import store_report

    if args.model:
        infos = [select(ws, name) for name in dict.fromkeys(args.model)]
    else:
        infos = [info for info in ws.analysis.models.values() if info.valid]
        skipped = [name for name, info in ws.analysis.models.items() if not info.valid]
        if skipped:
            print(f"skipped (errors; see remap check): {', '.join(skipped)}", file=sys.stderr)
        if not infos:
            raise UsageError(f"{args.file} has no valid model to measure")
    inputs = ws.data.x_val[:VALIDATION_BATCH] if ws.data is not None and len(ws.data.x_val) else None
    if inputs is None:
        print(f"note: parity is checked on random inputs: {ws.data_problem or 'no validation examples'}",
              file=sys.stderr)

    providers = measured_providers(_available()) if args.provider == "all" else (args.provider,)
    reports: list[OnnxReport] = []
    diagnostics: list[Diagnostic] = []
    stored = 0
    for info in infos:
        weights = None if args.untrained else find_trained(ws, info)[0]
        try:
            measured, artifact = measure_on_providers(
                info.model, ws.input_shape, info.param_count, providers,
                state_dict=weights.state if weights else None, seed=args.seed, inputs=inputs,
                exporter=args.exporter, threads=args.threads, runs=args.runs)
            if ws.store is not None and not args.no_store:
                for report in measured:
                    store_report(ws.store, report, artifact, info.model, weights.run_id if weights else None)
                stored += 1
        except OnnxError as e:
            raise UsageError(str(e)) from e
        reports += measured
        # the CLI names each model once; the same finding on the budget line is for the editor. Budgets are
        # checked against the report stored last (the CPU's when both are measured), as the editor does.
        diagnostics += [d for d in check_report(ws.analysis.document, measured[-1])
                        if d.range == info.model.name_range]

    if args.json:
        print(json.dumps({"reports": [r.to_dict() for r in reports],
                          "diagnostics": [_diagnostic_dict(d) for d in diagnostics],
                          "stored_in": str(ws.store_path) if stored else None}, indent=1))
    else:
        print(table(reports))
        print()
        sessions = {(r.session.provider, r.session.fallback): r.session for r in reports}
        for settings in sessions.values():
            print(f"{settings.provider} on {settings.device}; {settings.intra_op_threads} intra-op / "
                  f"{settings.inter_op_threads} inter-op thread(s); onnxruntime {settings.onnxruntime_version}; "
                  f"{args.runs} timed runs after {reports[0].latency[0].warmup} warm-up runs")
            if settings.fallback:
                print(f"fell back to the CPU: {settings.fallback}")
        if stored:
            print(f"recorded in {ws.store_path}")
        for d in diagnostics:
            print(d.format(str(args.file)))
    problems = [p for r in reports for p in r.problems()]
    for p in problems:
        print(f"remap bench: {p}", file=sys.stderr)
    return 1 if problems or any(d.severity == Severity.ERROR for d in diagnostics) else 0


def _available() -> list[str]:
    from remapdsl.onnx.bench import available_providers

    try:
        return available_providers()
    except ImportError:  # measuring then reports what is missing
        return []


def table(reports: list[Any]) -> str:
    header = ("model", "weights", "params", "size", "b1 p50", "b1 p95", "b64 p50", "b64 p95", "max diff", "provider")
    rows = [header]
    for r in reports:
        b1, b64 = r.at_batch(1), r.at_batch(64)
        rows.append((r.model, "trained" if r.trained else "fresh", f"{r.param_count:,}", _size(r.size_bytes),
                     _ms(b1.p50_ms), _ms(b1.p95_ms), _ms(b64.p50_ms), _ms(b64.p95_ms), f"{r.max_abs_diff:.1e}",
                     r.session.provider.removesuffix("ExecutionProvider")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        # names and words left-aligned, figures right-aligned
        cells = [c.ljust(w) if i < 2 or i == len(row) - 1 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.3f}ms"


def _size(n: int) -> str:
    return f"{n / 1e3:.1f}KB" if n < 1e6 else f"{n / 1e6:.2f}MB"


def _diagnostic_dict(d: Diagnostic) -> dict[str, Any]:
    start, end = d.range.start, d.range.end
    return {"line": start.line + 1, "character": start.character + 1, "end_line": end.line + 1,
            "end_character": end.character + 1, "severity": d.severity.label, "code": d.code, "model": d.model,
            "message": d.message}
