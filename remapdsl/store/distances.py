"""The store's table of pairwise distances: ``distances(space, a, b, lp, value)``, each unordered pair once.

A pair is stored in the order of its keys (``a < b``); callers order it (`remapdsl.space.distance_cache`
keeps the caching logic: what is missing, computed once, written in one go).
"""

from __future__ import annotations

from collections.abc import Sequence

from remapdsl.store.db import Store

# (a, b, lp, value), as stored
DistanceRow = tuple[str, str, float | None, float]
# Keys per query: under SQLite's limit on the parameters of one statement.
_CHUNK = 500


class DistanceTable:
    """The distances of one store (a file, or one in memory)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def rows_of(self, space: str, key: str) -> list[DistanceRow]:
        """Every stored pair of `space` that involves `key`."""
        return self.store.conn.execute(
            "SELECT a, b, lp, value FROM distances WHERE space = ? AND a = ? "
            "UNION ALL SELECT a, b, lp, value FROM distances WHERE space = ? AND b = ?",
            (space, key, space, key)).fetchall()

    def rows_from(self, space: str, keys: Sequence[str]) -> list[DistanceRow]:
        """Every stored pair of `space` whose first key is among `keys`; the caller keeps those whose second key it
        wants too (no temporary table, so reading never opens a write transaction)."""
        rows: list[DistanceRow] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += self.store.conn.execute(
                f"SELECT a, b, lp, value FROM distances WHERE space = ? AND a IN ({marks})", (space, *chunk)).fetchall()
        return rows

    def write(self, space: str, rows: Sequence[tuple[str, str, float | None, float]]) -> None:
        """Store (a, b, lp, value) rows, a < b, replacing what was stored of those pairs; in one transaction, or in
        the caller's when one is open. A store opened read-only keeps its cache as it is: the distances were
        computed for the caller all the same, and a cache is no reason to fail a reader."""
        if not rows or self.store.read_only:
            return
        with self.store.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO distances(space, a, b, lp, value) VALUES (?, ?, ?, ?, ?)",
                          [(space, *row) for row in rows])

    def forget(self, space: str, key: str) -> None:
        """Drop every stored pair of `space` that involves `key`."""
        with self.store.transaction() as c:
            c.execute("DELETE FROM distances WHERE space = ? AND (a = ? OR b = ?)", (space, key, key))
