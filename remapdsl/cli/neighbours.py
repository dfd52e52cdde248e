"""`remap neighbours FILE MODEL`: the models of a file closest to MODEL."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from remapdsl.cli import UsageError
from remapdsl.cli.distance import (
    MEASURES,
    add_space_option,
    file_profiles,
    require_model,
    require_trained_runs,
    warn_skipped,
)
from remapdsl.neighbours import structural_neighbours


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("neighbours", help="nearest models to one model of a file",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("model", metavar="MODEL")
    add_space_option(p)
    p.add_argument("-k", type=int, default=5, help="how many neighbours (default 5)")
    p.add_argument("--measure", choices=MEASURES, default="emd",
                   help="structural distance: normalised 'emd' (default) or raw transport cost 'lp'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError(f"-k must be at least 1; found {args.k}")
    if args.space == "predictions":
        require_trained_runs(args.file, [args.model])
    profiles, problems = file_profiles(args.file)
    require_model(args.file, args.model, profiles, problems)
    warn_skipped(problems)
    found = structural_neighbours(profiles, args.model, args.k, args.measure)
    if args.json:
        print(json.dumps({"model": args.model, "space": args.space, "measure": args.measure,
                          "neighbours": [{"model": n.key, "distance": n.distance} for n in found]}))
        return 0
    if not found:
        print(f"{args.model} has no other models to compare with in {args.file}")
        return 0
    width = max(len(n.key) for n in found)
    print(f"nearest to {args.model} ({args.space}, OTMANN {args.measure}):")
    for rank, n in enumerate(found, start=1):
        print(f"  {rank}. {n.key:<{width}}  {n.distance:.6g}")
    return 0
