"""The store's table of 2-D layouts of the model space: a position per space, measure and key.

Keys are as in the distances table (architecture hashes or run ids); `refined` says whether the layout the
position came from was refined by SMACOF, and `landmark` whether the model is a landmark of a landmark-MDS layout
(`remapdsl.space.landmarks`), so that models placed later know what they are placed among.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from remapdsl.store.db import ReadOnlyStore, Store


@dataclass(frozen=True)
class Position:
    key: str
    x: float
    y: float
    refined: bool = False
    landmark: bool = False


class LayoutTable:
    """The layouts of one store (a file, or one in memory)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def positions(self, space: str, measure: str) -> list[Position]:
        """The stored positions of one space and measure."""
        rows = self.store.conn.execute("SELECT key, x, y, refined, landmark FROM layouts WHERE space = ? AND "
                                       "measure = ?", (space, measure)).fetchall()
        return [Position(key, x, y, bool(refined), bool(landmark)) for key, x, y, refined, landmark in rows]

    def columns(self, space: str, measure: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored positions of one space and measure as columns: keys (object array of str), x and y
        (float64), in no particular order. No Python object per position: for views of many models."""
        rows = self.store.conn.execute("SELECT key, x, y FROM layouts WHERE space = ? AND measure = ?",
                                       (space, measure)).fetchall()
        keys = np.empty(len(rows), dtype=object)
        keys[:] = [r[0] for r in rows]
        xy = np.array([(r[1], r[2]) for r in rows], dtype=np.float64).reshape(len(rows), 2)
        return keys, xy[:, 0].copy(), xy[:, 1].copy()

    def write(self, space: str, measure: str, positions: Sequence[Position], *, replace: bool = False) -> None:
        """Store positions (over those of the same keys); with `replace`, the rest of the space's and measure's
        layout is dropped. One transaction, or the caller's when one is open. ReadOnlyStore when the store was
        opened read-only: positions that are not kept would move the next time."""
        if self.store.read_only:
            raise ReadOnlyStore(f"the store at {self.store.path} is read-only: the positions of {len(positions)} "
                                "model(s) laid out afresh cannot be kept there; pass --store with a writable path")
        now = time.time()
        with self.store.transaction() as c:
            if replace:
                c.execute("DELETE FROM layouts WHERE space = ? AND measure = ?", (space, measure))
            c.executemany("INSERT OR REPLACE INTO layouts(space, measure, key, x, y, refined, landmark, updated) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [(space, measure, p.key, p.x, p.y, int(p.refined), int(p.landmark), now)
                           for p in positions])
