"""`remap distance FILE MODEL_A MODEL_B`: how far apart two models are (OTMANN: raw 'lp' and normalised 'emd')."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from remapdsl.cli.options import add_space_option
from remapdsl.cli.workspace import comparable, file_members, file_models, number, open_space, require_model


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("distance", help="distance between two models of a file",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    add_space_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    models, problems = file_models(args.file)
    pair = [args.model_a, args.model_b]
    for name in pair:
        require_model(args.file, name, models, problems)
    with open_space(args) as (space, store):
        members = file_members(args, space, store, models, problems, names=list(dict.fromkeys(pair)))
        for name in pair:
            require_model(args.file, name, members.keys, members.problems)
        with comparable():
            d = space.pair(members, args.model_a, args.model_b)
    if args.space == "predictions":
        if args.json:
            print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "distance": number(d.value)}))
        else:
            print(f"{args.model_a} - {args.model_b}: predictions differ on {d.value:.2%} of the validation set")
        return 0
    assert d.lp is not None  # a structural distance always carries the raw transport cost
    lp = d.lp
    if args.json:
        print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "lp": number(lp),
                          "emd": number(d.value)}))
    else:
        print(f"{args.model_a} - {args.model_b}: OTMANN lp {number(lp):.6g}, emd {number(d.value):.6g}")
    return 0
