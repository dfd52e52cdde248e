"""The population as columns, per-class accuracy of many runs, and one model's detail for the inspector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remapdsl.store.db import EpochRow, Store
from remapdsl.store.population import model_detail, per_class_accuracy, read_population
from remapdsl.store.queue import Queue

CONFUSION = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "remap.db")
    yield s
    s.close()


def add(store: Store, name: str, params: int | None = 100, parent: str | None = None, origin: str = "user") -> str:
    store.add_model(f"h-{name}", f"model {name}:\n    flatten\n    dense 10\n", name=name, source="f.remap",
                    params=params, flops=2 * params if params else None, parent=parent, origin=origin,
                    changes=f"changes of {name}" if parent else "")
    return f"h-{name}"


def train(store: Store, name: str, accs: list[float], *, status: str = "done", data_key: str = "digits",
          confusion: np.ndarray | None = CONFUSION, epochs: int = 3) -> int:
    queue = Queue(store)
    job = queue.enqueue(f"h-{name}", name, data_key=data_key, data_text=f"data {data_key}", settings_key="k",
                        settings={"epochs": epochs}, force=True).job
    claimed = queue.claim("w", only=[job.id])
    assert claimed is not None
    for i, acc in enumerate(accs, 1):
        store.record_epoch(job.run_id, EpochRow(job.run_id, i, 1.0 - acc, acc, 1.1 - acc, acc, 0.1))
    if status != "running":
        per_class = None
        if confusion is not None:
            support = confusion.sum(axis=1)
            per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
        queue.complete(job.id, "w", status, confusion=confusion if status == "done" else None, per_class=per_class)
    return job.run_id


def onnx_report(store: Store, model_hash: str, run_id: int | None, *, size: int, p50: float) -> None:
    meta = {"trained": run_id is not None, "size_bytes": size, "param_count": 100, "expected_params": 100,
            "max_abs_diff": 1e-6, "parity_ok": True, "params_ok": True,
            "latency": [{"batch": 1, "runs": 100, "warmup": 10, "p50_ms": p50, "p95_ms": p50 * 2, "mean_ms": p50},
                        {"batch": 64, "runs": 100, "warmup": 10, "p50_ms": p50 * 20, "p95_ms": p50 * 30,
                         "mean_ms": p50 * 20}],
            "session": {"provider": "CPUExecutionProvider"}}
    store.add_artifact("onnx", store.path.parent / f"{model_hash}.onnx", run_id=run_id, model_hash=model_hash,
                       meta=meta)


def test_each_model_is_one_row_with_its_standing_run_and_measurement(store: Store):
    add(store, "a", 100)
    add(store, "b", 200, parent="h-a", origin="ablation")
    add(store, "c", None)
    add(store, "d", 50)
    run_a = train(store, "a", [0.5, 0.7, 0.8])
    train(store, "b", [0.6], status="running")
    train(store, "d", [0.4], status="failed")
    onnx_report(store, "h-a", run_a, size=4000, p50=0.25)
    onnx_report(store, "h-a", run_a, size=5000, p50=0.5)  # the newest counts
    pop = read_population(store)
    assert list(pop.hash) == ["h-a", "h-b", "h-c", "h-d"] and len(pop) == 4
    assert list(pop.name) == ["a", "b", "c", "d"] and set(pop.source) == {"f.remap"}
    assert list(pop.parent) == ["", "h-a", "", ""] and list(pop.origin) == ["user", "ablation", "user", "user"]
    assert list(pop.status) == ["done", "running", "untrained", "failed"]
    assert pop.params.tolist() == [100, 200, -1, 50] and pop.flops.tolist() == [200, 400, -1, 100]
    assert pop.run_id[0] == run_a and pop.run_id[2] == -1
    assert pop.val_acc[0] == pytest.approx(0.8) and pop.val_acc[1] == pytest.approx(0.6)  # running: last epoch
    assert np.isnan(pop.val_acc[2]) and pop.val_loss[0] == pytest.approx(0.3)
    assert pop.epoch.tolist() == [3, 1, 0, 1] and pop.epochs.tolist() == [3, 3, 0, 3]
    assert pop.size_bytes[0] == 5000 and pop.latency_ms[0] == 0.5 and np.isnan(pop.latency_ms[1])
    assert pop.trained.tolist() == [True, True, False, True]
    assert pop.row("h-b")["changes"] == "changes of b" and pop.index["h-d"] == 3
    assert list(pop.take(pop.trained).hash) == ["h-a", "h-b", "h-d"]
    assert all(len(col) == 4 for col in pop.columns().values())


def test_a_finished_run_stands_while_the_model_trains_again_and_data_keys_are_kept_apart(store: Store):
    add(store, "a")
    first = train(store, "a", [0.5, 0.9])
    train(store, "a", [0.2], status="running")
    cifar = train(store, "a", [0.3], data_key="cifar10")
    pop = read_population(store, data_key="digits")
    assert pop.run_id.tolist() == [first] and pop.val_acc[0] == pytest.approx(0.9)
    assert read_population(store, data_key="cifar10").run_id.tolist() == [cifar]
    assert read_population(store, data_key="mnist").status.tolist() == ["untrained"]


def test_only_the_asked_models_are_read(store: Store):
    for name in "abc":
        add(store, name)
    train(store, "b", [0.5])
    pop = read_population(store, hashes=["h-b", "h-zzz"])
    assert pop.hash.tolist() == ["h-b"] and pop.status.tolist() == ["done"]
    assert len(read_population(store, hashes=[])) == 0


def test_an_empty_store_is_an_empty_population(store: Store):
    pop = read_population(store)
    assert len(pop) == 0 and pop.val_acc.dtype == np.float64 and pop.params.dtype == np.int64


def test_per_class_accuracy_has_one_row_per_run_asked_and_nan_without_a_matrix(store: Store):
    add(store, "a")
    add(store, "b")
    run_a = train(store, "a", [0.8])
    run_b = train(store, "b", [0.8], confusion=None)
    # a matrix stored without per-class figures is read from its diagonal
    store.conn.execute("INSERT INTO confusion(run_id, matrix, per_class) VALUES (?, ?, '[]')",
                       (run_b, json.dumps([[1, 1], [0, 2]])))
    acc = per_class_accuracy(store, [run_b, -1, run_a, 999])
    assert acc.shape == (4, 3)
    np.testing.assert_allclose(acc[0, :2], [0.5, 1.0])
    assert np.isnan(acc[0, 2]) and np.isnan(acc[1]).all() and np.isnan(acc[3]).all()
    np.testing.assert_allclose(acc[2, :2], [0.8, 0.9])
    assert np.isnan(acc[2, 2])  # a class without validation examples
    assert per_class_accuracy(store, []).shape == (0, 0)
    # a damaged row among good ones costs only itself
    add(store, "c")
    run_c = train(store, "c", [0.8])
    store.conn.execute("UPDATE confusion SET per_class = '[0.5, oops' WHERE run_id = ?", (run_c,))
    again = per_class_accuracy(store, [run_a, run_c, run_b])
    np.testing.assert_allclose(again[0, :2], [0.8, 0.9])
    np.testing.assert_allclose(again[1, :2], [0.8, 0.9])  # read from its matrix instead
    np.testing.assert_allclose(again[2, :2], [0.5, 1.0])


def test_the_detail_of_a_model_has_its_curve_matrix_lineage_and_onnx_figures(store: Store):
    add(store, "a")
    add(store, "b", parent="h-a", origin="variation")
    add(store, "c", parent="h-a", origin="ablation")
    run_a = train(store, "a", [0.5, 0.7, 0.8])
    onnx_report(store, "h-a", run_a, size=4000, p50=0.25)
    d = model_detail(store, "h-a")
    assert d.name == "a" and d.model.text.startswith("model a:") and d.parent is None
    assert d.children == ("h-b", "h-c") and d.run is not None and d.run.id == run_a
    assert [e.val_acc for e in d.epochs] == [0.5, 0.7, 0.8]
    assert d.confusion is not None and d.confusion.matrix.tolist() == CONFUSION.tolist()
    assert d.per_class is not None and d.per_class[:2].tolist() == pytest.approx([0.8, 0.9])
    assert d.onnx is not None and d.onnx.size_bytes == 4000 and d.onnx.parity_ok and d.onnx.params_ok
    assert d.onnx.p50(1) == 0.25 and d.onnx.p95(64) == pytest.approx(7.5) and d.onnx.p50(8) is None
    child = model_detail(store, "h-b")
    assert child.parent is not None and child.parent.hash == "h-a" and child.run is None and child.onnx is None
    with pytest.raises(KeyError, match="h-nope"):
        model_detail(store, "h-nope")


def test_a_failed_measurement_is_said_and_a_damaged_report_or_matrix_is_skipped(store: Store):
    add(store, "a")
    run_a = train(store, "a", [0.5])
    store.add_artifact("onnx", "", run_id=run_a, model_hash="h-a", meta={"shape": "unexpected"})
    store.add_artifact("onnx-error", "", run_id=run_a, model_hash="h-a", meta={"error": "exporter crashed"})
    store.conn.execute("UPDATE confusion SET matrix = 'not json', per_class = 'nor this' WHERE run_id = ?",
                       (run_a,))
    d = model_detail(store, "h-a")
    assert d.onnx is None and d.onnx_error == "exporter crashed" and d.confusion is None
    assert np.isnan(per_class_accuracy(store, [run_a])).all()
    assert np.isnan(read_population(store).size_bytes[0])


def test_the_population_reads_from_a_read_only_store(store: Store):
    add(store, "a")
    train(store, "a", [0.5])
    with Store.open_read_only(store.path) as reader:
        assert read_population(reader).status.tolist() == ["done"]
        assert model_detail(reader, "h-a").run is not None
