"""`remap ablate FILE MODEL [--layers 0,2] [-o OUT]`: one child of MODEL per removed layer.

The children are appended to FILE as model blocks (or written to OUT as a document of their own, with
FILE's header and their ancestors); each child's name and changes are printed, and a note for every layer
that gave no child. The helpers below are shared with `remap vary`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from remapdsl.cli import UsageError
from remapdsl.cli.check import read_source
from remapdsl.cli.show import pick_model
from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.model import Document, ModelSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document
from remapdsl.search.ablation import ablate
from remapdsl.search.changes import Child
from remapdsl.search.children import Parent, appended, blocking_errors

BOM = b"\xef\xbb\xbf"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("ablate", help="derive one child per removed layer of a model",
                              description="Remove each selected layer of MODEL in turn (all but the classifier "
                                          "head and @keep layers by default). The children are appended to FILE, "
                                          "or written to OUT.")
    p.add_argument("file", metavar="FILE", help=".remap file holding MODEL")
    p.add_argument("model", metavar="MODEL", help="the parent model")
    p.add_argument("--layers", metavar="I,J", help="comma-separated layer indices to remove (default: all)")
    add_output(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = load_source(args.file, args.model)
    parent = source.parent
    layers = parse_indices(args.layers, parent.model) if args.layers is not None else None
    try:
        result = ablate(parent.model, parent.dataset, layers, parent.budget, existing_names=parent.names,
                        existing_hashes=parent.hashes)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return write_children(source, result.children, result.notes, args.output)


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the children to OUT (a complete document) instead of appending them to FILE")


# --- shared with `remap vary` ---------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A parent model picked from a file, with the file it came from."""

    path: str
    text: str
    bom: bool
    analysis: Analysis
    parent: Parent


def load_source(path: str, name: str) -> Source:
    """FILE parsed and analysed and MODEL picked; an unknown model or one with errors is a usage error."""
    text = read_source(path)
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics, Path(path).parent)
    loaded = pick_model(Path(path), analysis, name)
    errors = blocking_errors(loaded.errors)
    if errors:
        more = f" (and {len(errors) - 1} more; see `remap check {path}`)" if len(errors) > 1 else ""
        raise UsageError(f"model '{name}' has errors; fix them first: {errors[0].format(path)}{more}")
    if analysis.dataset is None:
        raise UsageError(f"the data line of {path} cannot be used, so shapes are unknown; see `remap check {path}`")
    return Source(path, text, Path(path).read_bytes().startswith(BOM), analysis,
                  Parent.of(analysis, loaded.info.model))


def parse_indices(text: str, model: ModelSpec) -> list[int]:
    """`0,2,11` → [0, 2, 11]; anything else, or an index the model does not have, is a usage error."""
    out = []
    last = len(model.layers) - 1
    for part in text.split(","):
        word = part.strip()
        if not word.isdigit():
            raise UsageError(f"--layers expects comma-separated layer indices such as 0,2; found '{word}'")
        if int(word) > last:
            raise UsageError(f"--layers: index {word} is out of range; model '{model.name}' has layers 0 to {last}")
        out.append(int(word))
    return out


def write_children(source: Source, children: Sequence[Child], notes: Sequence[str], output: str | None) -> int:
    """Print the children and notes, then append the children to FILE or write them to OUT."""
    for child in children:
        print(f"{child.model.name}: {child.describe()} ({child.info.param_count:,} parameters)")
    for note in notes:
        print(f"note: {note}")
    if not children:
        print(f"no children; {source.path} is unchanged", file=sys.stderr)
        return 0
    if output is not None:
        if Path(output).exists() and os.path.samefile(output, source.path):
            raise UsageError(f"-o names the input file {output}; leave -o out to append the children to it")
        write_atomic(output, format_document(_own_document(source, children)))
        print(f"wrote {_plural(len(children), 'model')} to {output}", file=sys.stderr)
        return 0
    write_atomic(source.path, appended(source.text, (c.model for c in children)), bom=source.bom)
    print(f"appended {_plural(len(children), 'model')} to {source.path}", file=sys.stderr)
    return 0


def _own_document(source: Source, children: Sequence[Child]) -> Document:
    """FILE's header, the parent with its ancestors (so `from` resolves), and the children."""
    document = source.analysis.document
    lineage = [source.parent.model]
    while (parent := lineage[0].parent) is not None and (model := document.model(parent)) is not None \
            and model not in lineage:
        lineage.insert(0, model)
    return Document(models=(*lineage, *(c.model for c in children)), data=document.data, train=document.train,
                    budgets=document.budgets)


def write_atomic(path: str, text: str, bom: bool = False) -> None:
    """Write `text` to `path` through a temporary file in the same folder, so a reader never sees half of it."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a directory; expected a file name")
    folder = target.parent
    try:
        mode = target.stat().st_mode & 0o777 if target.exists() else None
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write((BOM if bom else b"") + text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            if mode is not None:
                os.chmod(temp, mode)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
