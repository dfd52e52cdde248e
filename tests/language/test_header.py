"""The header lines: training settings from the `train` line, checked against the language's options."""

from __future__ import annotations

from dataclasses import fields

import pytest

from remapdsl.language.header import TRAIN_OPTIONS, TrainSettings
from remapdsl.language.model import Arg, Document, TrainSpec


def test_the_settings_have_one_field_per_train_option_with_its_default():
    assert [(f.name, f.default) for f in fields(TrainSettings)] == [(p.name, p.default) for p in TRAIN_OPTIONS.values()]


def test_the_train_line_overrides_the_defaults_and_the_caller_overrides_the_train_line():
    doc = Document(train=TrainSpec((Arg("epochs", 3), Arg("lr", 0.01), Arg("optimizer", "sgd"))))
    assert TrainSettings.from_document(Document()) == TrainSettings()
    s = TrainSettings.from_document(doc, epochs=5, seed=None)
    assert (s.epochs, s.lr, s.optimizer, s.seed) == (5, 0.01, "sgd", 0)
    assert s.key() == "epochs=5|batch=128|lr=0.01|optimizer=sgd|momentum=0.9|weight_decay=0.0|seed=0|patience=0"


def test_a_value_outside_its_option_is_refused_in_the_options_words():
    with pytest.raises(ValueError, match=r"train batch must be an integer in \[1, 1048576\]; found 0"):
        TrainSettings(batch=0)
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainSettings.from_document(Document(), lr_decay=0.5)
