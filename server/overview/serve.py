"""The overview's Bokeh server: one application at `/`, SNAC chips at `/chip/...` and `/diff/...`, bound to
loopback unless a host is named (then only that host's pages may open the websocket)."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import subprocess
import sys
import webbrowser
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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


def check_port(host: str, port: int) -> None:
    """PortInUse unless `port` can be bound on `host` now (checked before anything is opened or written)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use; pass another --port (0 picks a free one)") from None
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


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


# --- running it: the worker beside it, the service record, stopping -----------------------------------------

WORKER_STOP_SECONDS = 15.0
HEARTBEAT_MS = 10_000


def start_worker(store: Path, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """One `remap worker` on the store with `args` (its executor flags), in a session of its own (a Ctrl-C reaches
    the server, which stops it)."""
    return subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(store), *args],
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Ask the worker to stop (its job goes back to the queue and resumes later), and kill it if it does not."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def serve(config: ServeConfig, *, host: str = LOOPBACK, port: int = DEFAULT_PORT, worker: bool = True,
          worker_args: Sequence[str] = (), browser: bool = True, out: TextIO = sys.stdout) -> int:
    """Serve the overview until SIGINT or SIGTERM: bind (PortInUse when the port is taken: nothing is started or
    written then), start the worker, record the URL in the store for the editor, open the browser."""
    from remapdsl_server.overview.workspace import read_header
    from tornado.ioloop import PeriodicCallback

    from remapdsl.store.db import Store
    from remapdsl.store.services import OVERVIEW, heartbeat_service, record_service, remove_service

    bound = bind(config, host, port)
    print(f"remap overview of {config.file or config.store_path} at {bound.url}", file=out, flush=True)
    process = start_worker(config.store_path, worker_args) if worker else None
    if process is not None:
        print(f"training worker started (pid {process.pid}); --no-worker runs none", file=out, flush=True)
    server = bound.server
    store = Store(config.store_path)
    record_service(store, OVERVIEW, bound.url)
    read_header(config.file, store)  # the data set loads once, before the first page asks

    def heartbeat() -> None:
        heartbeat_service(store, OVERVIEW)

    beat = PeriodicCallback(heartbeat, HEARTBEAT_MS)

    def stop(*_: object) -> None:
        server.io_loop.add_callback_from_signal(server.io_loop.stop)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        beat.start()
        server.start()
        if browser:
            server.io_loop.add_callback(lambda: webbrowser.open(bound.url))
        server.io_loop.start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        beat.stop()
        server.stop()
        if process is not None:
            stop_worker(process)
        remove_service(store, OVERVIEW)
        store.close()
    print("overview stopped", file=out, flush=True)
    return 0
