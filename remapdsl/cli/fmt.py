"""`remap fmt FILE... [--check]`: rewrite .remap files in their canonical form."""

from __future__ import annotations

import argparse
import sys

from remapdsl.cli.workspace import read_source, write_atomic
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("fmt", help="format .remap files in place",
                              description="Rewrite .remap files in the canonical layout. Files with syntax errors "
                                          "are left untouched and their errors reported.")
    p.add_argument("files", nargs="+", metavar="FILE", help=".remap files")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files that would change and exit 1 if there are any")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sources = {path: read_source(path) for path in args.files}
    broken = changed = 0
    for path, source in sources.items():
        text = source.text
        result = parse(text)
        if result.diagnostics:
            broken += 1
            for d in result.diagnostics:
                print(d.format(path), file=sys.stderr)
            continue
        formatted = format_document(result.document)
        if formatted == text:
            continue
        changed += 1
        if args.check:
            print(path)
        else:
            # an editor or a worker reading the file meanwhile sees the old text or the new, never half of one
            write_atomic(path, formatted, bom=source.bom)
    verb = "would be reformatted" if args.check else "reformatted"
    unchanged = len(sources) - changed - broken
    parts = [f"{changed} {'file' if changed == 1 else 'files'} {verb}", f"{unchanged} unchanged"]
    if broken:
        parts.append(f"{broken} with syntax errors left unchanged")
    print(", ".join(parts), file=sys.stderr)
    return 1 if broken or (args.check and changed) else 0
