"""The model drawer (the REMAP paper's Fig. 1B): the models a user keeps aside to compare, in the store.

One drawer per store, an ordered list of architecture hashes, so that a reload, a second browser and any other
process see the same drawer. Every change is one short transaction, and each is logged in the change feed
(`remapdsl.store.changes`, table "drawer"), which is how another view learns of it. A model removed from the
store leaves the drawer with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from remapdsl.store.db import Store

# Models the drawer holds at most: each is drawn with its chip, and a drawer is for a few to compare.
MAX_DRAWER = 500


class DrawerError(ValueError):
    """A drawer operation that cannot be done as asked; the message names the model and why."""


class Drawer:
    """The drawer of one store. Reading works on a read-only store; changing it needs a writable one."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hashes(self) -> list[str]:
        """The kept architecture hashes, in the drawer's order."""
        return [r[0] for r in self.store.conn.execute("SELECT hash FROM drawer ORDER BY position, added, hash")]

    def __contains__(self, hash: object) -> bool:
        return self.store.conn.execute("SELECT 1 FROM drawer WHERE hash = ?", (hash,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self.store.conn.execute("SELECT COUNT(*) FROM drawer").fetchone()[0])

    def add(self, hashes: Iterable[str]) -> list[str]:
        """Append models at the end, in the order given; those already kept stay where they are. The hashes
        newly added. DrawerError, and nothing added, when a hash is no model of the store or the drawer would
        hold more than `MAX_DRAWER`."""
        self._writable()
        wanted = list(dict.fromkeys(hashes))
        if any(not isinstance(h, str) for h in wanted):
            raise DrawerError("a drawer holds models by their architecture hash (text)")
        with self.store.transaction() as c:
            kept = {r[0] for r in c.execute("SELECT hash FROM drawer")}
            new = [h for h in wanted if h not in kept]
            if not new:
                return []
            known = {r[0] for r in c.execute("SELECT hash FROM models WHERE hash IN (SELECT value FROM json_each(?))",
                                             (json.dumps(new),))}
            unknown = [h for h in new if h not in known]
            if unknown:
                shown = ", ".join(_short(h) for h in unknown[:5]) + (f" and {len(unknown) - 5} more"
                                                                     if len(unknown) > 5 else "")
                raise DrawerError(f"no model {shown} in the store at {self.store.path}; nothing was added")
            if len(kept) + len(new) > MAX_DRAWER:
                raise DrawerError(f"the drawer holds at most {MAX_DRAWER} models; it has {len(kept)}, "
                                  f"{len(new)} more asked; nothing was added")
            start = c.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM drawer").fetchone()[0]
            now = time.time()
            c.executemany("INSERT INTO drawer(hash, position, added) VALUES (?, ?, ?)",
                          [(h, start + i, now) for i, h in enumerate(new)])
        return new

    def remove(self, hash: str) -> bool:
        """Take a model out of the drawer; False when it was not in it (another view took it out first).
        DrawerError when the store has no such model."""
        self._writable()
        with self.store.transaction() as c:
            if c.execute("DELETE FROM drawer WHERE hash = ?", (hash,)).rowcount:
                return True
            if c.execute("SELECT 1 FROM models WHERE hash = ?", (hash,)).fetchone() is None:
                raise DrawerError(f"no model {_short(hash)} in the store at {self.store.path}")
        return False

    def move(self, hash: str, index: int) -> list[str]:
        """Move a kept model to `index` (0 is first; past the end means last); the drawer's new order.
        DrawerError when the model is not in the drawer or the index is negative."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise DrawerError(f"a position in the drawer is a whole number from 0; found {index!r}")
        self._writable()
        with self.store.transaction():
            order = self.hashes()
            if hash not in order:
                raise DrawerError(f"model {_short(hash)} is not in the drawer")
            order.remove(hash)
            order.insert(min(index, len(order)), hash)
            self._renumber(order)
        return order

    def clear(self) -> int:
        """Empty the drawer; the number of models taken out."""
        self._writable()
        with self.store.transaction() as c:
            return int(c.execute("DELETE FROM drawer").rowcount)

    def _writable(self) -> None:
        if self.store.read_only:
            raise DrawerError(f"the store at {self.store.path} is open read-only; the drawer cannot change")

    def _renumber(self, order: list[str]) -> None:
        current = dict(self.store.conn.execute("SELECT hash, position FROM drawer").fetchall())
        # only rows whose position changes are written (and logged)
        self.store.conn.executemany("UPDATE drawer SET position = ? WHERE hash = ?",
                                    [(i, h) for i, h in enumerate(order) if current.get(h) != i])


def _short(hash: str) -> str:
    text = repr(hash)
    return text if len(text) <= 40 else text[:37] + "…'"
