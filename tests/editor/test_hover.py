"""Hover texts: a trained model's accuracy, curve, classes and ONNX latency, an untrained one's estimate, and
the size of the chip image."""

from __future__ import annotations

import subprocess
import sys

import pytest

from remapdsl.editor.facts import store_facts
from remapdsl.editor.hover import layer_hover, model_hover, plain_text, planned_epochs, sparkline
from remapdsl.language.analysis import analyze
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.store.db import Store, default_store_path
from remapdsl.store.queue import data_line

TEXT = """\
data digits
train epochs=1 batch=128

model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model small_wide from small:
    conv2d 32 kernel=3
    relu
    maxpool 2
    flatten
    dense 10
"""


def test_sparkline_spans_low_to_high():
    assert sparkline([0.1, 0.5, 0.9]) == "▁▅█"
    assert sparkline([]) == "" and sparkline([0.5, 0.5]) == "▁▁"


def test_a_deep_model_hover_stays_small():
    layers = "".join("    conv2d 16 kernel=3 padding=same\n    relu\n" for _ in range(15))
    result = parse(f"data digits\n\nmodel deep:\n{layers}    flatten\n    dense 10\n")
    info = analyze(result.document, result.diagnostics).models["deep"]
    text = model_hover(info, images=True)
    assert "data:image/svg+xml" in text and len(text.encode()) < 100_000
    assert "16x8x8 → 16x8x8" in layer_hover(info, 2) and "2,320 parameters" in layer_hover(info, 2)


@pytest.mark.slow
def test_a_trained_model_hover_shows_accuracy_curve_and_classes(tmp_path):
    """Trains a small model for real (CPU, one epoch) and asks the hover logic for it."""
    path = tmp_path / "trained.remap"
    path.write_text(TEXT)
    done = subprocess.run([sys.executable, "-m", "remapdsl", "train", str(path), "--model", "small", "--jobs", "1"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = parse(TEXT)
    analysis = analyze(result.document, result.diagnostics)
    info = analysis.models["small"]
    with Store(default_store_path(path)) as store:
        facts = store_facts(store, architecture_hash(info.model), data_line(result.document))
    assert facts.trained is not None and 0 < facts.trained.val_acc <= 1 and len(facts.trained.curve) == 1
    text = model_hover(info, images=False, facts=facts, epochs=1, class_names=analysis.dataset.class_names)
    assert f"validation accuracy **{facts.trained.val_acc:.1%}**" in text and "best classes:" in text
    assert "ONNX latency" in text  # the worker measured it after training
    # the untrained sibling gets an estimate from the time model of the past run
    wide = store_facts_for(path, "small_wide")
    assert wide.trained is None and wide.n_train and wide.timing is not None
    assert "estimated training time" in model_hover(analysis.models["small_wide"], images=False, facts=wide, epochs=1)


def store_facts_for(path, name):  # type: ignore[no-untyped-def]
    document = parse(path.read_text()).document
    with Store(default_store_path(path)) as store:
        return store_facts(store, architecture_hash(document.model(name)), data_line(document))


def test_the_planned_epochs_fall_back_to_the_default_for_values_that_are_not_epochs():
    assert planned_epochs(parse("train epochs=3\n").document) == 3
    for text in ("", "train epochs=lots\n", "train epochs=2.5\n", "train epochs=0\n", "train epochs=1,2\n"):
        assert planned_epochs(parse(text).document) == 10


def test_plain_text_drops_the_marks_and_keeps_the_words():
    result = parse(TEXT)
    info = analyze(result.document, result.diagnostics).models["small_wide"]
    plain = plain_text(model_hover(info, images=False, parent=analyze(result.document).models["small"]))
    assert plain.startswith("small_wide — from small\n") and "vs small: +2,720 parameters" in plain
    assert not any(mark in plain for mark in ("**", "`", "data:image"))


def test_the_model_hover_names_the_closest_models_in_structure():
    result = parse(TEXT)
    info = analyze(result.document, result.diagnostics).models["small"]
    text = model_hover(info, images=False, neighbours=[("twin", 0.0), ("near", 0.0042), ("small_wide", 0.0712),
                                                        ("mlp", 0.1)])
    assert text.rstrip().endswith("closest in structure: `twin` 0 · `near` 0.004 · `small_wide` 0.07 · `mlp` 0.10")
    assert "closest in structure" not in model_hover(info, images=False)
    assert "closest in structure: a <0.001" in plain_text(model_hover(info, images=False, neighbours=[("a", 1e-5)]))


def test_a_running_overview_gives_the_hover_a_link_to_the_model(tmp_path):
    from remapdsl.editor.facts import overview_link
    from remapdsl.store.services import record_service, remove_service

    result = parse(TEXT)
    info = analyze(result.document, result.diagnostics).models["small"]
    model_hash = architecture_hash(info.model)
    with Store(tmp_path / "remap.db") as store:
        store.add_model(model_hash, "model small:\n    flatten\n    dense 10\n", name="small")
        assert store_facts(store, model_hash, "data digits").overview is None  # no overview runs
        record_service(store, "overview", "http://127.0.0.1:5006/")
        facts = store_facts(store, model_hash, "data digits")
        assert facts.overview == f"http://127.0.0.1:5006/?model={model_hash}"
        assert store_facts(store, "unknown-hash", "data digits").overview is None  # the overview would not know it
        text = model_hover(info, images=False, facts=facts)
        assert f"[show in overview](http://127.0.0.1:5006/?model={model_hash})" in text
        assert f"show in overview: http://127.0.0.1:5006/?model={model_hash}" in plain_text(text)
        remove_service(store, "overview")
        assert store_facts(store, model_hash, "data digits").overview is None
    assert overview_link("http://h:1/app?x=1", "ab") == "http://h:1/app?x=1&model=ab"
    assert overview_link("http://h:1", "ab") == "http://h:1/?model=ab"
