"""Sample documents and models that several test modules share."""

from __future__ import annotations

from remapdsl.language.datasets import describe
from remapdsl.language.model import ModelSpec
from remapdsl.language.parser import parse

# The bundled default data set, as analysis sees it.
DIGITS = describe(None)

# Every kind of layer the search edits, deep enough that ablation and variation have room.
DEEP = """
model deep:
    conv2d 16
    relu
    conv2d 32 kernel=5
    tanh
    dropout 0.25
    maxpool 2
    conv2d 64 kernel=1
    sigmoid
    flatten
    dense 64
    relu
    dropout 0.5
    dense 16
    relu
    dense 10
"""


def model(text: str) -> ModelSpec:
    """The one model of `text`, which must parse without a diagnostic."""
    result = parse(text)
    assert result.diagnostics == (), result.diagnostics
    (only,) = result.document.models
    return only
