"""One status vocabulary, stored as plain words, and the key runs' settings are stored under."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remapdsl.language.header import TrainSettings
from remapdsl.language.parser import parse
from remapdsl.store.db import ENDED, FINISHED, JOB_STATUSES, RUN_STATUSES, RunStatus, Store
from remapdsl.store.status import run_key


def test_statuses_are_the_stored_words() -> None:
    assert RUN_STATUSES == ("queued", "running", "done", "stopped", "failed", "cancelled")
    assert JOB_STATUSES == ("queued", "running", "done", "failed", "cancelled")
    assert FINISHED == ("done", "stopped") and ENDED == ("done", "stopped", "failed", "cancelled")
    assert json.dumps({"status": RunStatus.DONE}) == '{"status": "done"}'
    assert f"{RunStatus.FAILED}" == str(RunStatus.FAILED) == "failed"


def test_a_status_written_as_a_member_reads_back_as_its_word(tmp_path: Path) -> None:
    with Store(tmp_path / "remap.db") as store:
        store.add_model("h1", "model a:", name="a")
        run_id = store.add_run("h1", "a", data_key="d", data_text="data digits", settings_key="k", settings={})
        store.set_run_status(run_id, RunStatus.FAILED, "broken")
        run = store.run(run_id)
        assert run is not None and type(run.status) is str and run.status == "failed" and run.finished


def test_settings_key_is_canonical_and_counts_momentum_only_for_sgd() -> None:
    assert TrainSettings().key() == "epochs=10|batch=128|lr=0.001|optimizer=adam|weight_decay=0.0|seed=0|patience=0"
    assert "momentum=0.9" in TrainSettings(optimizer="sgd", momentum=0.9).key()


@pytest.mark.parametrize("train", ["", "train epochs=3", "train epochs=2 lr=0.01 optimizer=sgd momentum=0.5",
                                   "train batch=32.0 weight_decay=0 seed=7 patience=2 optimizer=adamw"])
def test_the_lens_reads_runs_under_the_key_the_trainer_writes(train: str) -> None:
    document = parse(f"data digits\n{train}\n").document
    assert run_key(document)[1] == TrainSettings.from_document(document).key()
