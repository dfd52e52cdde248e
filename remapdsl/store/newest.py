"""The newest run of a store: what the overview serves when it is given a folder rather than a file (the data set
to show is the one the store's newest run was trained on)."""

from __future__ import annotations

from remapdsl.store.db import RunRow, Store, _run_row


def newest_run(store: Store) -> RunRow | None:
    """The run created last, or None in a store without runs; one row read whatever the store's size."""
    r = store.conn.execute(f"SELECT {Store._RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return _run_row(r) if r else None
