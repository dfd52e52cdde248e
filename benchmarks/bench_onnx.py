"""ONNX export and onnxruntime latency for sampled models.

    python benchmarks/bench_onnx.py [--models 20] [--seed 0] [--threads 1] [--provider auto] [--json out.json]

For each model of the initial population (the sampler's Markov chain, digits input): export with the default
exporter, check, count parameters from the file, compare with torch, and time batch 1 and batch 64. A second
pass times the torch.export-based exporter on the first few models, for the choice of exporter. Exits 1 when
any model fails parity or its parameter count differs from the language's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from remapdsl.language.analysis import analyze_model
from remapdsl.language.datasets import describe
from remapdsl.language.model import ModelSpec
from remapdsl.onnx.bench import MIN_RUNS, OnnxReport, measure_model
from remapdsl.onnx.export import export_model


def sampled_models(n: int, seed: int) -> list[ModelSpec]:
    from remapdsl.search.sampler import sample_models

    return list(sample_models(n, describe(None), seed))


def summary_line(spec: ModelSpec) -> str:
    return " ".join(layer.kind for layer in spec.layers)


def table(reports: list[tuple[ModelSpec, OnnxReport]]) -> str:
    rows = ["| model | layers | params | size (KB) | export (s) | b1 p50 (ms) | b1 p95 (ms) | b64 p50 (ms) "
            "| b64 p95 (ms) | max abs diff |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for spec, r in reports:
        b1, b64 = r.at_batch(1), r.at_batch(64)
        assert b1 is not None and b64 is not None
        rows.append(f"| {r.model} | {summary_line(spec)} | {r.param_count:,} | {r.size_bytes / 1e3:.1f} "
                    f"| {r.export_seconds:.3f} | {b1.p50_ms:.3f} | {b1.p95_ms:.3f} | {b64.p50_ms:.3f} "
                    f"| {b64.p95_ms:.3f} | {r.max_abs_diff:.1e} |")
    return "\n".join(rows)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--runs", type=int, default=MIN_RUNS)
    parser.add_argument("--dynamo", type=int, default=5, help="models timed with the torch.export-based exporter")
    parser.add_argument("--json", type=Path, help="write every report here")
    args = parser.parse_args(argv)

    data = describe(None)
    specs = sampled_models(args.models, args.seed)
    reports: list[tuple[ModelSpec, OnnxReport]] = []
    start = time.perf_counter()
    for spec in specs:
        expected = analyze_model(spec, data).param_count
        report, _ = measure_model(spec, data.input_shape, expected, seed=args.seed, provider=args.provider,
                                  threads=args.threads, runs=args.runs)
        reports.append((spec, report))
    total = time.perf_counter() - start

    dynamo_seconds = []
    for spec in specs[: args.dynamo]:
        artifact, _ = export_model(spec, data.input_shape, seed=args.seed, exporter="dynamo")
        dynamo_seconds.append(artifact.export_seconds)

    session = reports[0][1].session
    print(f"{len(reports)} sampled models (seed {args.seed}), digits input {data.input_shape}; "
          f"onnxruntime {session.onnxruntime_version}, {session.provider}"
          f"{' (fell back: ' + session.fallback + ')' if session.fallback else ''}, "
          f"{session.intra_op_threads} intra-op thread(s), on {session.device}; "
          f"{args.runs} timed runs after {reports[0][1].latency[0].warmup} warm-up runs\n")
    print(table(reports))
    exports = [r.export_seconds for _, r in reports]
    b1 = [r.at_batch(1).p50_ms for _, r in reports]  # type: ignore[union-attr]
    b1_95 = [r.at_batch(1).p95_ms for _, r in reports]  # type: ignore[union-attr]
    b64 = [r.at_batch(64).p50_ms for _, r in reports]  # type: ignore[union-attr]
    b64_95 = [r.at_batch(64).p95_ms for _, r in reports]  # type: ignore[union-attr]
    print(f"\nexport ({reports[0][1].exporter} exporter, with check): median {median(exports):.3f} s, "
          f"max {max(exports):.3f} s (the first includes the exporter's one-time start-up)")
    if dynamo_seconds:
        print(f"export (torch.export-based exporter): first model {dynamo_seconds[0]:.2f} s, "
              f"median of the others {median(dynamo_seconds[1:]):.2f} s ({len(dynamo_seconds)} models)")
    print(f"latency batch 1: median p50 {median(b1):.3f} ms, median p95 {median(b1_95):.3f} ms, "
          f"max p50 {max(b1):.3f} ms")
    print(f"latency batch 64: median p50 {median(b64):.3f} ms, median p95 {median(b64_95):.3f} ms, "
          f"max p50 {max(b64):.3f} ms")
    print(f"whole pass (export, check, parity, latency) for {len(reports)} models: {total:.1f} s")

    if args.json:
        args.json.write_text(json.dumps({
            "reports": [r.to_dict() for _, r in reports],
            "dynamo_export_seconds": dynamo_seconds,
        }, indent=1))
    problems = [p for _, r in reports for p in r.problems()]
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
