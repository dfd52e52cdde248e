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
    prediction_row,
    require_model,
    trained_predictions,
    warn_skipped,
)
from remapdsl.neighbours import nearest, structural_neighbours


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
    profiles, problems = file_profiles(args.file)
    require_model(args.file, args.model, profiles, problems)
    warn_skipped(problems)
    if args.space == "predictions":
        names = list(profiles)
        predictions = trained_predictions(args.file, names, args.store)
        others = [n for n in names if n != args.model]
        found = nearest(others, prediction_row(args.model, others, predictions), args.k)
    else:
        found = structural_neighbours(profiles, args.model, args.k, args.measure)
    if args.json:
        print(json.dumps({"model": args.model, "space": args.space, "measure": args.measure,
                          "neighbours": [{"model": n.key, "distance": n.distance} for n in found]}))
        return 0
    if not found:
        print(f"{args.model} has no other models to compare with in {args.file}")
        return 0
    width = max(len(n.key) for n in found)
    what = f"OTMANN {args.measure}" if args.space == "structural" else "share of validation predictions that differ"
    print(f"nearest to {args.model} ({args.space}, {what}):")
    for rank, n in enumerate(found, start=1):
        print(f"  {rank}. {n.key:<{width}}  {n.distance:.6g}")
    return 0
