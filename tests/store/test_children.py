"""The children table of a parent: its own row first, each child against it, live as epochs finish."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from remapdsl.store.children import child_hashes, children_table
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import Queue


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "remap.db")
    yield s
    s.close()


def add(store: Store, name: str, params: int, parent: str | None = None, origin: str = "user") -> str:
    store.add_model(f"h-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name, source="f.remap",
                    params=params, flops=2 * params, parent=parent, origin=origin,
                    changes=f"changes of {name}" if parent else "")
    return f"h-{name}"


def queue(store: Store, name: str, epochs: int = 3, n_train: int = 1000) -> tuple[int, int]:
    q = Queue(store)
    job = q.enqueue(f"h-{name}", name, data_key="digits", data_text="data digits", settings_key="k",
                    settings={"epochs": epochs, "batch": 100}, force=True).job
    return job.id, job.run_id


def train(store: Store, name: str, losses: list[float], accs: list[float], *, finish: bool = True,
          n_train: int = 1000) -> int:
    job_id, run_id = queue(store, name)
    q = Queue(store)
    claimed = q.claim("w", only=[job_id])
    assert claimed is not None
    store.start_run(run_id, n_train, 100, 200)
    for i, (loss, acc) in enumerate(zip(losses, accs, strict=True), 1):
        store.record_epoch(run_id, EpochRow(run_id, i, loss, acc, loss, acc, 0.5))
    if finish:
        store.conn.execute("UPDATE runs SET used_device = 'cpu' WHERE id = ?", (run_id,))
        q.complete(job_id, "w", "done", seconds=9.0)  # with loading the data: not the training time
    return run_id


def test_the_parent_comes_first_then_each_child_against_it(store: Store) -> None:
    parent = add(store, "base", 1000)
    add(store, "base_abl0", 400, parent, "ablation")
    add(store, "base_v1", 1500, parent, "variation")
    add(store, "unrelated", 10)
    train(store, "base", [1.0, 0.8, 0.6], [0.5, 0.7, 0.8])
    train(store, "base_abl0", [1.2, 1.0], [0.4, 0.6], finish=False)
    queue(store, "base_v1")
    assert child_hashes(store, parent) == ["h-base_abl0", "h-base_v1"]
    rows = children_table(store, parent, data_key="digits")
    assert [(r.name, r.is_parent) for r in rows] == [("base", True), ("base_abl0", False), ("base_v1", False)]
    base, abl, var = rows
    assert base.delta_params is None and base.delta_acc is None and base.status == "done"
    assert base.val_loss == (1.0, 0.8, 0.6) and base.actual_seconds == 1.5
    assert abl.origin == "ablation" and abl.changes == "changes of base_abl0"
    assert abl.delta_params == -600 and abl.delta_acc == pytest.approx(0.6 - 0.8)
    assert abl.status == "running" and (abl.epoch, abl.epochs) == (2, 3) and abl.progress == pytest.approx(2 / 3)
    assert abl.val_loss == (1.2, 1.0) and abl.actual_seconds == pytest.approx(1.0)
    assert var.status == "queued" and var.val_acc is None and var.delta_acc is None and var.delta_params == 500
    assert var.job_id is not None and var.val_loss == ()
    # estimated from the store's one finished run on the device: 3 epochs of a model of similar work
    assert var.estimated_seconds is not None and var.estimated_seconds > 0
    assert base.estimated_seconds == pytest.approx(1.5, rel=0.5)


def test_an_unknown_parent_gives_no_rows_and_a_childless_one_its_own(store: Store) -> None:
    assert children_table(store, "nothere") == []
    add(store, "alone", 10)
    rows = children_table(store, "h-alone")
    assert [r.name for r in rows] == ["alone"] and rows[0].status == "untrained" and rows[0].estimated_seconds is None
