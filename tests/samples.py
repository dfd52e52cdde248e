"""Sample documents and models that several test modules share."""

from __future__ import annotations

from pathlib import Path

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


# Three small models whose trainings `finished_store` records.
TRAINED = """\
data digits
train epochs=1 batch=128 lr=0.001 seed=0

model small:
    flatten
    dense 16
    relu
    dense 10

model wide:
    flatten
    dense 32
    relu
    dense 10

model deep:
    flatten
    dense 32
    relu
    dense 16
    relu
    dense 10
"""


def finished_store(file: Path, store: Path) -> None:
    """A store in which the models of `file` were queued, claimed and finished as a worker records them: one
    epoch at 40% validation accuracy, and predictions on a validation set of 50; their structural layout kept."""
    import numpy as np

    from remapdsl.cli import main
    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document
    from remapdsl.store.db import EpochRow, Store
    from remapdsl.store.queue import Queue

    rng = np.random.default_rng(0)
    with Store(store) as s:
        queue_document(s, read_models(file, None), epochs=None, device="cpu", force=False)
        queue = Queue(s)
        while (job := queue.claim("w")) is not None:
            s.record_epoch(job.run_id, EpochRow(job.run_id, 1, 1.0, 0.5, 1.2, 0.4, 0.1), owner=(job.id, "w"))
            assert queue.complete(job.id, "w", "done", predictions=rng.integers(0, 10, 50))
    assert main(["layout", str(file), "--store", str(store)]) == 0
