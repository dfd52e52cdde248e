"""The model drawer kept in the store: ordered, shared by every connection, refusing unknown models."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.store.changes import change_cursor, changes_since
from remapdsl.store.db import Store
from remapdsl.store.drawer import MAX_DRAWER, Drawer, DrawerError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "remap.db")
    for name in "abcd":
        s.add_model(f"h-{name}", f"model {name}:\n    dense 10\n")
    yield s
    s.close()


def test_models_are_added_in_order_moved_removed_and_cleared(store: Store):
    drawer = Drawer(store)
    assert drawer.hashes() == [] and len(drawer) == 0
    assert drawer.add(["h-b", "h-a", "h-b"]) == ["h-b", "h-a"]
    assert drawer.add(["h-a", "h-c"]) == ["h-c"]  # a kept one stays where it is
    assert drawer.hashes() == ["h-b", "h-a", "h-c"] and "h-a" in drawer and "h-d" not in drawer
    assert drawer.move("h-c", 0) == ["h-c", "h-b", "h-a"]
    assert drawer.move("h-c", 99) == ["h-b", "h-a", "h-c"]
    assert drawer.move("h-b", 1) == ["h-a", "h-b", "h-c"] == drawer.hashes()
    assert drawer.remove("h-b") and not drawer.remove("h-b")
    assert drawer.hashes() == ["h-a", "h-c"]
    assert drawer.clear() == 2 and drawer.hashes() == []


def test_a_second_connection_sees_the_same_drawer_and_learns_of_changes_from_the_feed(store: Store):
    Drawer(store).add(["h-a"])
    with Store.open_read_only(store.path) as other:
        cursor = change_cursor(other)
        Drawer(store).add(["h-d"])
        Drawer(store).move("h-d", 0)
        assert Drawer(other).hashes() == ["h-d", "h-a"]
        with pytest.raises(DrawerError, match="read-only"):
            Drawer(other).add(["h-b"])
        batch = changes_since(other, cursor)
        assert batch.tables() == {"drawer"} and batch.model_hashes() == {"h-a", "h-d"}


def test_unknown_models_and_bad_positions_are_refused_with_nothing_changed(store: Store):
    drawer = Drawer(store)
    drawer.add(["h-a"])
    with pytest.raises(DrawerError, match=r"no model 'h-zz'.*nothing was added"):
        drawer.add(["h-b", "h-zz"])
    assert drawer.hashes() == ["h-a"]
    with pytest.raises(DrawerError, match="no model 'h-zz'"):
        drawer.remove("h-zz")
    with pytest.raises(DrawerError, match="not in the drawer"):
        drawer.move("h-b", 0)
    with pytest.raises(DrawerError, match="whole number"):
        drawer.move("h-a", -1)
    with pytest.raises(DrawerError, match="text"):
        drawer.add([3])  # type: ignore[list-item]


def test_the_drawer_is_bounded_and_a_model_removed_from_the_store_leaves_it(store: Store):
    with store.transaction() as c:
        c.executemany("INSERT INTO models(hash, text, created) VALUES (?, '', 0)",
                      [(f"x{i}",) for i in range(MAX_DRAWER + 1)])
    drawer = Drawer(store)
    with pytest.raises(DrawerError, match=f"at most {MAX_DRAWER}"):
        drawer.add([f"x{i}" for i in range(MAX_DRAWER + 1)])
    assert drawer.hashes() == []
    drawer.add(["h-a", "h-b"])
    store.conn.execute("DELETE FROM models WHERE hash = 'h-a'")
    assert drawer.hashes() == ["h-b"]
