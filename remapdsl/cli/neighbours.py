"""`remap neighbours FILE MODEL`: the models of a file closest to MODEL."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from remapdsl.cli.options import UsageError, add_measure_option, add_space_option, measure_of
from remapdsl.cli.workspace import (
    comparable,
    file_members,
    file_models,
    number,
    open_space,
    require_model,
    warn_skipped,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("neighbours", help="nearest models to one model of a file",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("model", metavar="MODEL")
    add_space_option(p)
    p.add_argument("-k", type=int, default=5, help="how many neighbours (default 5)")
    add_measure_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError(f"-k must be at least 1; found {args.k}")
    measure = measure_of(args)
    models, problems = file_models(args.file)
    require_model(args.file, args.model, models, problems)
    with open_space(args) as (space, store):
        members = file_members(args, space, store, models, problems)
        require_model(args.file, args.model, members.keys, members.problems)
        warn_skipped(members.problems)
        with comparable():
            found = space.neighbours(members, args.model, args.k, measure)
    if args.json:
        print(json.dumps({"model": args.model, "space": args.space, "measure": measure,
                          "neighbours": [{"model": n.key, "distance": number(n.distance)} for n in found]}))
        return 0
    if not found:
        print(f"{args.model} has no other models to compare with in {args.file}")
        return 0
    width = max(len(n.key) for n in found)
    what = f"OTMANN {measure}" if args.space == "structural" else "share of validation predictions that differ"
    print(f"nearest to {args.model} ({args.space}, {what}):")
    for rank, n in enumerate(found, start=1):
        print(f"  {rank}. {n.key:<{width}}  {number(n.distance):.6g}")
    return 0
