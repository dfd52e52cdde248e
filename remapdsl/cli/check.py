"""`remap check FILE...`: every syntax and analysis diagnostic, compiler style, and the latency and size budgets
against the ONNX measurements in the store, when there is one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from remapdsl.cli.options import UsageError
from remapdsl.cli.workspace import read_source
from remapdsl.language.analysis import analyze
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.model import Document
from remapdsl.language.parser import parse
from remapdsl.onnx.budgets import has_measured_budgets, measured_budget_diagnostics


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("check", help="report every error and warning in .remap files",
                              description="Parse and analyse .remap files; print each problem as "
                                          "FILE:LINE:COL: SEVERITY: MESSAGE. Latency and size budgets are checked "
                                          "against the newest ONNX measurement of each model in the store, when "
                                          "there is one (a store is never created). Exit status 1 when there is "
                                          "an error, 2 when a file cannot be read.")
    p.add_argument("files", nargs="+", metavar="FILE", help=".remap files")
    p.add_argument("--store", type=Path, metavar="PATH",
                   help="the store holding the ONNX measurements (default: .remap/remap.db in each file's folder)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    errors = warnings = models = unreadable = 0
    for path in args.files:
        try:
            text = read_source(path).text
        except UsageError as e:  # one unreadable file does not hide the problems of the others
            print(f"remap check: error: {e}", file=sys.stderr)
            unreadable += 1
            continue
        result = parse(text)
        analysis = analyze(result.document, result.diagnostics, Path(path).parent)
        models += len(result.document.models)
        for d in [*analysis.diagnostics, *_measured(Path(path), result.document, args.store)]:
            print(d.format(path))
            errors += d.severity == Severity.ERROR
            warnings += d.severity == Severity.WARNING
        for info in analysis.spaces.values():
            print(f"{path}: space {info.space.name}: {info.summary()}", file=sys.stderr)
    files = _plural(len(args.files) - unreadable, "file")
    if errors or warnings:
        counts = [_plural(n, word) for n, word in ((errors, "error"), (warnings, "warning")) if n]
        print(f"{', '.join(counts)} in {files}", file=sys.stderr)
    elif len(args.files) > unreadable:
        print(f"ok: {_plural(models, 'model')} in {files}", file=sys.stderr)
    if unreadable:
        return 2
    return 1 if errors else 0


def _measured(path: Path, document: Document, store: Path | None) -> list[Diagnostic]:
    """The measured budgets' diagnostics from the store; a store that is absent or unreadable costs only these."""
    from remapdsl.store.db import Store, StoreError, default_store_path

    if not has_measured_budgets(document):
        return []
    store_path = store if store is not None else default_store_path(path)
    if not store_path.is_file():  # opening would create it
        if store is not None:
            print(f"note: no store at {store_path}; latency and size budgets of {path} not checked",
                  file=sys.stderr)
        return []
    try:
        with Store.open_read_only(store_path) as opened:
            return measured_budget_diagnostics(opened, document)
    except StoreError as e:
        print(f"note: latency and size budgets of {path} not checked: {e}", file=sys.stderr)
        return []


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
