"""The overview's documents built in-process on a store of really trained digits models: the handlers are
called as Bokeh calls them and the sources read back. Bad input (an unknown link, a model whose text no longer
parses, one without predictions, a failing handler, a store written while read) is said in the page."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document as BokehDocument
from bokeh.events import ButtonClick
from remapdsl_server.overview import app, live
from remapdsl_server.overview.state import OverviewState

from remapdsl.cli.workspace import read_models
from remapdsl.jobs.enqueue import queue_document
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.drawer import Drawer
from remapdsl.store.queue import Queue
from tests.server.overview.trained import EXTRA, MODELS, trained_copy, widget

pytestmark = pytest.mark.slow  # trains the workspace once, then loads the digits


@pytest.fixture
def workspace(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return trained_copy(tmp_path_factory.getbasetemp() / "overview-base", tmp_path / "ws")


def build(path: Path, model: str | None = None) -> tuple[OverviewState, BokehDocument]:
    doc = BokehDocument()
    arguments = {"model": [model.encode()]} if model is not None else None
    state = app.build_document(doc, app.config_for(path.parent / ".remap" / "remap.db", path), arguments=arguments)
    return state, doc


@pytest.fixture
def session(workspace: Path) -> Iterator[tuple[OverviewState, BokehDocument]]:
    state, doc = build(workspace)
    yield state, doc
    state.store.close()


def source(doc: BokehDocument) -> dict[str, Any]:
    return dict(widget(doc, "model_source").data)


def row_of(doc: BokehDocument, name: str) -> int:
    return list(source(doc)["name"]).index(name)


def hash_of(doc: BokehDocument, name: str) -> str:
    return str(source(doc)["hash"][row_of(doc, name)])


def click(doc: BokehDocument, name: str) -> None:
    button = widget(doc, name)
    button._trigger_event(ButtonClick(button))


def errors(doc: BokehDocument) -> str:
    """The page's error line as it reads."""
    return html.unescape(str(widget(doc, "errors").text))


def test_every_model_is_one_glyph_with_its_figures(session: Any) -> None:
    _state, doc = session
    data = source(doc)
    assert sorted(data["name"]) == sorted(MODELS)
    assert len(data["hash"]) == len(set(data["hash"])) == len(MODELS)
    acc = np.asarray(data["acc"], dtype=float)
    assert ((acc > 0.3) & (acc <= 1)).all()
    params = dict(zip(data["name"], np.asarray(data["params"], dtype=float), strict=True))
    assert params["lin"] == 650 and params["mlp"] == 2410
    assert np.allclose(data["ax"], np.log10(data["params"]))
    # darker is more accurate: the colour scale spans the accuracies shown
    mapper = widget(doc, "overview").renderers[-1].glyph.fill_color["transform"]
    assert mapper.low == pytest.approx(acc.min()) and mapper.high == pytest.approx(acc.max())
    # the file's budget (params <= 100k) sets the slider; below 2,730 parameters conv_wide is dimmed
    slider = widget(doc, "budget_params")
    assert slider.value == pytest.approx(5.0)
    assert all(a > 0.5 for a in data["line_alpha"])
    slider.value = np.log10(2500)
    slider.trigger("value_throttled", 5.0, slider.value)  # what the browser sends when the handle is let go
    alpha = dict(zip(source(doc)["name"], source(doc)["line_alpha"], strict=True))
    assert alpha["conv_wide"] < 0.5 < alpha["lin"]
    # lin is measured through ONNX (latency and size in its hover); the others are not
    measured = dict(zip(data["name"], data["measured"], strict=True))
    assert "ms" in measured["lin"] and "KB" in measured["lin"] and measured["mlp"] == ""
    assert errors(doc) == ""


def test_the_pareto_front_holds_the_small_accurate_models(session: Any) -> None:
    _, doc = session
    data = source(doc)
    front = widget(doc, "front").data
    logp, acc = np.asarray(data["ax"], dtype=float), np.asarray(data["acc"], dtype=float)
    for x, y in zip(front["x"], front["y"], strict=True):
        dominated = (logp <= x) & (acc >= y) & ((logp < x) | (acc > y))
        assert not dominated.any()
    assert min(front["x"]) == pytest.approx(np.log10(650))  # the smallest model is always on it


def test_switching_projections_moves_the_glyphs_to_kept_positions(session: Any, workspace: Path) -> None:
    state, doc = session
    renderer = widget(doc, "overview").select_one({"name": "models"})
    assert (renderer.glyph.x, renderer.glyph.y) == ("ax", "ay")
    widget(doc, "projection").active = 1  # structural
    assert (renderer.glyph.x, renderer.glyph.y) == ("sx", "sy")
    state.parts["scatter"].finish_pending(120)
    data = source(doc)
    sx = np.asarray(data["sx"], dtype=float)
    assert not np.isnan(sx).any() and np.ptp(sx) > 0
    assert widget(doc, "overview").xaxis[0].axis_label == "structural MDS 1"
    # the positions are the store's: a second session shows the same ones without computing
    other, other_doc = build(workspace)
    try:
        assert np.allclose(np.asarray(source(other_doc)["sx"], dtype=float), sx)
    finally:
        other.store.close()
    widget(doc, "projection").active = 2  # predictions
    state.parts["scatter"].finish_pending(120)
    px = np.asarray(source(doc)["px"], dtype=float)
    assert not np.isnan(px).any()
    widget(doc, "projection").active = 0
    assert renderer.glyph.x == "ax"


def test_choosing_classes_recolours_by_their_accuracy(session: Any) -> None:
    state, doc = session
    before = np.asarray(source(doc)["score"], dtype=float).copy()
    widget(doc, "classes").active = [3, 8]
    after = np.asarray(source(doc)["score"], dtype=float)
    expected = np.nanmean(state.class_accuracy()[:, [3, 8]], axis=1)
    assert np.allclose(after, expected)
    assert not np.allclose(after, before)
    click(doc, "all_classes")
    assert np.allclose(np.asarray(source(doc)["score"], dtype=float), before)


def test_tapping_a_model_inspects_it_and_keeps_it_in_the_drawer(session: Any, workspace: Path) -> None:
    state, doc = session
    models = widget(doc, "model_source")
    models.selected.indices = [row_of(doc, "conv_wide")]
    assert state.selected == hash_of(doc, "conv_wide")
    assert "conv_wide" in widget(doc, "inspector_title").text
    confusion = widget(doc, "confusion").data
    assert len(confusion["count"]) == 100 and sum(confusion["count"]) > 300
    curves = widget(doc, "curves").data
    assert curves["epoch"] == [1, 2]
    assert len(widget(doc, "per_class").data["acc"]) == 10
    assert "conv2d 16" in widget(doc, "inspector_text").text
    assert "parent: conv" in [label for _, label in widget(doc, "family").options]
    # the drawer is the store's: a second session sees it
    with Store(workspace.parent / ".remap" / "remap.db") as store:
        assert Drawer(store).hashes() == [hash_of(doc, "conv_wide")]
    other, other_doc = build(workspace)
    try:
        assert "conv_wide" in widget(other_doc, "drawer_list").text
    finally:
        other.store.close()
    # the parent is one choice away
    widget(doc, "family").value = hash_of(doc, "conv")
    assert state.selected == hash_of(doc, "conv")


def test_the_drawer_compares_two_kept_models(session: Any) -> None:
    state, doc = session
    state.emit("keep", [hash_of(doc, "mlp"), hash_of(doc, "mlp_tanh")])
    widget(doc, "compare_a").value = hash_of(doc, "mlp")
    widget(doc, "compare_b").value = hash_of(doc, "mlp_tanh")
    click(doc, "drawer_compare")
    text = widget(doc, "drawer_diff").text
    assert f"diff/{hash_of(doc, 'mlp')}/{hash_of(doc, 'mlp_tanh')}.svg" in text
    assert "-    relu" in text and "+    tanh" in text
    widget(doc, "drawer_pick").value = hash_of(doc, "mlp")
    click(doc, "drawer_remove")
    assert widget(doc, "drawer_pick").options == [(hash_of(doc, "mlp_tanh"), "mlp_tanh")]


def queue_extra(workspace: Path) -> list[int]:
    extra = workspace.parent / "extra.remap"
    extra.write_text("data digits\ntrain epochs=1 batch=64 seed=0\n" + EXTRA, encoding="utf-8")
    with Store(workspace.parent / ".remap" / "remap.db") as store:
        plan = queue_document(store, read_models(extra, None), epochs=None, device="cpu", force=False)
        return [j.id for j in plan.jobs]


def test_queue_moves_and_cancels_through_the_store(session: Any, workspace: Path) -> None:
    state, doc = session
    a, b, c = queue_extra(workspace)
    live.tick(state)
    data = source(doc)
    assert {"extra_a", "extra_b", "extra_c"} <= set(data["name"])  # queued models appear, hollow
    assert all(data["fill_alpha"][row_of(doc, n)] == 0 for n in ("extra_a", "extra_b", "extra_c"))
    jobs = widget(doc, "jobs")
    assert jobs.data["id"] == [a, b, c]
    jobs.selected.indices = [2]
    click(doc, "job_top")
    with Store(state.store.path) as store:
        assert [j.id for j in Queue(store).queued()] == [c, a, b]
    assert widget(doc, "jobs").data["id"] == [c, a, b]
    jobs.selected.indices = [2]
    click(doc, "job_cancel")
    with Store(state.store.path) as store:
        assert Queue(store).require(b).status == "cancelled"
    # a move that the queue refuses is said, not raised
    widget(doc, "job_filter").active = [0, 1, 2, 3, 4]
    jobs.selected.indices = [widget(doc, "jobs").data["id"].index(b)]
    click(doc, "job_up")
    assert "only queued jobs can be moved" in widget(doc, "queue_message").text


def test_a_finished_epoch_and_a_new_model_arrive_with_the_next_tick(session: Any, workspace: Path) -> None:
    state, doc = session
    state.select(hash_of(doc, "lin"))
    (a, _, _) = queue_extra(workspace)
    live.tick(state)
    n = len(source(doc)["hash"])
    with Store(state.store.path) as store:
        queue = Queue(store)
        job = queue.claim("test-worker")
        assert job is not None and job.id == a
        store.start_run(job.run_id, 1000, 1000, 1000)
        store.record_epoch(job.run_id, EpochRow(job.run_id, 1, 1.5, 0.4, 1.2, 0.55, 0.1))
    started = time.perf_counter()
    live.tick(state)
    assert time.perf_counter() - started < 1.0
    data = source(doc)
    i = row_of(doc, "extra_a")
    assert data["status"][i] == "running" and data["acc"][i] == pytest.approx(0.55)
    assert len(data["hash"]) == n
    running = widget(doc, "jobs").data
    k = running["id"].index(a)
    assert running["progress_text"][k] == "epoch 1 of 1" and running["loss"][k] == "1.2000"


def test_a_link_selects_its_model_and_an_unknown_one_is_said(workspace: Path) -> None:
    state, doc = build(workspace, model="nope")
    try:
        assert state.selected is None
        assert "?model='nope' names no model of this store" in errors(doc)
    finally:
        state.store.close()
    state, doc = build(workspace, model="mlp")
    try:
        assert state.selected == hash_of(doc, "mlp")
        assert "mlp" in widget(doc, "inspector_title").text
        state2, _doc2 = build(workspace, model=hash_of(doc, "mlp")[:10])
        assert state2.selected == hash_of(doc, "mlp")
        state2.store.close()
    finally:
        state.store.close()


def test_a_model_whose_text_no_longer_parses_is_shown_and_said(workspace: Path) -> None:
    with Store(workspace.parent / ".remap" / "remap.db") as store:
        store.add_model("f" * 64, "model old:\n    conv2d 8 kernel==3\n    dense 10\n", name="old", source="gone.remap",
                        params=500)
    state, doc = build(workspace)
    try:
        assert "old" in list(source(doc)["name"])
        widget(doc, "projection").active = 1
        state.parts["scatter"].finish_pending(120)
        note = source(doc)["note"][row_of(doc, "old")]
        assert note == "no structural position: its stored text no longer parses"
        assert not np.isnan(np.asarray(source(doc)["sx"], dtype=float)[row_of(doc, "lin")])
        state.select("f" * 64)
        assert "old" in widget(doc, "inspector_title").text
        assert "no chip" in app_chip(state, "f" * 64)
        assert errors(doc) == ""
    finally:
        state.store.close()


def app_chip(state: OverviewState, model_hash: str) -> str:
    from remapdsl_server.overview.chips import ChipCache

    return ChipCache(state.store.path).get(("chip", model_hash, "mini"))


def test_a_model_without_predictions_has_no_prediction_position_and_says_why(workspace: Path) -> None:
    (a, _, _) = queue_extra(workspace)
    with Store(workspace.parent / ".remap" / "remap.db") as store:
        job = Queue(store).claim("test-worker")
        assert job is not None and job.id == a
        store.start_run(job.run_id, 1000, 1000, 1000)
        store.record_epoch(job.run_id, EpochRow(job.run_id, 1, 1.5, 0.4, 1.2, 0.55, 0.1))
        Queue(store).complete(job.id, "test-worker", "done")  # finished without predictions or confusion
    state, doc = build(workspace)
    try:
        widget(doc, "projection").active = 2
        state.parts["scatter"].finish_pending(120)
        data = source(doc)
        i = row_of(doc, "extra_a")
        assert np.isnan(float(data["px"][i]))
        assert data["note"][i] == "no prediction position: no validation predictions stored"
        state.select(hash_of(doc, "extra_a"))
        assert "none stored" in widget(doc, "confusion_matrix").title.text
        assert errors(doc) == ""
    finally:
        state.store.close()


def test_a_failing_handler_is_shown_in_the_page_and_the_session_goes_on(session: Any) -> None:
    state, doc = session

    def broken(_value: object) -> None:
        raise RuntimeError("a broken panel")

    state.on("select", broken)
    state.select(hash_of(doc, "mlp"))
    assert "RuntimeError: a broken panel" in errors(doc)
    assert "mlp" in widget(doc, "inspector_title").text  # the other handlers ran
    click(doc, "dismiss_errors")
    assert errors(doc) == ""


def test_the_store_written_by_a_worker_while_the_session_reads(session: Any, workspace: Path) -> None:
    state, doc = session
    queue_extra(workspace)
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with Store(state.store.path) as store:
                queue = Queue(store)
                while not stop.is_set():
                    job = queue.claim("writer")
                    if job is None:
                        return
                    store.start_run(job.run_id, 1000, 1000, 1000)
                    for epoch in range(1, 30):
                        store.record_epoch(job.run_id, EpochRow(job.run_id, epoch, 1.0, 0.5, 1.0, 0.5, 0.01))
                    queue.complete(job.id, "writer", "done")
        except BaseException as e:
            failures.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while writer.is_alive() and time.monotonic() < deadline:
            live.tick(state)
    finally:
        stop.set()
        writer.join()
    live.tick(state)
    assert not failures and errors(doc) == ""
    data = source(doc)
    assert all(data["status"][row_of(doc, n)] == "done" for n in ("extra_a", "extra_b", "extra_c"))


def test_lines_join_each_parent_to_its_children(session: Any) -> None:
    _, doc = session
    widget(doc, "lineage").active = True
    lines = widget(doc, "lineage_lines").data
    data = source(doc)
    x = np.asarray(data["ax"], dtype=float)
    pairs = {(float(a), float(b)) for a, b in zip(lines["x0"], lines["x1"], strict=True)}
    assert pairs == {(x[row_of(doc, "conv")], x[row_of(doc, "conv_wide")]),
                     (x[row_of(doc, "mlp")], x[row_of(doc, "mlp_tanh")])}
    widget(doc, "lineage").active = False
    assert widget(doc, "lineage_lines").data["x0"] == []


RESIDUAL = """data digits
train epochs=1 batch=64 seed=0

model res:
    conv2d 8 kernel=3
    relu
    residual:
        conv2d 8 kernel=3
        relu
    maxpool 2
    flatten
    dense 10
"""


def test_a_residual_model_is_placed_drawn_with_its_arc_and_inspected(workspace: Path) -> None:
    extra = workspace.parent / "res.remap"
    extra.write_text(RESIDUAL, encoding="utf-8")
    with Store(workspace.parent / ".remap" / "remap.db") as store:
        queue_document(store, read_models(extra, None), epochs=None, device="cpu", force=False)
    state, doc = build(workspace)
    try:
        i = row_of(doc, "res")
        residual = hash_of(doc, "res")
        assert source(doc)["params"][i] > 0  # known before training
        widget(doc, "projection").active = 1  # structural: OTMANN over the block's graph
        state.parts["scatter"].finish_pending(120)
        sx = np.asarray(source(doc)["sx"], dtype=float)
        assert not np.isnan(sx).any()
        assert 'class="skip"' in app_chip(state, residual)  # the block's arc, to its addition
        assert 'class="skip"' not in app_chip(state, hash_of(doc, "conv"))
        state.select(residual)
        assert "res" in widget(doc, "inspector_title").text
        assert errors(doc) == ""
    finally:
        state.store.close()
