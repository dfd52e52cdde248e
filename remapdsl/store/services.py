"""Running services recorded in the store: where a `remap serve` of this store can be reached.

A service (kind "overview" for `remap serve`) records its URL with its host and process id when it starts,
beats its heartbeat while it runs (every `HEARTBEAT_SECONDS` or so), and removes its row when it stops. A
reader (the language server's hover offering "show in overview", the VS Code extension) asks
`running_service`, which answers only for a service whose heartbeat is fresh and, on this host, whose process
is alive; a service that crashed is thus never offered, and its row is replaced by the next one of its kind.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from remapdsl.store.db import Store, _process_alive

OVERVIEW = "overview"
# How often a running service should beat, and how old a heartbeat may be for the service to count as running.
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 3 * HEARTBEAT_SECONDS


class ServiceError(ValueError):
    """A service record that cannot be written as asked; the message says what was wrong."""


@dataclass(frozen=True)
class Service:
    kind: str
    url: str
    host: str
    pid: int
    started: float
    heartbeat: float


def record_service(store: Store, kind: str, url: str, pid: int | None = None) -> None:
    """Record that a service of `kind` runs in process `pid` (this one by default) on this host at `url` (http or
    https, with a host); replaces an earlier record of the same process. Records of the kind whose process is
    gone are dropped. ServiceError for an empty kind or a URL that is not one."""
    if not kind or not kind.isidentifier():
        raise ServiceError(f"a service kind is a word such as '{OVERVIEW}'; found {kind!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"a service URL is http:// or https:// with a host; found {url!r}")
    pid = os.getpid() if pid is None else pid
    host, now = socket.gethostname(), time.time()
    with store.transaction() as c:
        stale = [(h, p) for h, p, beat in c.execute("SELECT host, pid, heartbeat FROM services WHERE kind = ?",
                                                    (kind,))
                 if not _alive(h, p, beat, host, now)]
        c.executemany("DELETE FROM services WHERE kind = ? AND host = ? AND pid = ?", [(kind, *k) for k in stale])
        c.execute("INSERT OR REPLACE INTO services(kind, host, pid, url, started, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
                  (kind, host, pid, url, now, now))


def heartbeat_service(store: Store, kind: str, pid: int | None = None) -> bool:
    """Mark this process's service of `kind` as still running; False when its record is gone (then record it
    again)."""
    pid = os.getpid() if pid is None else pid
    with store.transaction() as c:
        return c.execute("UPDATE services SET heartbeat = ? WHERE kind = ? AND host = ? AND pid = ?",
                         (time.time(), kind, socket.gethostname(), pid)).rowcount > 0


def remove_service(store: Store, kind: str, pid: int | None = None) -> None:
    """Drop the record of this process's service of `kind` (when it stops)."""
    pid = os.getpid() if pid is None else pid
    with store.transaction() as c:
        c.execute("DELETE FROM services WHERE kind = ? AND host = ? AND pid = ?", (kind, socket.gethostname(), pid))


def running_services(store: Store, kind: str) -> list[Service]:
    """The services of `kind` that run now (fresh heartbeat; on this host, a live process), newest first. Reads
    only, so it works on a read-only store; a store without the services table has none."""
    if store.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'services'").fetchone() is None:
        return []
    host, now = socket.gethostname(), time.time()
    rows = store.conn.execute("SELECT kind, url, host, pid, started, heartbeat FROM services WHERE kind = ? "
                              "ORDER BY started DESC, pid DESC", (kind,)).fetchall()
    return [Service(*r) for r in rows if _alive(r[2], r[3], r[5], host, now)]


def running_service(store: Store, kind: str) -> str | None:
    """The URL of the newest running service of `kind`, or None when none runs."""
    services = running_services(store, kind)
    return services[0].url if services else None


def _alive(host: str, pid: int, heartbeat: float, this_host: str, now: float) -> bool:
    if now - heartbeat > STALE_SECONDS:
        return False
    # a process of another host cannot be asked; its heartbeat alone says
    return host != this_host or _process_alive(pid)
