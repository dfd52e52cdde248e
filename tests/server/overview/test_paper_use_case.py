"""The REMAP paper's use case replayed through the overview on the digits, with real training: sample 20
models and train them, pick a small model on the Pareto front, ablate it, vary it, handcraft a child, train
the children, and read the children table."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document as BokehDocument
from bokeh.events import ButtonClick
from remapdsl_server.overview import app, children_table, generate, live, sample, scatter

from remapdsl.jobs.local import train_jobs
from remapdsl.jobs.worker import WorkerOptions
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.pareto import ModelScore, pareto_front
from remapdsl.store.queue import Queue

pytestmark = pytest.mark.slow  # trains about 30 small models

HEADER = "data digits\ntrain epochs=1 batch=128 seed=0\nbudget params <= 100k\n"


def widget(doc: BokehDocument, name: str) -> Any:
    found = doc.select_one({"name": name})
    assert found is not None, name
    return found


def click(doc: BokehDocument, name: str) -> None:
    button = widget(doc, name)
    assert not button.disabled, name
    button._trigger_event(ButtonClick(button))


def said(doc: BokehDocument, name: str) -> str:
    return html.unescape(widget(doc, name).text)


def train_queued(store_path: Path) -> None:
    with Store(store_path) as store:
        ids = [j.id for j in Queue(store).queued()]
    assert ids
    train_jobs(store_path, ids, processes=1, options=WorkerOptions(onnx=False, device="cpu"))
    with Store(store_path) as store:
        assert Queue(store).queued() == []


def test_sample_train_pick_ablate_vary_handcraft_train_and_read(tmp_path: Path) -> None:
    path = tmp_path / "digits.remap"
    path.write_text(HEADER)
    store_path = tmp_path / ".remap" / "remap.db"
    store_path.parent.mkdir()
    Store(store_path).close()
    doc = BokehDocument()
    state = app.build_document(doc, app.config_for(store_path, path),
                               panels=(scatter.panel, sample.panel, generate.panel, children_table.panel))
    try:
        # 1. sample 20 and train them
        widget(doc, "sample_n").value = 20
        widget(doc, "sample_seed").value = 1
        click(doc, "sample_button")
        assert "sampled 20 models into digits.remap; queued 20 for training" in said(doc, "sample_message")
        train_queued(store_path)
        live.tick(state)
        population = state.population
        assert len(population) == 20 and population.trained.all()

        # 2. a small model on the Pareto front of accuracy against parameters
        scores = [ModelScore(h, float(a), int(p)) for h, a, p in
                  zip(population.hash.tolist(), population.val_acc, population.params, strict=True)]
        front = pareto_front(scores)
        smallest = min(front, key=lambda h: int(population.params[population.index[h]]))
        state.select(smallest)
        name = str(population.name[population.index[smallest]])
        assert f"Generate from {name}" in said(doc, "generate_title")

        # 3. ablate (the layers ablation takes by default), vary, handcraft
        click(doc, "ablate_button")
        assert f"of '{name}'" in said(doc, "generate_message")
        widget(doc, "vary_n").value = 3
        click(doc, "vary_button")
        assert "queued 3 for training" in said(doc, "generate_message")
        handles = widget(doc, "handcraft_handles")
        handles.active = len(handles.labels) - 3  # the handle before the head
        widget(doc, "insert_kind").value = "dropout"
        click(doc, "insert_button")
        assert "no errors" in said(doc, "handcraft_diagnostics")
        click(doc, "handcraft_queue")
        assert f"added 1 child of '{name}': {name}_edit" in said(doc, "generate_message")
        assert parse(path.read_text()).diagnostics == ()

        # 4. train the children, and read the table
        train_queued(store_path)
        live.tick(state)
        table = widget(doc, "children").data
        children = table["model"]
        assert f"{name}_edit" in children and sum(c.startswith(f"{name}_v") for c in children) == 3
        assert all(s == "done" for s in table["status"])
        assert all(math.isfinite(a) for a in table["val_acc"]) and all(math.isfinite(d) for d in table["delta_acc"])
        parent_acc = widget(doc, "children_parent").data["val_acc"][0]
        assert np.allclose(np.array(table["delta_acc"]), np.array(table["val_acc"]) - parent_acc)
        assert all("<svg" in s for s in table["sparkline"])
    finally:
        state.store.close()
