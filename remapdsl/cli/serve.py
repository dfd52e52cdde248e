"""`remap serve`: the model overview in the browser, a Bokeh server on the store of a workspace."""

from __future__ import annotations

import argparse
from pathlib import Path

from remapdsl.cli.options import UsageError, add_serve_options, executor_options
from remapdsl.cli.workspace import check_serving, serve_file
from remapdsl.store.db import STORE_DIR, STORE_FILE, Store, StoreError


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
    add_serve_options(p)
    p.set_defaults(run=run)


def resolve(path: Path, store: Path | None, args: argparse.Namespace) -> tuple[Path | None, Path]:
    """The .remap file (None for a folder) and the store's path; UsageError when either is unusable or the port is
    taken. The store is opened last, so that nothing is touched when anything else is wrong."""
    executor_options(args)  # the worker's flags, said before anything else
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    file = path if path.is_file() else None
    if file is not None and file.suffix != ".remap":
        raise UsageError(f"{path} is not a .remap file or a folder")
    check_serving(file, args)
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


def run(args: argparse.Namespace) -> int:
    file, store_path = resolve(args.path, args.store, args)
    return serve_file(file, store_path, args)
