"""Every command that opens a store says in one line that the store is damaged, not ours or read-only, and
exits 2: never a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from remapdsl.cli import main
from remapdsl.store.db import Store, describe_database_error

FILE = """\
data digits
train epochs=1 batch=128 lr=0.001 seed=0

model small:
    flatten
    dense 16
    relu
    dense 10

model wide:
    flatten
    dense 32
    relu
    dense 10
"""


def commands(remap: Path, store: Path) -> dict[str, list[str]]:
    s = ["--store", str(store)]
    return {
        "results": ["results", str(remap), *s],
        "queue": ["queue", *s, "list"],
        "train": ["train", str(remap), "--no-onnx", *s],
        "worker": ["worker", "--until-empty", "--no-onnx", *s],
        "layout": ["layout", str(remap), *s],
        "layout --json": ["layout", str(remap), "--json", *s],
        "export": ["export", str(remap), "small", "-o", str(remap.parent / "small.onnx"), *s],
        "distance": ["distance", str(remap), "small", "wide", *s],
        "neighbours": ["neighbours", str(remap), "small", *s],
        # the demo's store is the one in its folder: the damaged one here
        "demo": ["demo", "--dir", str(store.parent.parent), "--models", "2", "--epochs", "1", "--jobs", "1",
                 "--no-onnx"],
    }


def filled_store(path: Path) -> None:
    with Store(path) as store:
        for i in range(300):  # many pages, so that damage in the middle of the file misses its first page
            store.add_model(f"h{i:04d}", f"model m{i}:\n    flatten\n" + "    dense 10\n" * 40, name=f"m{i}")
        store.add_run("h0000", "m0", data_key="d", data_text="data digits", settings_key="s", settings={})
        store.conn.execute("INSERT INTO distances VALUES ('s', 'a', 'b', NULL, 1.0)")


def malformed(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 4
    data[middle:3 * middle] = b"\xa5" * (2 * middle)
    path.write_bytes(bytes(data))


def dropped_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    for table in ("layouts", "distances", "epochs", "artifacts", "predictions", "confusion", "model_names"):
        conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.close()


def dropped_runs(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DROP TABLE jobs")
    conn.execute("DROP TABLE runs")
    conn.commit()
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("damage", [malformed, dropped_tables, dropped_runs], ids=lambda f: f.__name__)
def test_each_store_command_says_the_store_is_damaged_in_one_line(tmp_path: Path, damage: object,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    remap = tmp_path / "models.remap"
    remap.write_text(FILE)
    store = tmp_path / ".remap" / "remap.db"
    filled_store(store)
    assert callable(damage)
    damage(store)
    for name, argv in commands(remap, store).items():
        if damage is dropped_tables and name == "export":
            continue  # its lookup finds no finished run before it would reach a dropped table: nothing to say
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith(f"remap {argv[0]}: error: "), (name, err)
        assert str(store) in lines[0] and "Traceback" not in err, (name, err)
        assert any(word in lines[0] for word in ("damaged", "not a remapdsl store")), (name, err)


def test_a_readonly_connection_is_said_to_be_read_only(tmp_path: Path) -> None:
    path = tmp_path / "remap.db"
    Store(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("CREATE TABLE x(y)")
    conn.close()
    assert describe_database_error(raised.value) == (f"the store at {path.resolve()} is read-only (attempt to write a "
                                                     "readonly database); pass --store with a writable path")
