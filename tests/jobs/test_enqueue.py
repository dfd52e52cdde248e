"""From a document to the queue: which models are queued, once, and the errors that say why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.jobs.enqueue import EnqueueError, check_models, data_key, queue_document, settings_of
from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

HEADER = "data digits\ntrain epochs=2 batch=64 seed=0\n\n"
GOOD = "model good:\n    flatten\n    dense 32\n    relu\n    dense 10\n"
BROKEN = "model broken:\n    conv2d 16\n    dense 10\n"


def analysed(tmp_path: Path, text: str) -> tuple[Path, Analysis]:
    path = tmp_path / "models.remap"
    path.write_text(text)
    result = parse(text)
    return path, analyze(result.document, result.diagnostics, tmp_path)


def test_a_broken_model_is_skipped_and_the_good_one_queued(tmp_path: Path) -> None:
    path, analysis = analysed(tmp_path, HEADER + GOOD + "\n" + BROKEN)
    checked = check_models(path, analysis, ["good", "broken"])
    assert checked.names == ["good"]
    assert list(checked.skipped) == ["broken"]
    assert "dense needs a flat input" in checked.skipped["broken"].message
    with Store(tmp_path / "remap.db") as store:
        plan = queue_document(store, checked, epochs=None, device="cpu", force=False)
        assert [j.model_name for j in plan.jobs] == ["good"] and plan.new == [True]
        assert [j.model_name for j in Queue(store).queued()] == ["good"]
    assert plan.settings.epochs == 2 and plan.data.key == data_key(analysis.document, tmp_path)


def test_the_same_model_is_not_queued_twice(tmp_path: Path) -> None:
    path, analysis = analysed(tmp_path, HEADER + GOOD)
    checked = check_models(path, analysis, ["good"])
    with Store(tmp_path / "remap.db") as store:
        first = queue_document(store, checked, epochs=None, device="cpu", force=False)
        again = queue_document(store, checked, epochs=None, device="cpu", force=False)
        assert again.new == [False] and [j.id for j in again.jobs] == [j.id for j in first.jobs]
        other = queue_document(store, checked, epochs=3, device="cpu", force=False)  # other settings: another
        assert other.new == [True]
        forced = queue_document(store, checked, epochs=None, device="cpu", force=True)
        assert forced.new == [True]
        assert len(Queue(store).jobs()) == 3


def test_errors_say_why_in_the_users_terms(tmp_path: Path) -> None:
    path, analysis = analysed(tmp_path, HEADER + BROKEN + "\nmodel typo:\n    flaten\n    dense 10\n")
    with pytest.raises(EnqueueError, match=r"models\.remap:6:5: error: dense needs a flat input, .* \(and 1 more; "
                                           r"see remap check .*models\.remap\)$"):
        check_models(path, analysis, ["broken", "typo"])
    # an error of the header concerns every model
    path, analysis = analysed(tmp_path, "data digits\ntrain epochs=0\n\n" + GOOD)
    with pytest.raises(EnqueueError, match=r"models\.remap:2:14: error: epochs must be an integer"):
        check_models(path, analysis, ["good"])
    with pytest.raises(EnqueueError, match=r"^train optimizer must be 'adam' or 'adamw' or 'sgd'; found 'lbfgs'$"):
        settings_of(parse("train epochs=1 optimizer=lbfgs\n").document)
    with pytest.raises(EnqueueError, match=r"^train epochs must be an integer in"):
        settings_of(parse("train epochs=1\n").document, epochs=0)
    missing = parse('data npz "gone.npz"\n\n' + GOOD).document
    with pytest.raises(EnqueueError, match=r"^cannot load the data: .*gone\.npz"):
        data_key(missing, tmp_path)
    path, analysis = analysed(tmp_path, HEADER + GOOD)
    with Store(tmp_path / "remap.db") as store, pytest.raises(EnqueueError, match="unknown device 'tpu'"):
        queue_document(store, check_models(path, analysis, ["good"]), epochs=None, device="tpu", force=False)
    with pytest.raises(ValueError, match="not models of"):
        check_models(path, analysis, ["nope"])
