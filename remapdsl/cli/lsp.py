"""`remap lsp`: the language server, over stdio (editors start it so) or TCP."""

from __future__ import annotations

import argparse
import logging

from remapdsl.cli.options import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lsp", help="run the language server (stdio by default)",
                              description="Run the remap language server: diagnostics, SNAC hovers, completion, "
                                          "code lenses, and code actions that ablate, vary and train models.")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on HOST:PORT instead of talking over stdio")
    p.add_argument("--log-file", metavar="FILE", help="also write the server's own log to FILE")
    p.set_defaults(run=run)


def tcp_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--tcp expects HOST:PORT such as 127.0.0.1:2087; found '{text}'")
    return host, int(port)


def run(args: argparse.Namespace) -> int:
    address = tcp_address(args.tcp) if args.tcp else None
    if args.log_file:
        try:
            handler = logging.FileHandler(args.log_file, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write the log file {args.log_file}: {e.strerror or e}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    from remapdsl_server.lsp.app import build_server

    server = build_server()
    if address is None:
        server.start_io()
    else:
        server.start_tcp(*address)
    return 0
