"""The options and argument types that several subcommands take, and the error they all report bad input with."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from remapdsl.jobs.worker import WorkerOptions

# worker processes of `remap train` and `remap demo`
DEFAULT_JOBS = 2
SPACES = ("structural", "predictions")
MEASURES = ("emd", "lp")
READ_STORE_HELP = ("the store whose cached distances are used and, for --space predictions, whose trained runs "
                   "are compared (default: .remap/remap.db beside FILE); never created")


class UsageError(Exception):
    """Bad command-line input; the message names what was wrong."""


# Upper bounds of the counts the commands take: each is far above any real use and keeps a mistyped count
# from running for hours or overflowing a library's int.
MAX_SAMPLED = 100_000  # remap sample N
MAX_CHILDREN = 10_000  # remap vary -n
MAX_CHANGES = 100  # remap vary --changes
MAX_ROWS = 50  # remap show --rows
MAX_DEMO_MODELS = 10_000
MAX_EPOCHS = 10_000
MAX_PROCESSES = 256  # worker processes of demo and train, torch threads of worker and bench
MAX_RUNS = 100_000  # remap bench --runs


def check_count(name: str, value: int, low: int, high: int) -> int:
    """`value` when it lies in [low, high]; otherwise a UsageError naming the flag and its range."""
    if value < low:
        raise UsageError(f"{name} must be at least {low}; found {value}")
    if value > high:
        raise UsageError(f"{name} must be at most {high:,}; found {value:,}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more; got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0; got {text}")
    return value


def add_store_option(p: argparse.ArgumentParser, *, nested: bool = False) -> None:
    # a sub-command's own default would overwrite a --store given before it
    p.add_argument("--store", type=Path, metavar="PATH", default=argparse.SUPPRESS if nested else None,
                   help="the store file (default: .remap/remap.db in the file's folder, or in the current folder)")


def add_trained_weights_options(p: argparse.ArgumentParser) -> None:
    """Where a file's trained weights are looked up: the store, and the epochs they were trained with."""
    p.add_argument("--store", type=Path, metavar="PATH",
                   help="the store file (default: .remap/remap.db in FILE's folder)")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="the epochs the models were trained with, if not the file's (as given to remap train)")


def add_output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the children to OUT (a complete document) instead of appending them to FILE")


def add_no_onnx_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-onnx", dest="onnx", action="store_false",
                   help="do not export trained models to ONNX and measure them with onnxruntime")


def add_cuda_graphs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cuda-graphs", choices=("auto", "off"), default="auto",
                   help="on a GPU, capture each training step in a CUDA graph where the model allows it (auto, "
                        "the default) or never (off); each run records whether it did and why not")


def worker_options(device: str, onnx: bool, cuda_graphs: str = "auto") -> WorkerOptions:
    """How `--device`, `--no-onnx` and `--cuda-graphs` train here: on the device asked for (each job's own for
    auto)."""
    return WorkerOptions(device=device if device != "auto" else None, onnx=onnx, cuda_graphs=cuda_graphs)


def device_of(device: str) -> str:
    """The device `--device` names on this machine; one that it lacks or that does not exist is a usage error."""
    from remapdsl.train.trainer import resolve_device

    try:
        return resolve_device(device)
    except ValueError as e:
        raise UsageError(str(e)) from None


def use_colour(choice: str) -> bool:
    """Whether `--colour` asks for colour: always, never, or auto (on a terminal, unless NO_COLOR is set)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def add_space_option(parser: argparse.ArgumentParser, store_help: str = READ_STORE_HELP) -> None:
    parser.add_argument("--space", choices=SPACES, default="structural",
                        help="structural: OTMANN between architectures (no training needed); "
                             "predictions: disagreement of trained models on the validation set")
    parser.add_argument("--store", metavar="PATH", help=store_help)


def add_measure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measure", choices=MEASURES,
                        help="structural distance: normalised 'emd' (default) or raw transport cost 'lp' "
                             "(REMAP's); the predictions space has one distance, the share of predictions that differ")


def measure_of(args: argparse.Namespace) -> str:
    """The measure asked for, or the space's own ('emd' for structural, 'hamming' for predictions)."""
    from remapdsl.space.model_space import check_measure

    try:
        return check_measure(args.space, args.measure)
    except ValueError:
        raise UsageError(f"--measure {args.measure} is a structural distance; the predictions space compares "
                         "predictions, with one distance") from None
