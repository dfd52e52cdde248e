"""`remap check FILE...`: every syntax and analysis diagnostic, compiler style."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from remapdsl.analysis import analyze
from remapdsl.cli import UsageError
from remapdsl.diagnostics import Severity
from remapdsl.parser import parse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("check", help="report every error and warning in .remap files",
                              description="Parse and analyse .remap files; print each problem as "
                                          "FILE:LINE:COL: SEVERITY: MESSAGE. Exit status 1 when there is an error.")
    p.add_argument("files", nargs="+", metavar="FILE", help=".remap files")
    p.set_defaults(run=run)


def read_source(path: str) -> str:
    """The text of a .remap file, or a UsageError saying why it cannot be read."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path} is a directory; expected a .remap file")
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None


def run(args: argparse.Namespace) -> int:
    sources = {path: read_source(path) for path in args.files}
    errors = warnings = models = 0
    for path, text in sources.items():
        result = parse(text)
        analysis = analyze(result.document, result.diagnostics, Path(path).parent)
        models += len(result.document.models)
        for d in analysis.diagnostics:
            print(d.format(path))
            errors += d.severity == Severity.ERROR
            warnings += d.severity == Severity.WARNING
    files = _plural(len(sources), "file")
    if errors or warnings:
        counts = [_plural(n, word) for n, word in ((errors, "error"), (warnings, "warning")) if n]
        print(f"{', '.join(counts)} in {files}", file=sys.stderr)
    else:
        print(f"ok: {_plural(models, 'model')} in {files}", file=sys.stderr)
    return 1 if errors else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
