"""Opening a store only to read it: nothing created, migrated or written, and readable while others write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from remapdsl.store.db import MIGRATIONS, SCHEMA_VERSION, Store, StoreError, split_sql


def make_store(path: Path) -> None:
    with Store(path) as s:
        s.add_model("h1", "model a:\n    flatten\n    dense 10\n", name="a")


def test_a_missing_store_is_a_clear_error_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / ".remap" / "remap.db"
    with pytest.raises(StoreError, match="no store at"):
        Store.open_read_only(path)
    assert not path.parent.exists()
    with pytest.raises(StoreError, match="is a folder"):
        Store.open_read_only(tmp_path)


def test_a_foreign_file_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_bytes(b"not a database at all, just some text" * 50)
    with pytest.raises(StoreError, match="not a remapdsl store"):
        Store.open_read_only(text)
    assert text.read_bytes() == b"not a database at all, just some text" * 50
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things(x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a remapdsl store"):
        Store.open_read_only(other)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    make_store(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than"):
        Store.open_read_only(path)


def test_an_older_schema_is_read_and_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO models(hash, text, created) VALUES ('h1', 'model a:', 0)")
    conn.close()
    with Store.open_read_only(path) as s:
        assert [m.hash for m in s.models()] == ["h1"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'layouts'").fetchone() is None
    conn.close()


def test_a_read_only_store_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    make_store(path)
    with Store.open_read_only(path) as s:
        assert s.read_only
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            s.add_model("h2", "model b:\n    flatten\n    dense 10\n", name="b")
    with Store(path) as s:
        assert [m.hash for m in s.models()] == ["h1"]


def test_a_store_being_written_by_another_connection_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    make_store(path)
    with Store(path) as writer, Store.open_read_only(path, timeout=0.5) as reader:
        with writer.transaction():  # the writer holds the write lock while the reader reads
            writer.add_model("h2", "model b:\n    flatten\n    dense 10\n", name="b")
            assert [m.hash for m in reader.models()] == ["h1"]
        assert [m.hash for m in reader.models()] == ["h1", "h2"]


def test_a_store_whose_writers_have_all_closed_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    make_store(path)  # closing the last connection checkpoints the WAL and removes its files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remap.db"]
    with Store.open_read_only(path) as s:
        assert s.model_names("h1") == ["a"]
    # a reader may leave SQLite's WAL files behind (it cannot remove them); the next writer to close does
    assert {p.name for p in tmp_path.iterdir()} <= {"remap.db", "remap.db-wal", "remap.db-shm"}
    Store(path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remap.db"]


def test_a_read_only_store_reads_its_distance_cache_and_keeps_it_as_it_is(tmp_path: Path) -> None:
    from remapdsl.store.distances import DistanceTable

    path = tmp_path / "remap.db"
    with Store(path) as s:
        DistanceTable(s).write("structural", [("a", "b", 1.0, 0.5)])
    with Store.open_read_only(path) as s:
        table = DistanceTable(s)
        table.write("structural", [("a", "c", 2.0, 0.7)])  # computed for the reader, not stored
        assert table.rows_from("structural", ["a"]) == [("a", "b", 1.0, 0.5)]


def test_a_read_only_store_refuses_to_keep_new_positions_in_words(tmp_path: Path) -> None:
    from remapdsl.store.db import ReadOnlyStore
    from remapdsl.store.layouts import LayoutTable, Position

    path = tmp_path / "remap.db"
    make_store(path)
    with Store.open_read_only(path) as s:
        assert LayoutTable(s).positions("structural", "value") == []
        with pytest.raises(ReadOnlyStore, match="is read-only: the positions of 1 model"):
            LayoutTable(s).write("structural", "value", [Position("h1", 0.0, 1.0)])
