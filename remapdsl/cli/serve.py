"""`remap serve`: the model overview in the browser, a Bokeh server on the store of a workspace."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import webbrowser
from pathlib import Path

from remapdsl.cli.options import UsageError
from remapdsl.store.db import STORE_DIR, STORE_FILE, Store, StoreError

WORKER_STOP_SECONDS = 15.0
HEARTBEAT_MS = 10_000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve", help="the model overview in the browser (a Bokeh server)",
        description="Serve the model overview of a workspace's store: every model in one scatter (accuracy "
                    "against parameters, structural and prediction layouts), the data selection, drawer, "
                    "inspector and queue, updated live as workers train. Listens on 127.0.0.1 only, unless "
                    "--host names another address; then pages of that host alone may open the app's websocket. "
                    "Starts one `remap worker` for the store unless --no-worker, and stops it on exit.")
    p.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH",
                   help="a .remap file (its header gives the data set and budgets) or a workspace folder "
                        "(default: the current folder)")
    p.add_argument("--store", type=Path, metavar="DB",
                   help="the store file (default: .remap/remap.db in the workspace folder); it must exist")
    p.add_argument("--port", type=int, default=5006, metavar="P", help="port to listen on (default 5006; 0: any "
                                                                       "free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on (default 127.0.0.1, this machine only). Another address exposes the "
                        "overview, which can queue and cancel training, to that network; the websocket then "
                        "accepts pages of that host only")
    p.add_argument("--no-worker", dest="worker", action="store_false",
                   help="do not start a training worker (queued jobs wait for `remap worker`)")
    p.add_argument("--no-browser", dest="browser", action="store_false", help="print the URL, open no browser")
    p.set_defaults(run=run)


def resolve(path: Path, store: Path | None) -> tuple[Path | None, Path]:
    """The .remap file (None for a folder) and the store's path; UsageError when either is unusable."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    file = path if path.is_file() else None
    if file is not None and file.suffix != ".remap":
        raise UsageError(f"{path} is not a .remap file or a folder")
    folder = (file.parent if file is not None else path).resolve()
    location = store if store is not None else folder / STORE_DIR / STORE_FILE
    if not location.exists():
        raise UsageError(f"no store at {location}: nothing has been queued or trained there yet (run `remap train` "
                         "or `remap demo`), or pass --store DB")
    try:
        Store.open_read_only(location).close()
    except StoreError as e:
        raise UsageError(str(e)) from None
    return file, location.resolve()


def check_port(port: int) -> int:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535; found {port}")
    return port


def start_worker(store: Path) -> subprocess.Popen[bytes]:
    """One `remap worker` on the store, in its own process group (a Ctrl-C reaches the server, which stops it)."""
    return subprocess.Popen([sys.executable, "-m", "remapdsl", "worker", "--store", str(store)],
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Ask the worker to stop (its job goes back to the queue, resumable), and kill it if it does not."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    file, store_path = resolve(args.path, args.store)
    from remapdsl_server.overview.workspace import HeaderError, check_file

    if file is not None:
        try:
            check_file(file)
        except HeaderError as e:
            raise UsageError(str(e)) from None
    from remapdsl_server.overview.app import config_for
    from remapdsl_server.overview.serve import PortInUse, bind

    from remapdsl.store.services import OVERVIEW, heartbeat_service, record_service, remove_service

    try:
        bound = bind(config_for(store_path, file), args.host, args.port)
    except PortInUse as e:
        raise UsageError(str(e)) from None
    print(f"remap overview of {file or store_path} at {bound.url}", flush=True)
    worker = start_worker(store_path) if args.worker else None
    if worker is not None:
        print(f"training worker started (pid {worker.pid}); --no-worker to run none", flush=True)
    server = bound.server
    store = Store(store_path)
    record_service(store, OVERVIEW, bound.url)
    from tornado.ioloop import PeriodicCallback

    def heartbeat() -> None:
        heartbeat_service(store, OVERVIEW)

    beat = PeriodicCallback(heartbeat, HEARTBEAT_MS)
    beat.start()

    def stop(*_: object) -> None:
        server.io_loop.add_callback_from_signal(server.io_loop.stop)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.start()
        if args.browser:
            server.io_loop.add_callback(lambda: webbrowser.open(bound.url))
        server.io_loop.start()
    finally:
        beat.stop()
        server.stop()
        if worker is not None:
            stop_worker(worker)
        remove_service(store, OVERVIEW)
        store.close()
    print("overview stopped", flush=True)
    return 0
