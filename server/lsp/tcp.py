"""`remap lsp --tcp`: the language server on a TCP port, one client at a time.

The server has no authentication: whoever connects can read the documents it is sent, edit files through code
actions and queue trainings. So it listens on loopback unless the user allows more (`remap lsp --allow-remote`),
and takes one client at a time: a second connection is closed at once and the refusal logged, so it can neither
read the first client's answers nor speak in its name. Each client gets a server of its own (`factory`), so one
that connects after another left finds none of its documents or settings, and the port stays open when a client
leaves or sends `exit`. Frames are read as over stdio (`framing`): bounded and found again after a broken one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .framing import FrameReader, serve_messages

if TYPE_CHECKING:
    from .server import RemapServer

log = logging.getLogger(__name__)

# (family, socket address) as getaddrinfo gives them
Address = tuple[socket.AddressFamily, tuple[Any, ...]]


class ListenError(Exception):
    """The server cannot listen where it was asked; the message says where and why."""


def resolve(host: str, port: int) -> list[Address]:
    """The addresses HOST:PORT names, each once; ListenError when the host cannot be resolved."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        reason = e.strerror if isinstance(e, socket.gaierror) and e.strerror else str(e)
        raise ListenError(f"cannot resolve the host '{host}': {reason}") from None
    return list(dict.fromkeys((family, tuple(sockaddr)) for family, _, _, _, sockaddr in infos))


def is_loopback(addresses: Sequence[Address]) -> bool:
    """Whether every address is on this machine alone (127.0.0.0/8, ::1)."""
    def loopback(text: str) -> bool:
        address = ipaddress.ip_address(text.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback

    return bool(addresses) and all(loopback(str(sockaddr[0])) for _, sockaddr in addresses)


def shown(sockaddr: tuple[Any, ...]) -> str:
    """HOST:PORT, with an IPv6 host in brackets."""
    host, port = str(sockaddr[0]), sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(addresses: Sequence[Address]) -> list[socket.socket]:
    """Listening sockets on the addresses; ListenError saying which one failed and why (in use, not this
    machine's, not allowed). With port 0 the first socket picks a free port and the others take the same."""
    sockets: list[socket.socket] = []
    try:
        for family, sockaddr in addresses:
            if sockets and sockaddr[1] == 0:
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            s = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(s)
            try:
                # a port held only by connections of an earlier run (TIME_WAIT) can be taken again; one that another
                # process listens on cannot
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(sockaddr)
                s.listen(8)
            except OSError as e:
                raise ListenError(f"cannot listen on {shown(sockaddr)}: {(e.strerror or str(e)).lower()}") from None
    except ListenError:
        for s in sockets:
            s.close()
        raise
    return sockets


def serve(sockets: Sequence[socket.socket], factory: Callable[[], RemapServer]) -> None:
    """Serve clients one at a time on the listening sockets until interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(OneClient(factory).serve(sockets))


class OneClient:
    """Accepts connections and serves the first; others are refused while it stays."""

    def __init__(self, factory: Callable[[], RemapServer]) -> None:
        self.factory = factory
        self.client: str | None = None  # the connected client's address

    async def serve(self, sockets: Sequence[socket.socket]) -> None:
        servers = [await asyncio.start_server(self.connected, sock=s) for s in sockets]
        try:
            await asyncio.gather(*(s.serve_forever() for s in servers))
        finally:
            for s in servers:
                s.close()

    async def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = shown(writer.get_extra_info("peername") or ("?", 0))
        if self.client is not None:
            log.warning("refused a connection from %s: the client at %s is connected, and the server takes one "
                        "client at a time", peer, self.client)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self.client = peer
        log.info("client %s connected", peer)
        server = self.factory()
        server.protocol.set_writer(writer)
        try:
            await serve_messages(FrameReader(reader.read), server.protocol, error_handler=server.report_server_error)
        except SystemExit:
            pass  # the client sent `exit`: its session ends, the port stays open
        except OSError as e:  # the connection broke
            log.info("client %s: %s", peer, e)
        finally:
            self.client = None
            server.end_session()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            log.info("client %s left; waiting for the next", peer)
