"""`remap vary FILE MODEL [-n N] [--changes K] [--ops remove,replace] [--seed S] [-o OUT]`: random variations.

Each child is 1..K atomic changes away from MODEL, drawn from the chosen operators as the layers'
annotations allow; children are appended to FILE (or written to OUT) and printed with their changes.
"""

from __future__ import annotations

import argparse

from remapdsl.cli.options import MAX_CHANGES, MAX_CHILDREN, UsageError, add_output_option, check_count
from remapdsl.cli.workspace import load_source, write_children
from remapdsl.language.annotations import DEFAULT_OPS, VARIATION_OPS
from remapdsl.language.layer_checks import did_you_mean
from remapdsl.search.variation import vary

DEFAULT_CHILDREN = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("vary", help="derive random variations of a model",
                              description="Derive N distinct valid children of MODEL, each a few random atomic "
                                          "changes (prepend, remove, replace, reparameterize) away from it, as "
                                          "the layers' @keep/@allow/@deny annotations permit. The children are "
                                          "appended to FILE, or written to OUT.")
    p.add_argument("file", metavar="FILE", help=".remap file holding MODEL")
    p.add_argument("model", metavar="MODEL", help="the parent model")
    p.add_argument("-n", type=int, default=DEFAULT_CHILDREN, metavar="N",
                   help=f"number of children, 1 to {MAX_CHILDREN:,} (default {DEFAULT_CHILDREN})")
    p.add_argument("--changes", type=int, default=1, metavar="K",
                   help=f"at most K changes per child, 1 to {MAX_CHANGES} (default 1)")
    p.add_argument("--ops", metavar="OP,OP", default=",".join(DEFAULT_OPS),
                   help=f"operators to draw from, of {', '.join(VARIATION_OPS)} (default: "
                        f"{','.join(DEFAULT_OPS)}; wrap puts a run of layers in a residual block)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random changes (default 0)")
    add_output_option(p)
    p.set_defaults(run=run)


def parse_ops(text: str) -> tuple[str, ...]:
    ops = tuple(word.strip() for word in text.split(",") if word.strip())
    if not ops:
        raise UsageError(f"--ops expects operators such as remove,replace; choose from {', '.join(VARIATION_OPS)}")
    for op in ops:
        if op not in VARIATION_OPS:
            raise UsageError(f"--ops: unknown operator '{op}'{did_you_mean(op, VARIATION_OPS)}; "
                             f"expected some of {', '.join(VARIATION_OPS)}")
    return ops


def run(args: argparse.Namespace) -> int:
    check_count("-n", args.n, 1, MAX_CHILDREN)
    check_count("--changes", args.changes, 1, MAX_CHANGES)
    ops = parse_ops(args.ops)
    source = load_source(args.file, args.model)
    try:
        parent = source.parent
        result = vary(parent.model, parent.dataset, args.n, max_changes=args.changes, ops=ops, seed=args.seed,
                      budget=parent.budget, existing_hashes=parent.hashes, existing_names=parent.names)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return write_children(source, result.children, result.notes, args.output)
