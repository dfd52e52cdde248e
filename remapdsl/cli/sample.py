"""`remap sample N [--data NAME [--path PATH]] [--seed S] [-o FILE] [--max-params P] [--residual P]`: an initial
population.

Writes a complete `.remap` document (data and train header, then N sampled models) to FILE or stdout.
"""

from __future__ import annotations

import argparse
import sys

from remapdsl.cli.options import MAX_SAMPLED, UsageError, check_count
from remapdsl.cli.workspace import write_atomic
from remapdsl.language.catalog import describe_shape
from remapdsl.language.datasets import DATASET_KINDS, DataError, DatasetInfo, describe
from remapdsl.language.header import BUDGET_UNITS, TRAIN_OPTIONS
from remapdsl.language.layer_checks import did_you_mean
from remapdsl.language.model import Arg, DataSpec, Document, TrainSpec
from remapdsl.language.printer import format_document
from remapdsl.search.sampler import sample_models

# The paper's training recipe for the initial population: ten epochs with Adam.
TRAIN_HEADER = (("epochs", 10), ("batch", 128), ("lr", 0.001), ("optimizer", "adam"))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("sample", help="sample an initial population of models",
                              description="Draw N distinct models from REMAP's Markov chain over layer types and "
                                          "write them, with a data and train header, as a .remap document.")
    p.add_argument("n", type=int, metavar="N", help=f"number of models (1 to {MAX_SAMPLED:,})")
    p.add_argument("--data", default="digits", metavar="NAME",
                   help=f"data set: {', '.join(DATASET_KINDS)} (default digits)")
    p.add_argument("--path", metavar="PATH", help="where the data lives, for data sets that are not bundled")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler, also written as the training seed")
    p.add_argument("--max-params", default="1M", metavar="P",
                   help="parameter cap; larger networks are drawn again (default 1M; 100k, 250000 ...)")
    p.add_argument("--min-layers", type=int, default=2, metavar="L", help="fewest layers, flatten and head included")
    p.add_argument("--max-layers", type=int, default=12, metavar="L", help="most layers, flatten and head included")
    p.add_argument("--residual", type=float, default=0.0, metavar="P",
                   help="probability, 0 to 1, that a model wraps a run of its layers in a residual block (default 0: "
                        "REMAP's population, unchanged for a seed)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run)


def parse_count(text: str) -> int:
    """`100k` → 100000, `1M` → 1000000, `250000` → 250000."""
    units = BUDGET_UNITS["params"]
    word = text.strip()
    unit = word[-1] if word and word[-1] in units else ""
    try:
        value = float(word[: len(word) - len(unit)]) * units[unit]
    except ValueError:
        raise UsageError(f"--max-params expects a count such as 100k, 1M or 250000; found '{text}'") from None
    if not value >= 1 or not value.is_integer():
        raise UsageError(f"--max-params must be a whole number of at least 1; found '{text}'")
    return int(value)


def data_from_options(name: str, path: str | None) -> tuple[DataSpec, DatasetInfo]:
    """The data line `--data NAME --path PATH` asks for, and what it holds."""
    kind = DATASET_KINDS.get(name)
    if kind is None:
        names = list(DATASET_KINDS)
        raise UsageError(f"unknown data set '{name}'; expected one of {', '.join(names)}{did_you_mean(name, names)}")
    if kind.needs_path and not path:
        raise UsageError(f"data {name} needs the folder or file it lives in: --data {name} --path PATH")
    if not kind.needs_path and path:
        raise UsageError(f"data {name} is bundled and takes no --path")
    spec = DataSpec(name, path)
    try:
        return spec, describe(spec)
    except (DataError, OSError, ValueError) as e:
        raise UsageError(f"cannot use data {name}: {e}") from None


def run(args: argparse.Namespace) -> int:
    check_count("N", args.n, 1, MAX_SAMPLED)
    if not 0 <= args.seed <= TRAIN_OPTIONS["seed"].high:
        raise UsageError(f"--seed must be from 0 to {TRAIN_OPTIONS['seed'].high:.0f}; found {args.seed}")
    max_params = parse_count(args.max_params)
    if not 0 <= args.residual <= 1:  # also refuses nan
        raise UsageError(f"--residual must be a probability from 0 to 1; found {args.residual}")
    data, dataset = data_from_options(args.data, args.path)
    try:
        models = sample_models(args.n, dataset, args.seed, max_params=max_params, min_layers=args.min_layers,
                               max_layers=args.max_layers, residual=args.residual)
    except ValueError as e:
        raise UsageError(str(e)) from None
    train = TrainSpec(tuple(Arg(k, v) for k, v in (*TRAIN_HEADER, ("seed", args.seed))))
    text = format_document(Document(models=tuple(models), data=data, train=train))
    what = (f"{len(models)} models for {dataset.name} ({describe_shape(dataset.input_shape)}, "
            f"{dataset.num_classes} classes)")
    if args.output is None:
        sys.stdout.write(text)
        print(f"sampled {what}", file=sys.stderr)
    else:
        write_atomic(args.output, text)
        print(f"sampled {what} into {args.output}", file=sys.stderr)
    return 0
