"""The options and argument types that several subcommands take, and the error they all report bad input with."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from remapdsl.jobs.ray_executor import INSTALL, MAX_IN_FLIGHT, MAX_RESOURCE, RayOptions, ray_installed
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


EXECUTORS = ("local", "ray")
# the Ray executor's own options: their dests, and the flags they are given as
_RAY_FLAGS = {"address": "--address", "gpus_per_job": "--gpus-per-job", "cpus_per_job": "--cpus-per-job",
              "max_in_flight": "--max-in-flight", "shared_data": "--shared-data"}


def resource_count(text: str) -> float:
    """A number of CPUs or GPUs: a share of one (0.25) or whole ones."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.25, 1 or 2; got '{text}'") from None
    if not (value >= 0 and value <= MAX_RESOURCE):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to {MAX_RESOURCE:g}; got {text}")
    return value


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """Where queued jobs train: here (local), or on a Ray cluster with the resources each job asks for."""
    group = p.add_argument_group("executor", "where the jobs train: on this machine (local), or on a Ray cluster "
                                 "(ray; needs the distributed extra) while the store stays here")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local (default): train on this machine; ray: train as tasks on a Ray cluster")
    group.add_argument("--address", metavar="ADDR", default=None,
                       help="the Ray cluster: HOST:PORT of its head, or auto for the one this machine joined with "
                            "`ray start` (default: RAY_ADDRESS, else a Ray instance started here for this run)")
    group.add_argument("--gpus-per-job", type=resource_count, metavar="F", default=None,
                       help="GPUs each job holds; a share such as 0.25 packs four small models on one GPU "
                            "(default 0: train on CPUs)")
    group.add_argument("--cpus-per-job", type=resource_count, metavar="N", default=None,
                       help="CPUs each job holds, and its torch threads (default 1)")
    group.add_argument("--max-in-flight", type=positive_int, metavar="K", default=None,
                       help=f"jobs training on the cluster at once, at most {MAX_IN_FLIGHT:,} (default: as many as "
                            "the cluster's CPUs and GPUs hold)")
    group.add_argument("--shared-data", action="store_true", default=None,
                       help="each node reads the data set itself, from the data line's path, which every node must "
                            "be able to read (default: the data set is sent to the cluster once)")


def executor_argv(args: argparse.Namespace) -> list[str]:
    """The executor flags of `args` as `remap worker` takes them, for a worker started in a subprocess; checked
    first (UsageError), so a bad flag is said before anything starts."""
    executor_options(args)
    argv = ["--executor", args.executor]
    for dest, flag in _RAY_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None or value is False:
            continue
        argv += [flag] if value is True else [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return argv


def runs_on(executor: RayOptions | None) -> str | None:
    """The device a job queued for `executor` waits for: a cluster's devices are not this machine's, so a job
    asking for GPUs there waits for a node that has one (None: as the device setting says, on this machine)."""
    return None if executor is None else ("cuda" if executor.gpus_per_job else "cpu")


def executor_options(args: argparse.Namespace) -> RayOptions | None:
    """The Ray executor's options, or None for the local executor. A Ray option given with the local executor,
    a bad value, or Ray not being installed is a usage error."""
    given = [flag for dest, flag in _RAY_FLAGS.items() if getattr(args, dest, None) is not None]
    if args.executor == "local":
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --executor ray")
        return None
    if args.max_in_flight is not None:
        check_count("--max-in-flight", args.max_in_flight, 1, MAX_IN_FLIGHT)
    if args.cpus_per_job == 0:
        raise UsageError("--cpus-per-job must be more than 0")
    for flag, value in (("--gpus-per-job", args.gpus_per_job), ("--cpus-per-job", args.cpus_per_job)):
        if value is not None and value > 1 and value != int(value):
            raise UsageError(f"{flag} above 1 must be a whole number (Ray shares one device, or gives whole ones); "
                             f"found {value:g}")
    try:
        options = RayOptions(address=args.address, gpus_per_job=args.gpus_per_job or 0.0,
                             cpus_per_job=1.0 if args.cpus_per_job is None else args.cpus_per_job,
                             max_in_flight=args.max_in_flight, shared_data=bool(args.shared_data))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not ray_installed():
        raise UsageError(f"--executor ray needs ray, which is not installed; install it with `{INSTALL}`")
    return options


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


DEFAULT_PORT = 5006  # of `remap serve`, Bokeh's own


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="P",
                   help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on (default 127.0.0.1: this machine only). Another address exposes the "
                        "overview, which can queue and cancel training, to that network; the websocket then accepts "
                        "pages of that host only")
    p.add_argument("--no-worker", dest="worker", action="store_false",
                   help="do not start a training worker (queued jobs wait for a `remap worker`)")
    p.add_argument("--no-browser", dest="browser", action="store_false", help="print the URL and open no browser")
    add_executor_options(p)  # where the jobs train: its own, and those of the worker it starts
