"""The experiment store: one SQLite file (WAL) shared by the editor, the overview and the workers.

Models are keyed by their architecture hash; a run is one training of a model on a data set with settings;
finished epochs, validation predictions, confusion matrices and artifacts (checkpoints and ONNX files on
disk, referenced by path) hang off runs, and queue jobs point at runs. An artifact inside the store's folder
is referenced relative to that folder, so the store keeps finding its files whatever the current folder of
the process that opens it, and after the whole workspace is moved. Several processes read and write at
once: WAL lets readers go on while one writer commits, every write is a short ``BEGIN IMMEDIATE``
transaction (so a writer waits for the lock up front instead of failing half-way), and the busy timeout
makes waiting for the lock the normal case rather than a "database is locked" error. Processes that only
watch (the language server's lenses and pollers, `remap check`) open the file read-only
(`Store.open_read_only`): they never create, migrate or write it.

The schema is versioned with ``PRAGMA user_version``: ``MIGRATIONS[i]`` upgrades version i to i + 1.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

STORE_DIR = ".remap"
STORE_FILE = "remap.db"
ORIGINS = ("sampled", "ablation", "variation", "handcrafted", "user")
BUSY_TIMEOUT_MS = 30_000
# What `Store.in_memory` is opened on.
IN_MEMORY = ":memory:"
# The folder beside the store file where the store writes checkpoints, and the names it gives them there: only
# such files are ever deleted by the store. Anything else an artifact row names is a reference, read at most.
CHECKPOINTS = "checkpoints"
CHECKPOINT_NAME = re.compile(r"run-\d+-epoch-\d+-[0-9a-f]{8}\.pt")
# `_write_atomically`'s partial checkpoint: `.<checkpoint name>.<pid>.tmp`
TEMP_NAME = re.compile(r"\.run-\d+-epoch-\d+-[0-9a-f]{8}\.pt\.(?P<pid>\d+)\.tmp")
# the tables that make a SQLite file one of ours
OWN_TABLES = frozenset({"models", "runs", "jobs"})


class RunStatus(str, Enum):
    """Where a run or a job stands; the values are the strings stored. A job ends done, failed or cancelled:
    only a run is "stopped" (early stopping: done, with fewer epochs than planned)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # the stored word in messages and f-strings, not "RunStatus.DONE"
        return self.value


RUN_STATUSES = tuple(RunStatus)
JOB_STATUSES = tuple(s for s in RunStatus if s is not RunStatus.STOPPED)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
ENDED = tuple(s for s in RunStatus if s not in ACTIVE)
# a run in one of these statuses has a result worth keeping: never trained again unless forced
FINISHED = (RunStatus.DONE, RunStatus.STOPPED)

def _logged(table: str, op: str, key: str, model_hash: str = "NULL", run_id: str = "NULL", *,
            columns: str = "") -> str:
    """A trigger that logs one change of `table` (`op`: insert, update, delete) in the changes table; `key`,
    `model_hash` and `run_id` are SQL over the row (NEW or OLD)."""
    event = f"{op.upper()}{' OF ' + columns if columns else ''}"
    return (f"CREATE TRIGGER {table}_{op}_logged AFTER {event} ON {table} BEGIN "
            f"INSERT INTO changes(tbl, op, key, model_hash, run_id) VALUES ('{table}', '{op}', {key}, {model_hash}, "
            f"{run_id}); END;\n")


def _model_of(run: str) -> str:
    return f"(SELECT model_hash FROM runs WHERE id = {run})"


# What the overview needs of the store. A log of changes that triggers fill, so that a reader asks what changed
# since its cursor instead of rereading everything (`remapdsl.store.changes`); it keeps the newest
# `CHANGES_KEPT` entries or more, pruned a thousand at a time. The drawer of kept models (`remapdsl.store.drawer`)
# and the running services (`remap serve`) with their URLs (`remapdsl.store.services`). A position in a layout says
# whether its model is a landmark of a landmark-MDS layout (`remapdsl.space.landmarks`). A job's heartbeat
# (heartbeat, lease_until) is not a change worth logging: only the job's other columns are.
CHANGES_KEPT = 20_000
_OVERVIEW_TABLES = f"""
    CREATE TABLE changes(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL,
        op TEXT NOT NULL,
        key TEXT NOT NULL,
        model_hash TEXT,
        run_id INTEGER
    );
    CREATE TABLE drawer(
        hash TEXT PRIMARY KEY REFERENCES models(hash) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        added REAL NOT NULL
    );
    CREATE TABLE services(
        kind TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        url TEXT NOT NULL,
        started REAL NOT NULL,
        heartbeat REAL NOT NULL,
        PRIMARY KEY(kind, host, pid)
    );
    ALTER TABLE layouts ADD COLUMN landmark INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX artifacts_model ON artifacts(model_hash, kind);
    CREATE TRIGGER changes_pruned AFTER INSERT ON changes WHEN NEW.seq % 1000 = 0
    BEGIN DELETE FROM changes WHERE seq <= NEW.seq - {CHANGES_KEPT}; END;
""" + "".join((
    *(_logged("models", op, f"{row}.hash", f"{row}.hash") for op, row in
      (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))),
    *(_logged("model_names", op, "NEW.source || ':' || NEW.name", "NEW.hash") for op in ("insert", "update")),
    *(_logged("runs", op, "NEW.id", "NEW.model_hash", "NEW.id") for op in ("insert", "update")),
    _logged("epochs", "insert", "NEW.run_id || ':' || NEW.epoch", _model_of("NEW.run_id"), "NEW.run_id"),
    _logged("jobs", "insert", "NEW.id", _model_of("NEW.run_id"), "NEW.run_id"),
    _logged("jobs", "update", "NEW.id", _model_of("NEW.run_id"), "NEW.run_id",
            columns="status, priority, position, worker, attempts, cancel_requested, error"),
    _logged("jobs", "delete", "OLD.id", _model_of("OLD.run_id"), "OLD.run_id"),
    _logged("artifacts", "insert", "NEW.id", f"COALESCE(NEW.model_hash, {_model_of('NEW.run_id')})", "NEW.run_id"),
    _logged("confusion", "insert", "NEW.run_id", _model_of("NEW.run_id"), "NEW.run_id"),
    _logged("predictions", "insert", "NEW.run_id", _model_of("NEW.run_id"), "NEW.run_id"),
    *(_logged("layouts", op, f"{row}.space || ':' || {row}.measure || ':' || {row}.key",
              f"CASE WHEN {row}.space = 'structural' THEN {row}.key END",
              f"CASE WHEN {row}.space = 'predictions' THEN CAST({row}.key AS INTEGER) END") for op, row in
      (("insert", "NEW"), ("delete", "OLD"))),
    *(_logged("drawer", op, f"{row}.hash", f"{row}.hash") for op, row in
      (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))),
))


MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE models(
        hash TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        params INTEGER,
        flops INTEGER,
        parent TEXT,
        origin TEXT NOT NULL DEFAULT 'user',
        changes TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE model_names(
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL REFERENCES models(hash) ON DELETE CASCADE,
        updated REAL NOT NULL,
        PRIMARY KEY(source, name)
    );
    CREATE INDEX model_names_hash ON model_names(hash);
    CREATE TABLE runs(
        id INTEGER PRIMARY KEY,
        model_hash TEXT NOT NULL REFERENCES models(hash),
        model_name TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        data_key TEXT NOT NULL,
        data_text TEXT NOT NULL,
        base_dir TEXT NOT NULL DEFAULT '',
        settings_key TEXT NOT NULL,
        settings TEXT NOT NULL,
        device TEXT NOT NULL DEFAULT 'auto',
        status TEXT NOT NULL DEFAULT 'queued',
        reason TEXT NOT NULL DEFAULT '',
        params INTEGER,
        flops INTEGER,
        n_train INTEGER,
        val_acc REAL,
        val_loss REAL,
        seconds REAL,
        used_device TEXT,
        created REAL NOT NULL,
        started REAL,
        finished REAL
    );
    CREATE INDEX runs_key ON runs(model_hash, data_key, settings_key);
    CREATE TABLE epochs(
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        train_loss REAL NOT NULL,
        train_acc REAL NOT NULL,
        val_loss REAL NOT NULL,
        val_acc REAL NOT NULL,
        seconds REAL NOT NULL,
        recorded REAL NOT NULL,
        PRIMARY KEY(run_id, epoch)
    );
    CREATE TABLE predictions(
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        dtype TEXT NOT NULL,
        classes BLOB NOT NULL
    );
    CREATE TABLE confusion(
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        matrix TEXT NOT NULL,
        per_class TEXT NOT NULL
    );
    CREATE TABLE artifacts(
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        model_hash TEXT REFERENCES models(hash) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        epoch INTEGER,
        meta TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX artifacts_run ON artifacts(run_id, kind);
    CREATE TABLE jobs(
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,
        priority INTEGER NOT NULL DEFAULT 0,
        position REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        worker TEXT,
        lease_until REAL,
        heartbeat REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        started REAL,
        finished REAL
    );
    CREATE INDEX jobs_order ON jobs(status, priority DESC, position, id);
    CREATE TABLE distances(space TEXT, a TEXT, b TEXT, lp REAL, value REAL NOT NULL, PRIMARY KEY(space, a, b));
    """,
    # 2: positions in the 2-D layouts of the model space, kept so that a new model is placed among the others
    # without moving them (keys as in distances: architecture hashes or run ids)
    """
    CREATE TABLE layouts(
        space TEXT NOT NULL,
        measure TEXT NOT NULL,
        key TEXT NOT NULL,
        x REAL NOT NULL,
        y REAL NOT NULL,
        refined INTEGER NOT NULL DEFAULT 0,
        updated REAL NOT NULL,
        PRIMARY KEY(space, measure, key)
    );
    """,
    # 3: what the overview needs of the store (see `_OVERVIEW_TABLES`)
    _OVERVIEW_TABLES,
)
SCHEMA_VERSION = len(MIGRATIONS)


# What SQLite raises while a store is used (damaged pages, a read-only file, a full disk), for callers outside the
# store to catch without speaking SQLite themselves.
DatabaseFailure = sqlite3.Error


class StoreError(Exception):
    """The store cannot be opened or used as asked; the message names the file and the reason."""


# The store files this process opened, newest last: an SQLite error met later while using one (a page damaged
# after opening, a table dropped) carries no file name, and the message for the user names these.
_OPENED: list[Path] = []


def opened_stores() -> tuple[Path, ...]:
    """The store files this process has opened, each once, newest last."""
    return tuple(dict.fromkeys(reversed(_OPENED)))[::-1]


def describe_database_error(e: sqlite3.Error) -> str:
    """One line for an SQLite error met while using a store: which store, and whether it is damaged, read-only,
    full or busy."""
    stores = opened_stores()
    where = f"the store at {stores[-1]}" if stores else "the store"
    text = str(e) or type(e).__name__
    if "readonly" in text:
        return f"{where} is read-only ({text}); pass --store with a writable path"
    if "disk is full" in text or "disk I/O" in text:
        return f"cannot write {where} ({text}); free some space and try again"
    if "locked" in text or "busy" in text:
        return f"{where} is busy ({text}); another process holds it, try again"
    return f"{where} is damaged ({text}); restore it from a copy, or move it away and pass --store"


class ReadOnlyStore(StoreError):
    """The store cannot be written here (a read-only file or folder); it can still be read (`Store.open_read_only`)."""


class MissingCheckpoint(StoreError):
    """A run's checkpoint is recorded in the store but its file is gone."""

    def __init__(self, run_id: int, epoch: int, path: Path) -> None:
        super().__init__(f"the checkpoint of run {run_id} after epoch {epoch} is missing: {path} does not exist")
        self.run_id = run_id
        self.epoch = epoch
        self.path = path


@dataclass(frozen=True)
class ModelRow:
    hash: str
    text: str
    params: int | None
    flops: int | None
    parent: str | None  # the parent's architecture hash
    origin: str
    changes: str
    created: float


@dataclass(frozen=True)
class RunRow:
    id: int
    model_hash: str
    model_name: str
    source: str
    data_key: str
    data_text: str
    base_dir: str
    settings_key: str
    settings: dict[str, Any]
    device: str
    status: str
    reason: str
    params: int | None
    flops: int | None
    n_train: int | None
    val_acc: float | None
    val_loss: float | None
    seconds: float | None
    used_device: str | None
    created: float
    started: float | None
    finished: float | None


@dataclass(frozen=True)
class EpochRow:
    run_id: int
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float


@dataclass(frozen=True)
class ArtifactRow:
    id: int
    run_id: int | None
    model_hash: str | None
    kind: str
    path: str  # the file, resolved to an absolute path ('' for an artifact without one)
    epoch: int | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class ConfusionRow:
    run_id: int
    matrix: np.ndarray
    per_class: np.ndarray


def default_store_path(file: str | os.PathLike[str] | None = None) -> Path:
    """`<workspace>/.remap/remap.db`, the workspace being the .remap file's folder (or the current one)."""
    workspace = Path(file).resolve().parent if file is not None else Path.cwd()
    return workspace / STORE_DIR / STORE_FILE


class Store:
    """One connection to the store file. Not shared between threads: open one per thread or process.

    `Store(path)` creates the file (and its folder) when missing and brings its schema up to date;
    `Store.open_read_only(path)` only reads an existing store, of this schema version or an older one.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = BUSY_TIMEOUT_MS / 1000, *,
                 read_only: bool = False) -> None:
        # absolute, so that the files it references and the threads that open it again (heartbeats) do not
        # depend on the current folder
        self.path = Path(path).expanduser().resolve()
        self.read_only = read_only
        if read_only:
            self.conn = _connect_read_only(self.path, timeout)
            _OPENED.append(self.path)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store folder {self.path.parent}: {e.strerror or e}") from None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; expected a store file")
        unwritable = _unwritable(self.path)
        if unwritable:
            # SQLite would open such a file read-only without a word and fail at the first write, half-way through
            raise ReadOnlyStore(f"the store at {self.path} is read-only ({unwritable}); it can be read, not written: "
                                "pass --store with a writable path")
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the store {self.path}: {e}") from None
        try:
            # before anything is written (WAL mode rewrites the header): a file that is not ours stays untouched
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._refuse_foreign()
            self._configure(timeout)
            self._migrate()
        except StoreError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as e:
            self.conn.close()
            raise StoreError(_describe_open_error(self.path, e)) from None
        _OPENED.append(self.path)

    @classmethod
    def open_read_only(cls, path: str | os.PathLike[str], timeout: float = BUSY_TIMEOUT_MS / 1000) -> Store:
        """The store at `path`, only read: nothing is created, migrated or written. StoreError when there is no
        store file there, or the file is not a store this version of remapdsl can read."""
        return cls(path, timeout, read_only=True)

    @classmethod
    def in_memory(cls) -> Store:
        """A store of this process alone, in memory and gone when closed: for a process without a store file, or
        one whose store it must not write. It has no folder, so it takes no artifacts."""
        store = cls.__new__(cls)
        store.path = Path(IN_MEMORY)
        store.read_only = False
        store.conn = sqlite3.connect(IN_MEMORY, isolation_level=None, check_same_thread=False)
        store.conn.execute("PRAGMA foreign_keys = ON")
        store._migrate()
        # pairs are looked up by either key; the file has no index on the second, a private copy can have one
        store.conn.execute("CREATE INDEX distances_b ON distances(space, b)")
        return store

    def _refuse_foreign(self) -> None:
        """StoreError unless the file is empty or already a store: another application's database is not given
        our tables."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if (tables or version) and not tables >= OWN_TABLES:
            raise StoreError(f"{self.path} is not a remapdsl store (an SQLite database with other tables); it is "
                             "left untouched: move it away or pass --store")

    def _configure(self, timeout: float) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        mode = ""
        deadline = time.monotonic() + timeout
        # switching to WAL takes a short exclusive lock; another process opening the file at the
        # same moment can make it fail once, so try again until the busy timeout
        while mode.lower() != "wal":
            try:
                mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if mode.lower() != "wal":
                raise sqlite3.DatabaseError(f"journal mode stays '{mode}'")
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, newer than this remapdsl's "
                                 f"{SCHEMA_VERSION}; upgrade remapdsl")
            for script in MIGRATIONS[version:]:
                for statement in split_sql(script):
                    self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, taking the write lock at its start (BEGIN IMMEDIATE)."""
        if self.conn.in_transaction:  # nested: part of the caller's transaction
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: the queries inside see one state of the store, whatever others commit meanwhile.
        Inside the caller's transaction when one is open; works on a read-only store."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            with suppress(sqlite3.Error):
                self.conn.execute("COMMIT")

    def folder(self, name: str) -> Path:
        """A folder next to the store file for files the store references (checkpoints, ONNX)."""
        folder = self.path.parent / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def owns(self, path: Path) -> bool:
        """Whether `path` is a file the store wrote and may delete: a checkpoint of its own naming, directly in
        its checkpoints folder. Every other path an artifact names is only referenced."""
        if self.path == Path(IN_MEMORY):
            return False
        return (CHECKPOINT_NAME.fullmatch(path.name) is not None and not path.is_symlink()
                and path.parent.resolve() == (self.path.parent / CHECKPOINTS).resolve())

    def sweep_leftovers(self, older_than: float) -> list[Path]:
        """Remove what crashed writers left in the store's own folders; the files removed.

        A partial file (`.<name>.<pid>.tmp`) goes when its writer is gone or it is older than `older_than`
        seconds; a checkpoint of the store's naming goes when no row references it and it is older than
        `older_than` (a live writer references its new checkpoint within moments of writing it). Files of other
        names, and anything outside these folders, are never touched.
        """
        if self.read_only or self.path == Path(IN_MEMORY):
            return []
        cutoff = time.time() - older_than
        referenced = {self.resolve_path(r[0]).resolve() for r in
                      self.conn.execute("SELECT path FROM artifacts WHERE kind = 'checkpoint' AND path != ''")}
        removed: list[Path] = []
        folder = self.path.parent / CHECKPOINTS
        if not folder.is_dir() or folder.is_symlink():
            return removed
        for entry in folder.iterdir():
            if entry.is_symlink() or not entry.is_file():
                continue
            try:
                modified = entry.stat().st_mtime
            except OSError:
                continue
            temp = TEMP_NAME.fullmatch(entry.name)
            if temp is not None:
                leftover = modified < cutoff or not _process_alive(int(temp["pid"]))
            else:
                leftover = (CHECKPOINT_NAME.fullmatch(entry.name) is not None and modified < cutoff
                            and entry.resolve() not in referenced)
            if leftover:
                with suppress(FileNotFoundError):
                    entry.unlink()
                    removed.append(entry)
        return removed

    def stored_path(self, path: str | os.PathLike[str]) -> str:
        """How the store references a file: relative to the store's folder when inside it, else absolute."""
        absolute = Path(path).expanduser().resolve()
        try:
            return absolute.relative_to(self.path.parent).as_posix()
        except ValueError:
            return str(absolute)

    def resolve_path(self, stored: str) -> Path:
        """The file a stored reference names. Relative references are read against the store's folder. A file
        that is not where the reference says but lies in the store's folder of the same name (checkpoints/,
        onnx/) is found there: an absolute reference written before the workspace was moved, or a relative one
        written, by older versions, against the writer's current folder."""
        path = Path(stored)
        found = path if path.is_absolute() else self.path.parent / path
        if not found.exists() and path.parent.name:
            moved = self.path.parent / path.parent.name / path.name
            if moved.exists():
                return moved
        return found

    # --- models ------------------------------------------------------------------------------------

    def add_model(self, hash: str, text: str, *, name: str | None = None, source: str = "",
                  params: int | None = None, flops: int | None = None, parent: str | None = None,
                  origin: str = "user", changes: str = "") -> ModelRow:
        """Register an architecture (kept as first registered) and, with `name`, what `source` calls it."""
        if origin not in ORIGINS:
            raise ValueError(f"unknown origin '{origin}'; expected one of {', '.join(ORIGINS)}")
        now = time.time()
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO models(hash, text, params, flops, parent, origin, changes, created) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (hash, text, params, flops, parent, origin, changes, now))
            if name is not None:
                c.execute("INSERT OR REPLACE INTO model_names(source, name, hash, updated) VALUES (?, ?, ?, ?)",
                          (source, name, hash, now))
        row = self.model(hash)
        assert row is not None
        return row

    def model(self, hash: str) -> ModelRow | None:
        r = self.conn.execute("SELECT hash, text, params, flops, parent, origin, changes, created FROM models "
                              "WHERE hash = ?", (hash,)).fetchone()
        return ModelRow(*r) if r else None

    def models(self) -> list[ModelRow]:
        rows = self.conn.execute("SELECT hash, text, params, flops, parent, origin, changes, created FROM models "
                                 "ORDER BY created, hash").fetchall()
        return [ModelRow(*r) for r in rows]

    def model_names(self, hash: str) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT name FROM model_names WHERE hash = ? ORDER BY updated DESC",
                                 (hash,)).fetchall()
        return [r[0] for r in rows]

    # --- runs --------------------------------------------------------------------------------------

    def add_run(self, model_hash: str, model_name: str, *, data_key: str, data_text: str, settings_key: str,
                settings: dict[str, Any], device: str = "auto", source: str = "", base_dir: str = "",
                params: int | None = None, flops: int | None = None) -> int:
        """A new queued run; its id. Inside the caller's transaction when one is open (the queue's enqueue)."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs(model_hash, model_name, source, data_key, data_text, base_dir, settings_key, "
                "settings, device, params, flops, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_hash, model_name, source, data_key, data_text, base_dir, settings_key,
                 json.dumps(settings, sort_keys=True), device, params, flops, time.time()))
            assert cur.lastrowid is not None
            return cur.lastrowid

    _RUN_COLUMNS = ("id, model_hash, model_name, source, data_key, data_text, base_dir, settings_key, settings, "
                    "device, status, reason, params, flops, n_train, val_acc, val_loss, seconds, used_device, "
                    "created, started, finished")

    def run(self, run_id: int) -> RunRow | None:
        r = self.conn.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_row(r) if r else None

    def runs(self, model_hash: str | None = None) -> list[RunRow]:
        if model_hash is None:
            rows = self.conn.execute(f"SELECT {self._RUN_COLUMNS} FROM runs ORDER BY id").fetchall()
        else:
            rows = self.conn.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE model_hash = ? ORDER BY id",
                                     (model_hash,)).fetchall()
        return [_run_row(r) for r in rows]

    def find_runs(self, model_hash: str, data_key: str, settings_key: str) -> list[RunRow]:
        """Runs of one architecture on one data set with one group of settings, newest first."""
        rows = self.conn.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE model_hash = ? AND data_key = ? "
                                 "AND settings_key = ? ORDER BY id DESC", (model_hash, data_key, settings_key))
        return [_run_row(r) for r in rows.fetchall()]

    def start_run(self, run_id: int, n_train: int, params: int, flops: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = ?, n_train = ?, params = ?, flops = ?, "
                      "started = COALESCE(started, ?) WHERE id = ?",
                      (RunStatus.RUNNING, n_train, params, flops, time.time(), run_id))

    def set_run_status(self, run_id: int, status: str, reason: str = "") -> None:
        """A run's status and its reason; an ended run (done, stopped, failed, cancelled) is finished now."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status '{status}'")
        finished = time.time() if status in ENDED else None
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = ?, reason = ?, finished = ? WHERE id = ?",
                      (status, reason, finished, run_id))

    def latest_n_train(self, data_text: str) -> int | None:
        """The training examples of the newest run on this data line that knows them (any architecture)."""
        r = self.conn.execute("SELECT n_train FROM runs WHERE data_text = ? AND n_train > 0 ORDER BY id DESC "
                              "LIMIT 1", (data_text,)).fetchone()
        return int(r[0]) if r else None

    # --- jobs --------------------------------------------------------------------------------------

    def holds(self, job_id: int, worker: str) -> bool:
        """Whether `worker` holds the job (it is running under that worker's lease)."""
        r = self.conn.execute("SELECT 1 FROM jobs WHERE id = ? AND worker = ? AND status = ?",
                              (job_id, worker, RunStatus.RUNNING)).fetchone()
        return r is not None

    # --- epochs and checkpoints ----------------------------------------------------------------------

    def record_epoch(self, run_id: int, epoch: EpochRow, checkpoint: bytes | None = None,
                     owner: tuple[int, str] | None = None) -> bool:
        """Commit one finished epoch and its checkpoint together.

        The checkpoint file is written first under a name of its own and referenced in the same transaction
        as the epoch row, so a crash at any point leaves the last committed epoch and its checkpoint in
        agreement. With `owner` (job id, worker id), nothing is written unless that worker still holds the
        job; returns False then, or when the epoch was already recorded.
        """
        path: Path | None = None
        if checkpoint is not None:
            # a name of its own per writer: a worker that lost its job must not clobber the new holder's file
            path = self.folder(CHECKPOINTS) / f"run-{run_id}-epoch-{epoch.epoch}-{uuid.uuid4().hex[:8]}.pt"
            _write_atomically(path, checkpoint)
        stale: list[str] = []
        with self.transaction() as c:
            if owner is not None and not self.holds(*owner):
                written = False
            else:
                cur = c.execute("INSERT OR IGNORE INTO epochs(run_id, epoch, train_loss, train_acc, val_loss, val_acc, "
                                "seconds, recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (run_id, epoch.epoch, epoch.train_loss, epoch.train_acc, epoch.val_loss,
                                 epoch.val_acc, epoch.seconds, time.time()))
                written = cur.rowcount == 1
            if written and path is not None:
                stale = [r[0] for r in c.execute("SELECT path FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'",
                                                 (run_id,))]
                c.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'", (run_id,))
                c.execute("INSERT INTO artifacts(run_id, kind, path, epoch, created) VALUES (?, 'checkpoint', ?, ?, ?)",
                          (run_id, self.stored_path(path), epoch.epoch, time.time()))
        if not written and path is not None:
            path.unlink(missing_ok=True)
        for old in stale:
            old_path = self.resolve_path(old)
            if old_path != path and self.owns(old_path):
                old_path.unlink(missing_ok=True)
        return written

    def epochs(self, run_id: int) -> list[EpochRow]:
        rows = self.conn.execute("SELECT run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds FROM epochs "
                                 "WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return [EpochRow(*r) for r in rows]

    def last_checkpoint(self, run_id: int) -> tuple[int, bytes] | None:
        """(epoch, bytes) of the run's latest checkpoint, or None when it has none.

        MissingCheckpoint when the store records one whose file is gone: the epochs up to it were trained,
        and a caller that took "none" for an answer would train them again or drop them.
        """
        r = self.conn.execute("SELECT path, epoch FROM artifacts WHERE run_id = ? AND kind = 'checkpoint' "
                              "ORDER BY epoch DESC LIMIT 1", (run_id,)).fetchone()
        if r is None:
            return None
        path = self.resolve_path(r[0])
        try:
            return int(r[1]), path.read_bytes()
        except FileNotFoundError:
            raise MissingCheckpoint(run_id, int(r[1]), path) from None
        except OSError as e:
            raise StoreError(f"cannot read the checkpoint of run {run_id}, {path}: {e.strerror or e}") from None

    # --- results -----------------------------------------------------------------------------------

    def finish_run(self, run_id: int, status: str, reason: str = "", *, seconds: float | None = None,
                   used_device: str | None = None, predictions: np.ndarray | None = None,
                   confusion: np.ndarray | None = None, per_class: np.ndarray | None = None) -> None:
        """Final status and results of a run in one transaction (or in the caller's, when one is open);
        accuracy and loss from its last epoch."""
        with self.transaction() as c:
            last = c.execute("SELECT val_acc, val_loss FROM epochs WHERE run_id = ? ORDER BY epoch DESC LIMIT 1",
                             (run_id,)).fetchone()
            total = c.execute("SELECT SUM(seconds) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()[0]
            c.execute("UPDATE runs SET status = ?, reason = ?, val_acc = ?, val_loss = ?, seconds = ?, "
                      "used_device = COALESCE(?, used_device), finished = ? WHERE id = ?",
                      (status, reason, last[0] if last else None, last[1] if last else None,
                       total if total is not None else seconds, used_device, time.time(), run_id))
            if predictions is not None:
                arr = np.ascontiguousarray(predictions)
                c.execute("INSERT OR REPLACE INTO predictions(run_id, dtype, classes) VALUES (?, ?, ?)",
                          (run_id, arr.dtype.str, arr.tobytes()))
            if confusion is not None:
                pc = per_class if per_class is not None else np.array([])
                c.execute("INSERT OR REPLACE INTO confusion(run_id, matrix, per_class) VALUES (?, ?, ?)",
                          (run_id, json.dumps(np.asarray(confusion).tolist()), json.dumps(np.asarray(pc).tolist())))

    def predictions(self, run_id: int) -> np.ndarray | None:
        r = self.conn.execute("SELECT dtype, classes FROM predictions WHERE run_id = ?", (run_id,)).fetchone()
        return np.frombuffer(r[1], dtype=np.dtype(r[0])).copy() if r else None

    def confusion(self, run_id: int) -> ConfusionRow | None:
        r = self.conn.execute("SELECT matrix, per_class FROM confusion WHERE run_id = ?", (run_id,)).fetchone()
        if r is None:
            return None
        return ConfusionRow(run_id, np.array(json.loads(r[0]), dtype=np.int64), np.array(json.loads(r[1])))

    def add_artifact(self, kind: str, path: str | os.PathLike[str], *, run_id: int | None = None,
                     model_hash: str | None = None, epoch: int | None = None,
                     meta: dict[str, Any] | None = None) -> int:
        with self.transaction() as c:
            # an artifact without a file (a failure's record) keeps its empty path
            stored = self.stored_path(path) if str(path) else ""
            cur = c.execute("INSERT INTO artifacts(run_id, model_hash, kind, path, epoch, meta, created) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, model_hash, kind, stored, epoch,
                                                             json.dumps(meta or {}, sort_keys=True), time.time()))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def artifacts(self, *, run_id: int | None = None, model_hash: str | None = None,
                  kind: str | None = None) -> list[ArtifactRow]:
        where, params = [], []
        for column, value in (("run_id", run_id), ("model_hash", model_hash), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT id, run_id, model_hash, kind, path, epoch, meta FROM artifacts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY id", params).fetchall()
        return [ArtifactRow(r[0], r[1], r[2], r[3], str(self.resolve_path(r[4])) if r[4] else "", r[5],
                            json.loads(r[6])) for r in rows]


def split_sql(script: str) -> list[str]:
    """The statements of an SQL script, in order."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _run_row(r: Sequence[Any]) -> RunRow:
    values = list(r)
    values[8] = json.loads(values[8])
    return RunRow(*values)


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that only reads the store at `path`; StoreError naming the file unless it is a store this
    remapdsl can read."""
    if not path.is_file():
        raise StoreError(f"no store at {path}" if not path.exists() else f"{path} is a folder; expected a store file")
    try:
        conn = _open_read_only(path, timeout)
    except sqlite3.DatabaseError as e:
        raise StoreError(_describe_open_error(path, e, reading=True)) from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(_describe_open_error(path, e, reading=True)) from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"{path} has schema version {version}, newer than this remapdsl's {SCHEMA_VERSION}; "
                         "upgrade remapdsl")
    if version < 1 or not {"models", "runs", "jobs"} <= tables:
        conn.close()
        raise StoreError(f"{path} is not a remapdsl store (an SQLite file without its tables); move it away or "
                         "pass --store")
    return conn


def _open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """mode=ro: SQLite neither creates the file nor writes it, and a WAL store stays readable while others write.
    A WAL store needs its shared-memory file (-shm) beside it, which a reader creates when it is missing; in a
    folder that cannot be written it cannot, so there the file is read as immutable: no other process can be
    writing it either (a writer needs that folder too), unless a WAL file is left with commits that only a
    writer can fold back into the store."""
    uri = f"file:{quote(path.as_posix())}?mode=ro"
    conn = sqlite3.connect(uri, timeout=timeout, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA schema_version").fetchone()
        return conn
    except sqlite3.OperationalError as e:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if "unable to open" not in str(e) or os.access(path.parent, os.W_OK):
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(f"the store at {path} cannot be read: its folder is read-only and {wal.name} holds "
                             "commits not yet written into it; open it once where its folder can be written") from None
    return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)


def _unwritable(path: Path) -> str:
    """Why the store file at `path` (or its folder, where SQLite writes its WAL and creates the file) cannot be
    written by this process; "" when it can."""
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent} is read-only"
    return ""


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a full disk must not stay full of the part written
        with suppress(OSError):
            tmp.unlink()
        raise


def _process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _describe_open_error(path: Path, e: sqlite3.DatabaseError, *, reading: bool = False) -> str:
    text = str(e)
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a remapdsl store (corrupt or not an SQLite file); move it away or pass --store"
    if reading:
        return f"cannot read the store {path}: {text}"
    if "readonly" in text or "unable to open" in text or "disk I/O" in text:
        return f"cannot write the store {path}: {text}; pass --store with a writable path"
    return f"cannot open the store {path}: {text}"
