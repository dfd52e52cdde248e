"""The `remap` command. Each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from remapdsl import __version__
from remapdsl.cli.options import UsageError
from remapdsl.jobs.enqueue import EnqueueError
from remapdsl.store.db import DatabaseFailure, StoreError, describe_database_error

# Module names under remapdsl.cli, in the order `remap --help` lists them.
COMMANDS = (
    "check",
    "fmt",
    "show",
    "sample",
    "ablate",
    "vary",
    "snac",
    "distance",
    "neighbours",
    "layout",
    "export",
    "bench",
    "train",
    "worker",
    "queue",
    "results",
    "demo",
    "serve",
    "lsp",
)


# Optional dependencies, by import name, and the extra that installs each.
EXTRAS = {
    "torch": "train",
    "sklearn": "train",
    "PIL": "train",
    "ot": "distance",
    "scipy": "distance",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "cairosvg": "png",
    "ray": "distributed",
    "bokeh": "overview",
    "tornado": "overview",
}


def missing_extra_message(command: str, error: ModuleNotFoundError) -> str | None:
    """What to install when a subcommand needs an optional dependency that is absent; None if not one of ours."""
    top = (error.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    hint = " (for the CPU build of torch, run `pip install torch==2.13.0` first)" if extra == "train" else ""
    return (f"`remap {command}` needs {top}, which is not installed; install it with "
            f"`pip install 'remapdsl[{extra}]'`{hint}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remap", description="Write, check, vary, train and compare small neural "
                                     "network architectures in .remap files.")
    parser.add_argument("--version", action="version", version=f"remap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"remapdsl.cli.{name}").register(sub)
    parser.set_defaults(subcommands=sub.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand, whose usage line shows what it does take
        args.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args) or 0)
    except (UsageError, EnqueueError, StoreError) as e:
        print(f"remap {args.command}: error: {e}", file=sys.stderr)
        return 2
    except DatabaseFailure as e:  # the store went bad after it was opened: damaged, read-only, full
        print(f"remap {args.command}: error: {describe_database_error(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        message = missing_extra_message(args.command, e)
        if message is None:
            raise
        print(f"remap {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `remap results | head`: the reader left. Point stdout at devnull so the flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
