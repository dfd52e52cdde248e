"""Benchmark of the overview's server side (`remap serve`) at 1,000 and 10,000 stored models.

For n models in a store file (each with a finished run of 10 epochs, a 10-class confusion matrix with per-class
accuracies and validation predictions, as the trainer stores them; the fill is not timed), with their stored
structural and prediction layouts and one running job:

* document build: `app.build_document` (the population read, every panel built), data set loaded once before;
* projection switch: the scatter's callback for "Structure (OTMANN)" when positions are stored;
* one live update after an epoch: a worker's epoch written, then one tick of the live panel (change feed, the
  changed model reread, the sources patched, the queue and inspector refreshed);
* class recolouring: choosing two classes (per-class accuracy of every model, read once per session, then
  the mean over the classes, the colour scale and the Pareto front);
* the first structural layout from nothing: `positions.compute` on a store without layouts (what the scatter
  runs in its thread the first time), landmark MDS above 500 models.

Baselines, in the same process: for the build, the same columns read model by model through the `Store` API
(`model`, `model_names`, `runs`) into Python lists; for the switch, sending the projection's x and y columns
to the source (what a callback that copies columns would do); for the live update, rereading the whole
population and replacing the source's data; for recolouring, reading each run's confusion matrix through the
`Store` API and averaging in Python. Medians of `--repeat` runs (default 5); the first layout once.

Run: `python benchmarks/bench_overview.py [--sizes 1000 10000] [--layout-sizes 1000]`.
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
from typing import Any

import numpy as np
from bokeh.core.serialization import Serializer
from bokeh.document import Document as BokehDocument
from remapdsl_server.overview import app, live, positions, scatter

from remapdsl.store.db import EpochRow, Store
from remapdsl.store.population import read_population
from remapdsl.store.queue import Queue

DATA = "data digits"
HEADER = "data digits\ntrain epochs=10 batch=64 seed=0\n"


def sampled_texts(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """n distinct sampled digits models: (hash, text of the model, parameters)."""
    from remapdsl.language.analysis import analyze_model
    from remapdsl.language.datasets import describe
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.model import Document
    from remapdsl.language.printer import format_document
    from remapdsl.search.sampler import sample_models

    info = describe(None)
    out: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    batch = seed
    while len(out) < n:
        for model in sample_models(min(2 * (n - len(out)) + 10, 5000), info, batch):
            h = architecture_hash(model)
            if h in seen:
                continue
            seen.add(h)
            text = format_document(Document(models=(model,)))
            params = analyze_model(model, info).param_count
            out.append((h, text, int(params)))
            if len(out) == n:
                break
        batch += 1
    return out


def digits_key() -> str:
    from remapdsl.jobs.enqueue import data_key
    from remapdsl.language.parser import parse

    return data_key(parse(HEADER).document, Path.cwd())


def fill(store: Store, models: list[tuple[str, str, int]], seed: int = 0) -> None:
    """Every model trained (10 epochs, confusion, predictions), laid out in both projections; one job running."""
    rng = np.random.default_rng(seed)
    key = digits_key()
    n = len(models)
    confusion = np.diag(rng.integers(10, 40, 10)) + rng.integers(0, 3, (10, 10))
    matrix = json.dumps(confusion.tolist())
    y = rng.integers(0, 10, 360)
    with store.transaction() as c:
        c.executemany("INSERT INTO models(hash, text, params, flops, origin, changes, created) "
                      "VALUES (?, ?, ?, ?, 'sampled', '', ?)",
                      [(h, text, p, 2 * p, float(i)) for i, (h, text, p) in enumerate(models)])
        c.executemany("INSERT INTO model_names(source, name, hash, updated) VALUES ('pop.remap', ?, ?, ?)",
                      [(f"m{i:05d}", h, float(i)) for i, (h, _, _) in enumerate(models)])
        c.executemany("INSERT INTO runs(id, model_hash, model_name, data_key, data_text, settings_key, settings, "
                      "status, val_acc, val_loss, created) VALUES (?, ?, ?, ?, ?, 'k', '{\"epochs\": 10}', "
                      "'done', ?, ?, 0)",
                      [(i + 1, h, f"m{i:05d}", key, DATA, float(a), 1 - float(a))
                       for i, ((h, _, _), a) in enumerate(zip(models, rng.random(n), strict=True))])
        c.executemany("INSERT INTO epochs VALUES (?, ?, 0.5, 0.5, 0.5, 0.5, 0.1, 0)",
                      [(i + 1, e) for i in range(n) for e in range(1, 11)])
        c.executemany("INSERT INTO confusion VALUES (?, ?, ?)",
                      [(i + 1, matrix, json.dumps((rng.random(10)).tolist())) for i in range(n)])
        c.executemany("INSERT INTO predictions VALUES (?, ?, ?)",
                      [(i + 1, y.dtype.str, np.where(rng.random(360) < 0.9, y, (y + 1) % 10).tobytes())
                       for i in range(n)])
        c.executemany("INSERT INTO layouts(space, measure, key, x, y, refined, updated) VALUES (?, ?, ?, ?, ?, 0, 0)",
                      [("structural", "emd", h, *rng.normal(size=2)) for h, _, _ in models]
                      + [("predictions", "hamming", str(i + 1), *rng.normal(size=2)) for i in range(n)])
    # the running job: the last model trained again
    h = models[-1][0]
    job = Queue(store).enqueue(h, f"m{n - 1:05d}", data_key=key, data_text=DATA, settings_key="k2",
                               settings={"epochs": 10}, device="cpu")
    claimed = Queue(store).claim("bench")
    assert claimed is not None and claimed.id == job.job.id
    store.start_run(claimed.run_id, 1000, 1000, 1000)


def median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def per_model_columns(store: Store) -> dict[str, list[Any]]:
    """The baseline build: the scatter's columns read model by model through the Store API."""
    out: dict[str, list[Any]] = {k: [] for k in ("hash", "name", "params", "acc", "status")}
    for row in store.models():
        runs = store.runs(row.hash)
        run = runs[-1] if runs else None
        out["hash"].append(row.hash)
        out["name"].append((store.model_names(row.hash) or [row.hash[:8]])[0])
        out["params"].append(row.params)
        out["acc"].append(run.val_acc if run else None)
        out["status"].append(run.status if run else "untrained")
    return out


def bench(n: int, repeat: int, folder: Path) -> dict[str, float]:
    path = folder / f"pop{n}.remap"
    path.write_text(HEADER, encoding="utf-8")
    store_path = folder / f"store{n}" / ".remap" / "remap.db"
    models = sampled_texts(n)
    with Store(store_path) as store:
        fill(store, models)
    config = app.config_for(store_path, None)
    warm = BokehDocument()
    app.build_document(warm, config).store.close()  # loads the data set once, as a running server has it
    out: dict[str, float] = {}

    def build() -> None:
        state = app.build_document(BokehDocument(), config)
        state.store.close()

    out["build"] = median(build, repeat)
    with Store.open_read_only(store_path) as store:
        out["population read"] = median(lambda: read_population(store, data_key=digits_key()), repeat)
        out["per-model read"] = median(lambda: per_model_columns(store), repeat)
    # the baseline build is the same build with the population read model by model
    out["build baseline"] = out["build"] - out["population read"] + out["per-model read"]

    state = app.build_document(BokehDocument(), config)
    assert len(state.population) == n, (len(state.population), n)
    part: scatter.Scatter = state.parts["scatter"]
    toggle = state.doc.select_one({"name": "projection"})

    def switch() -> None:
        toggle.active = 1
        toggle.active = 0

    out["switch"] = median(switch, repeat) / 2
    data = part.source.data

    serializer = Serializer()

    def switch_baseline() -> None:
        for x, y in (("sx", "sy"), ("ax", "ay")):
            columns = {"x": np.asarray(data[x]).copy(), "y": np.asarray(data[y]).copy()}
            part.source.data.update(columns)
            serializer.encode(columns)  # what the server would send

    out["switch baseline"] = median(switch_baseline, repeat) / 2
    state.select(models[-1][0])  # the inspector follows the running model
    job = Queue(state.store).jobs(["running"])[0]
    epoch = [0]

    def one_epoch() -> None:
        epoch[0] += 1
        with Store(store_path) as writer:
            writer.record_epoch(job.run_id, EpochRow(job.run_id, epoch[0], 1.0, 0.5, 1.0, 0.5, 0.1))
        started = time.perf_counter()
        live.tick(state)
        times.append(time.perf_counter() - started)

    times: list[float] = []
    for _ in range(repeat):
        one_epoch()
    out["live update"] = statistics.median(times)

    def reread() -> None:
        pop = read_population(state.store)
        part.source.data = scatter.columns(pop)

    out["live baseline"] = median(reread, repeat)
    classes = state.doc.select_one({"name": "classes"})

    def recolour() -> None:
        state._class_accuracy = None  # each run reads the per-class accuracies, as a session's first choice does
        classes.active = [3, 8]
        classes.active = []

    out["recolour"] = median(recolour, repeat)

    def recolour_again() -> None:
        classes.active = [3, 8]
        classes.active = [2]

    out["recolour (read)"] = median(recolour_again, repeat) / 2

    def recolour_baseline() -> None:
        scores = []
        for run_id in state.population.run_id.tolist():
            row = state.store.confusion(int(run_id)) if run_id >= 0 else None
            scores.append(float(np.mean(row.per_class[[3, 8]])) if row is not None and row.per_class.size else None)

    out["recolour baseline"] = median(recolour_baseline, repeat)
    state.store.close()
    return out


def first_layout(n: int, folder: Path) -> float:
    store_path = folder / f"layout{n}" / ".remap" / "remap.db"
    models = sampled_texts(n, seed=7)
    with Store(store_path) as store:
        fill(store, models)
        store.conn.execute("DELETE FROM layouts")
        pop = read_population(store)
    started = time.perf_counter()
    found = positions.compute(store_path, "structural", np.asarray(pop.hash), np.asarray(pop.run_id))
    took = time.perf_counter() - started
    assert not np.isnan(found.x).any()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--layout-sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in args.sizes:
            figures = bench(n, args.repeat, folder)
            print(f"n = {n:,}")
            for key, value in figures.items():
                print(f"  {key:<20} {1000 * value:10.1f} ms")
            for key in ("build", "switch", "live", "recolour"):
                base = figures[f"{key} baseline"]
                mine = figures[{"live": "live update"}.get(key, key)]
                print(f"  {key} ratio {base / mine:.1f}x")
        for n in args.layout_sizes:
            print(f"first structural layout of {n:,}: {first_layout(n, folder):.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
