"""`remap lsp`: the language server, over stdio (editors start it so) or TCP."""

from __future__ import annotations

import argparse
import logging
import re
import sys

from remapdsl.cli.options import UsageError

# PORT, HOST:PORT or [IPv6]:PORT
_ADDRESS = re.compile(r"(?:\[(?P<v6>[^\]]*)\]:|(?P<host>[^:\[\]]*):)?(?P<port>[^:]*)")
TCP_LOG = "remapdsl_server.lsp.tcp"
TCP_HELP = ("listen on TCP instead of talking over stdio: PORT alone listens on 127.0.0.1; HOST:PORT or "
            "[IPv6]:PORT on that host (one other than this machine's loopback needs --allow-remote); 0 picks a "
            "free port, printed on stderr. One client at a time")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lsp", help="run the language server (stdio by default)",
                              description="Run the remap language server: diagnostics, SNAC hovers, completion, "
                                          "code lenses, and code actions that ablate, vary and train models.")
    p.add_argument("--tcp", metavar="[HOST:]PORT", help=TCP_HELP)
    p.add_argument("--allow-remote", action="store_true",
                   help="let --tcp listen on an address other machines can reach; the server has no "
                        "authentication, so anyone who reaches the port can read and edit the workspace")
    p.add_argument("--log-file", metavar="FILE", help="also write the server's own log to FILE")
    p.set_defaults(run=run)


def tcp_address(text: str) -> tuple[str, int]:
    """(host, port) of `--tcp`: PORT, HOST:PORT or [IPv6]:PORT; the host defaults to 127.0.0.1."""
    found = _ADDRESS.fullmatch(text)
    if found is None and text.count(":") > 1 and "[" not in text:
        raise UsageError(f"--tcp: an IPv6 host goes in brackets, as in [::1]:2087; found '{text}'")
    if found is None:
        raise UsageError(f"--tcp expects PORT, HOST:PORT or [IPv6]:PORT such as 2087 or 127.0.0.1:2087; found '{text}'")
    host = found["v6"] if found["v6"] is not None else found["host"]
    port = found["port"]
    if not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--tcp: the port must be a number from 0 to 65535; found '{port}' in '{text}'")
    if host is not None and not host:
        raise UsageError(f"--tcp: the host is empty in '{text}'; give PORT alone for 127.0.0.1")
    return host or "127.0.0.1", int(port)


def run(args: argparse.Namespace) -> int:
    address = tcp_address(args.tcp) if args.tcp else None
    if args.allow_remote and address is None:
        raise UsageError("--allow-remote applies to --tcp only")
    if args.log_file:
        try:
            handler = logging.FileHandler(args.log_file, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write the log file {args.log_file}: {e.strerror or e}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # the server's warnings (broken frames, refused connections) on stderr too, which editors keep as its log, and
    # over TCP the clients that come and go
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("remap lsp: %(message)s"))
    stderr.addFilter(lambda record: record.levelno >= logging.WARNING or record.name == TCP_LOG)
    logging.getLogger("remapdsl_server").addHandler(stderr)
    logging.getLogger(TCP_LOG).setLevel(logging.INFO)
    from remapdsl_server.lsp.app import build_server

    if address is None:
        build_server().start_io()
        return 0
    from remapdsl_server.lsp import tcp

    try:
        addresses = tcp.resolve(*address)
        remote = not tcp.is_loopback(addresses)
        if remote and not args.allow_remote:
            raise UsageError(f"--tcp {args.tcp} would listen on {', '.join(tcp.shown(a) for _, a in addresses)}, "
                             "which other machines can reach, and the server has no authentication; pass "
                             "--allow-remote to allow it, or give PORT alone for 127.0.0.1")
        sockets = tcp.listen(addresses)
    except tcp.ListenError as e:
        raise UsageError(str(e)) from None
    listening = ", ".join(tcp.shown(s.getsockname()) for s in sockets)
    if remote:
        print(f"remap lsp: warning: listening on {listening}, which other machines can reach; the server has no "
              "authentication: anyone who reaches this port can read and edit the workspace", file=sys.stderr)
    print(f"remap lsp: listening on {listening}, one client at a time", file=sys.stderr, flush=True)
    tcp.serve(sockets, build_server)
    return 0
