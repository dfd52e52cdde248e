"""The Generate tab, the children table, sampling and the DSL tab, built in-process on a real store: each
control's callback gives the library's children, the page says what went wrong, and nothing is half-written."""

from __future__ import annotations

import html
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bokeh.document import Document as BokehDocument
from bokeh.events import ButtonClick
from remapdsl_server.overview import app, children_table, generate, live, model_text, sample
from remapdsl_server.overview.state import OverviewState

from remapdsl.jobs.enqueue import check_models, queue_document
from remapdsl.language.analysis import analyze
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.search.ablation import ablate
from remapdsl.search.children import block_text, parent_of
from remapdsl.search.variation import vary
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

pytestmark = pytest.mark.slow  # the overview loads the digits

TEXT = """data digits
train epochs=1 batch=64 seed=0
budget params <= 100k

model base:
    conv2d 16
    relu
    maxpool 2
    flatten
    dense 64
    relu
    dense 10

# kept below the children
model other:
    flatten
    dense 10
"""


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[OverviewState, BokehDocument, Path]]:
    path = tmp_path / "w.remap"
    path.write_text(TEXT)
    store_path = tmp_path / ".remap" / "remap.db"
    store_path.parent.mkdir()
    with Store(store_path) as store:
        result = parse(TEXT)
        queue_document(store, check_models(path, analyze(result.document, result.diagnostics, tmp_path),
                                           ["base", "other"]), epochs=None, device="cpu", force=False)
    doc = BokehDocument()
    state = app.build_document(doc, app.config_for(store_path, path),
                               panels=(generate.panel, children_table.panel, model_text.panel, sample.panel))
    yield state, doc, path
    state.store.close()


def widget(doc: BokehDocument, name: str) -> Any:
    found = doc.select_one({"name": name})
    assert found is not None, name
    return found


def said(doc: BokehDocument, name: str) -> str:
    """A Div's text as the page shows it."""
    return html.unescape(widget(doc, name).text)


def click(doc: BokehDocument, name: str) -> None:
    button = widget(doc, name)
    assert not button.disabled, f"{name} is disabled"
    button._trigger_event(ButtonClick(button))


def base_hash() -> str:
    return architecture_hash(parse(TEXT).document.models[0])


def library_parent(path: Path):  # type: ignore[no-untyped-def]
    text = path.read_text()
    result = parse(text)
    return parent_of(analyze(result.document, result.diagnostics, path.parent), "base")


def test_ablating_two_chosen_layers_writes_queues_and_lists_the_librarys_children(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    assert widget(doc, "ablate_layers").labels[0] == "0 conv2d 16"
    parent = library_parent(path)
    expected = ablate(parent.model, parent.dataset, [0, 2], parent.budget, existing_names=parent.names,
                      existing_hashes=parent.hashes)
    widget(doc, "ablate_layers").active = [0, 2]
    click(doc, "ablate_button")
    assert "added 2 children of 'base': base_abl0, base_abl2" in said(doc, "generate_message")
    models = parse(path.read_text()).document.models
    assert [m.name for m in models] == ["base", "base_abl0", "base_abl2", "other"]
    assert [block_text(m) for m in models[1:3]] == [block_text(c.model) for c in expected.children]
    with Store(state.store.path) as store:
        assert [j.model_name for j in Queue(store).queued()][-2:] == ["base_abl0", "base_abl2"]
    live.tick(state)
    table = widget(doc, "children")
    assert table.data["model"] == ["base_abl0", "base_abl2"]
    assert table.data["changes"] == ["Removed conv2d at index 0", "Removed maxpool at index 2"]
    assert widget(doc, "children_parent").data["model"] == ["base"]
    # a row selects its model, and the table keeps its parent
    table.selected.indices = [1]
    assert state.selected == architecture_hash(models[2])
    assert widget(doc, "children").data["model"] == ["base_abl0", "base_abl2"]


def test_variations_follow_the_controls(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    parent = library_parent(path)
    widget(doc, "vary_n").value = 3
    widget(doc, "vary_changes").value = 2
    widget(doc, "vary_seed").value = 4
    click(doc, "vary_button")
    expected = vary(parent.model, parent.dataset, 3, max_changes=2, seed=4, budget=parent.budget,
                    existing_hashes=parent.hashes, existing_names=parent.names)
    models = parse(path.read_text()).document.models
    assert [block_text(m) for m in models[1:4]] == [block_text(c.model) for c in expected.children]


@pytest.mark.parametrize(("count", "message"), [(0, "found 0"), (10_000, "found 10,000"), (None, "is empty")])
def test_a_bad_count_is_said_in_the_page_and_writes_nothing(session: Any, count: int | None, message: str) -> None:
    state, doc, path = session
    state.select(base_hash())
    widget(doc, "vary_n").value = count
    click(doc, "vary_button")
    assert message in said(doc, "generate_message")
    assert path.read_text() == TEXT


def test_a_read_only_file_is_said_in_the_page(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    path.chmod(stat.S_IRUSR)
    try:
        click(doc, "ablate_button")
        assert "is read-only; nothing was written" in said(doc, "generate_message")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert path.read_text() == TEXT


def test_handcrafting_through_a_handle_and_through_the_text(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    handles = widget(doc, "handcraft_handles")
    assert handles.labels[:3] == ["+", "0 conv2d 16", "+"]
    handles.active = 6  # the handle before layer 3 (flatten)
    widget(doc, "insert_kind").value = "dropout"
    assert widget(doc, "insert_args").value == "0.25"
    click(doc, "insert_button")
    text = widget(doc, "handcraft_text")
    assert "    dropout 0.25\n    flatten" in text.value
    assert "no errors" in said(doc, "handcraft_diagnostics")
    # an error typed in: shown with its line and column, and the child cannot be queued
    text.value_input = text.value.replace("dropout 0.25", "dropout 1.5")
    diagnostics = said(doc, "handcraft_diagnostics")
    assert "cannot be queued" in diagnostics and "line 6, column 13: rate must be" in diagnostics
    assert widget(doc, "handcraft_queue").disabled
    text.value_input = text.value_input.replace("dropout 1.5", "dropout 0.5")
    assert not widget(doc, "handcraft_queue").disabled
    # a parameter outside the catalog's range through the chip's handle
    handles.active = 1
    widget(doc, "reparam_param").value = "filters"
    assert "filters: an integer in [1, 4096]" in widget(doc, "reparam_value").title
    widget(doc, "reparam_value").value = "0"
    click(doc, "reparam_button")
    assert "filters must be an integer in [1, 4096]; found 0" in said(doc, "generate_message")
    click(doc, "handcraft_queue")
    after = path.read_text()
    assert "# handcrafted: Added dropout 0.5 at index 3\nmodel base_edit from base:\n" in after
    # the draft starts again from the parent under the next free name
    assert "model base_edit_2 from base:" in widget(doc, "handcraft_text").value


def test_a_handcrafted_duplicate_name_is_refused(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    text = widget(doc, "handcraft_text")
    text.value_input = text.value_input.replace("model base_edit", "model other").replace("dense 64",
                                                                                                  "dense 32")
    assert "model 'other' is already defined at line 15" in said(doc, "handcraft_diagnostics")
    assert widget(doc, "handcraft_queue").disabled
    assert path.read_text() == TEXT


def test_sampling_and_appending_from_the_page(session: Any) -> None:
    state, doc, path = session
    widget(doc, "sample_n").value = 0
    click(doc, "sample_button")
    assert "must be from 1 to 1,000; found 0" in said(doc, "sample_message")
    widget(doc, "sample_n").value = 2
    widget(doc, "sample_target").value = "more.remap"
    click(doc, "sample_button")
    assert "sampled 2 models into more.remap; queued 2 for training" in said(doc, "sample_message")
    assert (path.parent / "more.remap").exists()
    state.select(base_hash())
    assert widget(doc, "dsl_text").value.startswith("model base:\n    conv2d 16")
    click(doc, "dsl_append")
    assert "has this architecture already, as 'base'" in said(doc, "dsl_message")


def test_a_child_over_the_budget_is_held_back_until_the_box_is_ticked(tmp_path: Path) -> None:
    text = TEXT.replace("budget params <= 100k", "budget params <= 50k")
    path = tmp_path / "w.remap"
    path.write_text(text)
    store_path = tmp_path / ".remap" / "remap.db"
    store_path.parent.mkdir()
    Store(store_path).close()
    doc = BokehDocument()
    state = app.build_document(doc, app.config_for(store_path, path), panels=(generate.panel,))
    try:
        result = parse(text)
        with Store(store_path) as store:
            queue_document(store, check_models(path, analyze(result.document, result.diagnostics, tmp_path),
                                               ["base"]), epochs=None, device="cpu", force=False)
        live.tick(state)
        state.select(base_hash())
        widget(doc, "ablate_layers").active = [2]
        click(doc, "ablate_button")
        assert "held back until confirmed: base_abl2" in said(doc, "generate_message")
        assert "over the budget" in said(doc, "generate_message") and "base_abl2" not in path.read_text()
        widget(doc, "confirm_budget").active = True
        click(doc, "ablate_button")
        assert "added 1 child of 'base': base_abl2" in said(doc, "generate_message")
        assert "model base_abl2 from base:" in path.read_text()
    finally:
        state.store.close()


def test_per_layer_operator_toggles_reach_the_variations(session: Any) -> None:
    state, doc, path = session
    state.select(base_hash())
    for i in range(7):  # only the dense layer's units may change
        widget(doc, f"vary_ops_{i}").active = [3] if i == 4 else []
    widget(doc, "vary_n").value = 2
    click(doc, "vary_button")
    models = parse(path.read_text()).document.models
    children = [m for m in models if m.parent == "base"]
    assert len(children) == 2
    for child in children:
        assert [layer.kind for layer in child.layers] == [layer.kind for layer in models[0].layers]
        assert child.comments.leading[0].startswith("variation: units at 4 from 64 to ")
        assert [a.name for a in child.layers[0].annotations] == ["keep"]


def test_a_parent_with_errors_says_so(tmp_path: Path) -> None:
    text = TEXT + "\nmodel broken:\n    conv2d 16\n    dense 10\n"
    path = tmp_path / "w.remap"
    path.write_text(text)
    store_path = tmp_path / ".remap" / "remap.db"
    store_path.parent.mkdir()
    Store(store_path).close()
    doc = BokehDocument()
    state = app.build_document(doc, app.config_for(store_path, path), panels=(generate.panel,))
    try:
        broken = architecture_hash(parse(text).document.models[-1])
        with Store(store_path) as store:
            store.add_model(broken, "model broken:\n    conv2d 16\n    dense 10\n", name="broken", source=str(path))
        live.tick(state)
        state.select(broken)
        assert "model 'broken' has errors; fix them first" in said(doc, "generate_message")
        assert widget(doc, "handcraft_queue").disabled
        click(doc, "ablate_button")
        assert "model 'broken' has errors" in said(doc, "generate_message") and path.read_text() == text
    finally:
        state.store.close()
