"""`remap layout FILE`: 2-D coordinates of a file's models from MDS on their pairwise distances."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from remapdsl import otmann
from remapdsl.cli import UsageError
from remapdsl.cli.distance import MEASURES, add_space_option, file_profiles, trained_predictions, warn_skipped


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("layout", help="MDS layout of the models of a file",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    add_space_option(p)
    p.add_argument("--measure", choices=MEASURES, default="emd",
                   help="structural distance: normalised 'emd' (default) or raw transport cost 'lp' (REMAP's)")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="SMACOF iterations after classical MDS (default 0: classical only)")
    p.add_argument("--workers", type=int, default=2, help="processes for the distance matrix (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from remapdsl.projection import embed, stress  # scipy comes with the optional `distance` extra

    if args.refine < 0:
        raise UsageError(f"--refine must be 0 or more; found {args.refine}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1; found {args.workers}")
    profiles, problems = file_profiles(args.file)
    warn_skipped(problems)
    if not profiles:
        raise UsageError(f"{args.file} has no models to lay out")
    keys = list(profiles)
    if args.space == "predictions":
        from remapdsl.prediction_distance import PredictionError, prediction_distance_matrix

        predictions = trained_predictions(args.file, keys, args.store)
        try:
            d = prediction_distance_matrix([predictions[k] for k in keys])
        except PredictionError as e:
            raise UsageError(str(e)) from None
    else:
        matrices = otmann.distance_matrix([profiles[k] for k in keys], workers=args.workers)
        d = matrices.emd if args.measure == "emd" else matrices.lp
    layout = embed(keys, d, refine=args.refine)
    fit = stress(d, layout.coords)
    if args.json:
        print(json.dumps({"space": args.space, "measure": args.measure, "stress": fit,
                          "points": [{"model": k, "x": float(x), "y": float(y)}
                                     for k, (x, y) in zip(keys, layout.coords, strict=True)]}))
        return 0
    width = max(len(k) for k in keys)
    what = f"OTMANN {args.measure}" if args.space == "structural" else "prediction distance"
    print(f"{args.space} layout ({what}, stress {fit:.3g}):")
    for k, (x, y) in zip(keys, layout.coords, strict=True):
        print(f"  {k:<{width}}  {x: .4g}  {y: .4g}")
    return 0
