"""Benchmark of what the overview reads from the store: the population as columns, and what changed.

For n models in a store file (each with a finished run of 10 epochs, a 10-class confusion matrix with its
per-class accuracies, as the trainer stores them, and an ONNX report; written by SQL in bulk, so the fill is
not timed): `read_population` of all of them, of the few that
changed, `per_class_accuracy` of every run, one poll of the change feed after a finished epoch, and the
Pareto mask and one incremental add. Baseline, in the same process: the same rows read per model through the
`Store` API (`model`, `model_names`, `runs`, `epochs`), as a caller without the columnar read would.
Medians of `--repeat` runs (default 5).

Run: `python benchmarks/bench_population.py [--sizes 1000 10000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from remapdsl.store.changes import change_cursor, changes_since
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.pareto import ParetoFront, pareto_mask
from remapdsl.store.population import per_class_accuracy, read_population


def fill(store: Store, n: int, seed: int = 0) -> None:
    """n trained models with what the overview shows of them."""
    rng = np.random.default_rng(seed)
    confusion = np.diag(rng.integers(10, 40, 10)) + rng.integers(0, 3, (10, 10))
    matrix = json.dumps(confusion.tolist())
    per_class = json.dumps((np.diag(confusion) / confusion.sum(axis=1)).tolist())
    report = {"trained": True, "size_bytes": 0, "param_count": 1, "expected_params": 1, "max_abs_diff": 0.0,
              "parity_ok": True, "latency": [{"batch": 1, "p50_ms": 0.1, "p95_ms": 0.2},
                                             {"batch": 64, "p50_ms": 2.0, "p95_ms": 3.0}]}
    with store.transaction() as c:
        c.executemany("INSERT INTO models(hash, text, params, flops, origin, changes, created) "
                      "VALUES (?, 'model m:\n    flatten\n    dense 10\n', ?, ?, 'sampled', '', ?)",
                      [(f"h{i:05d}", int(p), 2 * int(p), float(i)) for i, p in
                       enumerate(rng.integers(1_000, 1_000_000, n))])
        c.executemany("INSERT INTO model_names(source, name, hash, updated) VALUES ('pop.remap', ?, ?, ?)",
                      [(f"m{i:05d}", f"h{i:05d}", float(i)) for i in range(n)])
        c.executemany("INSERT INTO runs(id, model_hash, model_name, data_key, data_text, settings_key, settings, "
                      "status, val_acc, val_loss, created) VALUES (?, ?, ?, 'digits', 'data digits', 'k', "
                      "'{\"epochs\": 10}', 'done', ?, ?, 0)",
                      [(i + 1, f"h{i:05d}", f"m{i:05d}", float(a), 1 - float(a)) for i, a in enumerate(rng.random(n))])
        c.executemany("INSERT INTO epochs VALUES (?, ?, 0.5, 0.5, 0.5, 0.5, 0.1, 0)",
                      [(i + 1, e) for i in range(n) for e in range(1, 11)])
        c.executemany("INSERT INTO confusion VALUES (?, ?, ?)", [(i + 1, matrix, per_class) for i in range(n)])
        c.executemany("INSERT INTO artifacts(run_id, model_hash, kind, path, meta, created) "
                      "VALUES (?, ?, 'onnx', '', ?, 0)",
                      [(i + 1, f"h{i:05d}", json.dumps({**report, "size_bytes": 4 * i})) for i in range(n)])


def per_model(store: Store) -> int:
    """The baseline: what the overview shows, read model by model."""
    rows = 0
    for model in store.models():
        store.model_names(model.hash)
        runs = store.runs(model.hash)
        if runs:
            store.epochs(runs[-1].id)
        rows += 1
    return rows


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(n: int, repeat: int) -> None:
    """One line of figures for n models."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "remap.db")
        fill(store, n)
        reader = Store.open_read_only(store.path)
        pop = read_population(reader)
        columns = median_ms(lambda: read_population(reader, data_key="digits"), repeat)
        baseline = median_ms(lambda: per_model(reader), repeat)
        changed = [f"h{i:05d}" for i in range(0, n, n // 5)]
        few = median_ms(lambda: read_population(reader, hashes=changed), repeat)
        per_class = median_ms(lambda: per_class_accuracy(reader, pop.run_id), repeat)
        cursor = change_cursor(reader)
        store.record_epoch(1, EpochRow(1, 11, 0.4, 0.6, 0.4, 0.6, 0.1))
        poll = median_ms(lambda: changes_since(reader, cursor), repeat)
        params, acc = pop.params, pop.val_acc
        mask = median_ms(lambda: pareto_mask(params, acc), repeat)
        front = ParetoFront(params, acc)
        add = median_ms(lambda: front.add(n + 1, 5_000, 0.5), repeat)
        print(f"n = {n}: read_population {columns:.1f} ms (per-model baseline {baseline:.0f} ms, "
              f"{baseline / columns:.1f}x); 5 changed models {few:.2f} ms; per_class_accuracy {per_class:.1f} ms; "
              f"change poll {poll:.2f} ms; pareto_mask {mask:.2f} ms; ParetoFront.add {add:.3f} ms")
        reader.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    for n in args.sizes:
        measure(n, args.repeat)


if __name__ == "__main__":
    main()
