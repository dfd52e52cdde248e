"""The overview's Bokeh server: one application at `/`, SNAC chips at `/chip/...` and `/diff/...`, bound to
loopback unless a host is named (then only that host's pages may open the websocket)."""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.server.server import Server
from remapdsl_server.overview.app import make_document_handler
from remapdsl_server.overview.chips import ROUTE, ChipCache, ChipHandler
from remapdsl_server.overview.state import ServeConfig

log = logging.getLogger("remapdsl.overview")
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5006


class PortInUse(OSError):
    """The port is taken (or cannot be bound); the message names host and port."""


@dataclass(frozen=True)
class Bound:
    server: Server
    url: str


def free_port(host: str) -> int:
    """A port the system has free on `host` now (for --port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def origins(host: str, port: int) -> list[str]:
    """The pages allowed to open the websocket: this host's (loopback: both of its names)."""
    if host in (LOOPBACK, "localhost", "::1"):
        return [f"{LOOPBACK}:{port}", f"localhost:{port}"]
    return [f"{host}:{port}"]


def url_of(host: str, port: int) -> str:
    shown = LOOPBACK if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def bind(config: ServeConfig, host: str = LOOPBACK, port: int = DEFAULT_PORT) -> Bound:
    """The server, listening (not yet serving: its IOLoop runs it). PortInUse when the port is taken."""
    if port == 0:
        port = free_port(host)
    app = Application(FunctionHandler(make_document_handler(config)))
    cache = ChipCache(config.store_path)
    try:
        server = Server({"/": app}, address=host, port=port, allow_websocket_origin=origins(host, port),
                        extra_patterns=[(ROUTE, ChipHandler, {"cache": cache})], check_unused_sessions_milliseconds=
                        10_000, unused_session_lifetime_milliseconds=30_000)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use; pass another --port (0 picks a free one)") from None
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return Bound(server, url_of(host, port))
