"""The newest run of a store, which an overview of a folder takes its data set from."""

from __future__ import annotations

from remapdsl.store.db import Store
from remapdsl.store.newest import newest_run


def test_the_newest_run_is_the_last_created_and_none_without_runs() -> None:
    store = Store.in_memory()
    assert newest_run(store) is None
    store.add_model("a" * 64, "model a:\n    flatten\n    dense 10\n", name="a")
    for text in ("data digits", 'data mnist "x"'):
        store.add_run("a" * 64, "a", data_key=text, data_text=text, settings_key="k", settings={"epochs": 1})
    newest = newest_run(store)
    assert newest is not None and newest.data_text == 'data mnist "x"' and newest.id == 2
