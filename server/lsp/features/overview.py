"""The model overview from the editor: the address of a `remap serve` running on a document's store.

A running overview records itself in the store (`remapdsl.store.services`); the command answers from the
server's open store, so asking costs one small query.
"""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from remapdsl.store.services import OVERVIEW, running_service

from ..commands import OVERVIEW_URL
from ..server import RemapServer  # at run time: pygls reads a command handler's annotations


def running_overview(ls: RemapServer, uri: str | None) -> str | None:
    """The URL of the overview running on the store of `uri` (or the workspace's), or None."""
    store = ls.store(uri)
    return running_service(store, OVERVIEW) if store is not None else None


def register(server: RemapServer) -> None:
    # the arguments are taken as they come and checked here (see `training`)
    @server.command(OVERVIEW_URL)
    async def overview_url(ls: RemapServer, *args: Any) -> str | None:
        uri = args[0] if args else None
        if uri is not None and not isinstance(uri, str):
            raise JsonRpcInvalidParams(f"{OVERVIEW_URL} expects a document's uri or nothing; got {uri!r}")
        return await ls.run_blocking(running_overview, ls, uri)
