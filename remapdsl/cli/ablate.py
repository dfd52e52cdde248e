"""`remap ablate FILE MODEL [--layers 0,2] [-o OUT]`: one child of MODEL per removed layer.

The children are appended to FILE as model blocks (or written to OUT as a document of their own, with
FILE's header and their ancestors); each child's name and changes are printed, and a note for every layer
that gave no child.
"""

from __future__ import annotations

import argparse

from remapdsl.cli.options import UsageError, add_output_option
from remapdsl.cli.workspace import load_source, write_children
from remapdsl.language.model import ModelSpec
from remapdsl.search.ablation import ablate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("ablate", help="derive one child per removed layer of a model",
                              description="Remove each selected layer of MODEL in turn (all but the classifier "
                                          "head and @keep layers by default). The children are appended to FILE, "
                                          "or written to OUT.")
    p.add_argument("file", metavar="FILE", help=".remap file holding MODEL")
    p.add_argument("model", metavar="MODEL", help="the parent model")
    p.add_argument("--layers", metavar="I,J", help="comma-separated layer indices to remove (default: all)")
    add_output_option(p)
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
