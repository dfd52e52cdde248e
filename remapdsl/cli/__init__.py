"""The `remap` command. Each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

from remapdsl import __version__

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
)


class UsageError(Exception):
    """Bad command-line input; the message names what was wrong."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remap", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"remap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"remapdsl.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as e:
        print(f"remap {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
