"""`remap layout FILE`: 2-D positions of a file's models, kept in the store so that they stay put.

The first layout of a space is MDS on the models' pairwise distances. After that each model keeps its stored
position and a new model is placed among the others without moving them; only `--relayout` runs MDS again
(turned to keep the previous orientation) and replaces the stored layout.
"""

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
    warn_skipped,
)

STORE_HELP = ("the store where positions are kept and distances cached (default: .remap/remap.db beside FILE); "
              "created if missing, since a layout is recorded there")
SAID = {"kept": "kept", "placed": "placed", "relaid": "laid out"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("layout", help="2-D layout of the models of a file; positions are kept",
                              description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    add_space_option(p, STORE_HELP)
    add_measure_option(p)
    p.add_argument("--relayout", action="store_true",
                   help="run MDS again over the file's models and replace the stored layout (turned to keep its "
                        "orientation); without it stored positions never move")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="SMACOF iterations after classical MDS when the layout is computed afresh: the first time, "
                        "or with --relayout (default 0: classical only)")
    p.add_argument("--workers", type=int, default=2, help="processes for the distance matrix (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.refine < 0:
        raise UsageError(f"--refine must be 0 or more; found {args.refine}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1; found {args.workers}")
    measure = measure_of(args)
    models, problems = file_models(args.file)
    if not models:
        warn_skipped(problems)
        raise UsageError(f"{args.file} has no models to lay out")
    with open_space(args, create=True) as (space, store):
        assert store is not None
        members = file_members(args, space, store, models, problems)
        warn_skipped(members.problems)
        if not members.keys:
            raise UsageError(f"{args.file} has no models to lay out")
        with comparable():
            result = space.layout(members, measure, relayout=args.relayout, refine=args.refine)
        location = store.path
    points = [(name, x, y, result.status(name)) for name, (x, y) in result.positions.items()]
    if args.json:
        print(json.dumps({"space": args.space, "measure": measure, "store": str(location),
                          "stress": None if result.stress is None else number(result.stress),
                          "points": [{"model": name, "x": number(x), "y": number(y), "status": status}
                                     for name, x, y, status in points]}))
        return 0
    width = max(len(name) for name, *_ in points)
    what = f"OTMANN {measure}" if args.space == "structural" else "prediction distance"
    fit = f", stress {result.stress:.3g}" if result.stress is not None else ""
    print(f"{args.space} layout ({what}{fit}), positions kept in {location}:")
    for name, x, y, status in points:
        print(f"  {name:<{width}}  {number(x):>10.4g}  {number(y):>10.4g}  {SAID[status]}")
    counts = [f"{len(names)} {SAID[status]}" for status, names in
              (("kept", result.kept), ("placed", result.placed), ("relaid", result.relaid)) if names]
    hint = "; --relayout lays them all out afresh" if result.kept else ""
    print(", ".join(counts) + hint)
    return 0
