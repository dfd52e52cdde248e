"""The store's change feed: what was written since a reader last looked, so a poller rereads only that.

Triggers (schema version 3, `db._OVERVIEW_TABLES`) append one entry to the `changes` table for every insert,
update or delete of the tables a view of the store shows: models, model_names, runs, epochs, jobs (not their
heartbeats), artifacts, confusion, predictions, layouts and the drawer. Each entry has a sequence number that
only grows (`seq`), the table (`tbl`), the operation (`op`), the changed row's key (`key`, as text: a hash, a run
or job id, "run:epoch", "space:measure:key", ...), and where the row belongs to a model or a run, its
architecture hash (`model_hash`) and run id (`run_id`). Every writer, whatever process or version of its code,
feeds the log, since SQLite runs the triggers in the writer's own transaction.

A reader's contract:

1. take `change_cursor(store)` BEFORE reading the state it shows (a write between the two is then reported
   again, which is harmless, rather than lost);
2. poll `changes_since(store, cursor)`, apply the batch and keep `batch.cursor` for the next poll;
3. when `batch.reread` is true, its cursor fell behind the entries kept (the log keeps the newest
   `CHANGES_KEPT` or more and drops older ones a thousand at a time), so it must read the whole state again
   and carry on from `batch.cursor`.

All of this works on a read-only store (`Store.open_read_only`); a store of an older schema (no log) answers
every poll with `reread` until it is migrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from remapdsl.store.db import Store

# Entries one poll reads at most; a reader that was away for longer reads in several polls (`ChangeBatch.more`).
DEFAULT_LIMIT = 5_000


@dataclass(frozen=True)
class Change:
    """One logged write."""

    seq: int
    table: str  # models | model_names | runs | epochs | jobs | artifacts | confusion | predictions | layouts | drawer
    op: str  # insert | update | delete
    key: str
    model_hash: str | None
    run_id: int | None


@dataclass(frozen=True)
class ChangeBatch:
    """The changes after a cursor, oldest first, and the cursor to poll from next.

    `reread`: the reader's cursor fell behind the log (or the store has no log), so `changes` is empty and the
    reader must read everything again. `more`: the limit cut the batch short; poll again at once.
    """

    changes: tuple[Change, ...]
    cursor: int
    reread: bool = False
    more: bool = False

    def tables(self) -> frozenset[str]:
        """The tables that changed."""
        return frozenset(c.table for c in self.changes)

    def model_hashes(self, *tables: str) -> frozenset[str]:
        """The architectures touched (by changes of `tables`, or of any table)."""
        return frozenset(c.model_hash for c in self.changes
                         if c.model_hash is not None and (not tables or c.table in tables))

    def run_ids(self, *tables: str) -> frozenset[int]:
        """The runs touched (by changes of `tables`, or of any table)."""
        return frozenset(c.run_id for c in self.changes if c.run_id is not None and (not tables or c.table in tables))

    def of(self, table: str) -> tuple[Change, ...]:
        """The changes of one table, in order."""
        return tuple(c for c in self.changes if c.table == table)


def _has_log(store: Store) -> bool:
    return store.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'").fetchone() \
        is not None


def change_cursor(store: Store) -> int:
    """The sequence number of the newest change: a reader that has just read everything polls from here."""
    if not _has_log(store):
        return 0
    r = store.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(r[0]) if r else 0


def changes_since(store: Store, cursor: int, limit: int = DEFAULT_LIMIT) -> ChangeBatch:
    """The changes after `cursor`, at most `limit` of them (1 to 100,000), oldest first.

    ValueError for a negative cursor or a limit out of range. A cursor ahead of the log (a store replaced by
    another file) is treated as fallen behind: the reader rereads.
    """
    if cursor < 0:
        raise ValueError(f"a change cursor is 0 or more; found {cursor}")
    if not 1 <= limit <= 100_000:
        raise ValueError(f"the limit of changes read at once must be from 1 to 100000; found {limit}")
    if not _has_log(store):
        return ChangeBatch((), 0, reread=True)
    # one read transaction, so the newest sequence number and the entries agree
    with store.snapshot():
        newest = change_cursor(store)
        oldest = store.conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        # everything up to `pruned` is gone: the oldest kept entry follows it, or, with none kept, the newest
        pruned = int(oldest) - 1 if oldest is not None else newest
        if cursor < pruned or cursor > newest:
            return ChangeBatch((), newest, reread=True)
        rows = store.conn.execute("SELECT seq, tbl, op, key, model_hash, run_id FROM changes WHERE seq > ? "
                                  "ORDER BY seq LIMIT ?", (cursor, limit + 1)).fetchall()
    more = len(rows) > limit
    changes = tuple(Change(int(seq), tbl, op, str(key), model_hash, None if run_id is None else int(run_id))
                    for seq, tbl, op, key, model_hash, run_id in rows[:limit])
    return ChangeBatch(changes, changes[-1].seq if changes else cursor, more=more)
