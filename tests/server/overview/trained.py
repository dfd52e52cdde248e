"""A workspace of tiny digits models trained for real (once per test process, then copied for each test), and
what the overview's tests share to read a built document."""

from __future__ import annotations

import contextlib
import io
import shutil
import threading
from pathlib import Path
from typing import Any

from bokeh.document import Document as BokehDocument

from remapdsl.cli import main

TEXT = """data digits
train epochs=2 batch=64 lr=0.01 seed=0
budget params <= 100k

model lin:
    flatten
    dense 10

model mlp:
    flatten
    dense 32
    relu
    dense 10

model conv:
    conv2d 8 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model conv_wide from conv:   # filters at 0 from 8 to 16
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model mlp_tanh from mlp:     # replaced relu at 2 with tanh
    flatten
    dense 32
    tanh
    dense 10
"""
MODELS = ("lin", "mlp", "conv", "conv_wide", "mlp_tanh")
# Models queued later by the tests (never trained by the workspace itself).
EXTRA = """
model extra_a:
    flatten
    dense 16
    relu
    dense 10

model extra_b:
    flatten
    dense 24
    sigmoid
    dense 10

model extra_c:
    flatten
    dense 8
    relu
    dense 10
"""
FILE = "digits.remap"

_made: dict[str, Path] = {}
_lock = threading.Lock()


def _train(folder: Path) -> None:
    path = folder / FILE
    path.write_text(TEXT, encoding="utf-8")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        # one model measured through ONNX (the inspector's figures), the rest without (faster)
        code = main(["train", str(path), "-m", "lin", "--jobs", "1", "--device", "cpu"])
        code = code or main(["train", str(path), "--jobs", "1", "--device", "cpu", "--no-onnx"])
    assert code == 0, quiet.getvalue()


def trained_copy(base: Path, into: Path) -> Path:
    """A copy of the trained workspace in `into` (trained under `base` the first time); its .remap file."""
    with _lock:
        original = _made.get("digits")
        if original is None:
            original = base / "trained"
            original.mkdir(parents=True)
            _train(original)
            _made["digits"] = original
    shutil.copytree(original, into, dirs_exist_ok=True)
    return into / FILE


def widget(doc: BokehDocument, name: str) -> Any:
    found = doc.select_one({"name": name})
    assert found is not None, f"no model named {name} in the document"
    return found
