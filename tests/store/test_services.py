"""Running services recorded in the store: offered only while their process lives and their heartbeat is fresh."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remapdsl.store import services
from remapdsl.store.db import Store
from remapdsl.store.services import (
    ServiceError,
    heartbeat_service,
    record_service,
    remove_service,
    running_service,
    running_services,
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "remap.db")
    yield s
    s.close()


def test_a_recorded_service_is_running_until_removed(store: Store):
    assert running_service(store, "overview") is None
    record_service(store, "overview", "http://127.0.0.1:5006/")
    assert running_service(store, "overview") == "http://127.0.0.1:5006/"
    assert running_service(store, "other") is None
    with Store.open_read_only(store.path) as reader:  # the language server reads it read-only
        assert running_service(reader, "overview") == "http://127.0.0.1:5006/"
    assert heartbeat_service(store, "overview")
    remove_service(store, "overview")
    assert running_service(store, "overview") is None and not heartbeat_service(store, "overview")


def test_a_dead_process_or_a_stale_heartbeat_is_not_offered(store: Store, monkeypatch: pytest.MonkeyPatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record_service(store, "overview", "http://127.0.0.1:1/", pid=dead.pid)
    assert running_service(store, "overview") is None
    record_service(store, "overview", "http://127.0.0.1:2/")
    assert [s.url for s in running_services(store, "overview")] == ["http://127.0.0.1:2/"]
    # the next record of the kind drops the dead one's row
    assert store.conn.execute("SELECT COUNT(*) FROM services").fetchone()[0] == 1
    later = time.time() + services.STALE_SECONDS + 1
    monkeypatch.setattr(services.time, "time", lambda: later)
    assert running_service(store, "overview") is None
    assert heartbeat_service(store, "overview") and running_service(store, "overview") == "http://127.0.0.1:2/"


def test_the_newest_of_several_running_services_is_offered(store: Store):
    record_service(store, "overview", "http://127.0.0.1:5006/")
    parent = os.getppid()  # alive: the process that started the tests
    time.sleep(0.01)
    record_service(store, "overview", "http://127.0.0.1:5007/", pid=parent)
    assert running_service(store, "overview") == "http://127.0.0.1:5007/"
    assert len(running_services(store, "overview")) == 2


def test_bad_records_are_refused(store: Store):
    with pytest.raises(ServiceError, match="URL"):
        record_service(store, "overview", "javascript:alert(1)")
    with pytest.raises(ServiceError, match="URL"):
        record_service(store, "overview", "http://")
    with pytest.raises(ServiceError, match="kind"):
        record_service(store, "", "http://127.0.0.1:5006/")
    assert running_services(store, "overview") == []


def test_a_store_of_an_older_schema_has_no_running_service(tmp_path: Path):
    import sqlite3

    from remapdsl.store import db

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in db.MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Store.open_read_only(path) as reader:  # read-only: not migrated, and asked all the same
        assert running_service(reader, "overview") is None
