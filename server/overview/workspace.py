"""What the overview reads of the workspace: the .remap file's header (data line, budgets), the data set's key
and classes, and a few validation images per class for the data selection.

Without a file (a workspace folder), the data line is the one the newest run of the store was trained on.
Data sets are loaded once per process and data line; only the sample images are kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remapdsl.jobs.files import FileProblem, read_text
from remapdsl.language.model import Document
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.newest import newest_run

SAMPLES_PER_CLASS = 4


class HeaderError(ValueError):
    """The file cannot serve as the overview's workspace; the message says where and why."""


@dataclass(frozen=True)
class Header:
    document: Document | None
    data_key: str | None
    class_names: tuple[str, ...]
    samples: np.ndarray | None  # classes x SAMPLES_PER_CLASS x H x W in [0, 1] (first channel), None: unknown
    problem: str = ""  # why the data could not be read, when it could not


_loaded: dict[tuple[str, str], Header] = {}
_lock = threading.Lock()


def check_file(path: Path) -> Document:
    """The parsed file; HeaderError naming the first error (line:column) when it has errors."""
    from remapdsl.language.analysis import analyze
    from remapdsl.language.diagnostics import Severity

    try:
        text = read_text(path).text
    except FileProblem as e:
        raise HeaderError(str(e)) from None
    result = parse(text)
    analysis = analyze(result.document, result.diagnostics, path.parent)
    errors = [d for d in analysis.diagnostics if d.severity == Severity.ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HeaderError(f"{errors[0].format(str(path))}{more}; fix the file or serve its folder")
    return result.document


def read_header(file: Path | None, store: Store | None = None) -> Header:
    """The header of `file`, or of the newest run in `store` when there is no file."""
    if file is not None:
        try:
            text = read_text(file).text
        except FileProblem as e:
            return Header(None, None, (), None, str(e))
        document = parse(text).document
        return _with_data(document, str(file.parent), document)
    if store is None:
        return Header(None, None, (), None, "no file")
    newest = newest_run(store)
    if newest is None:
        return Header(None, None, (), None, "no run in the store yet")
    return _with_data(parse(newest.data_text).document, newest.base_dir or str(store.path.parent.parent), None)


def _with_data(data_doc: Document, base_dir: str, document: Document | None) -> Header:
    from remapdsl.language.datasets import DataError
    from remapdsl.store.queue import data_line
    from remapdsl.train.data import load_dataset

    where = (data_line(data_doc), base_dir)
    with _lock:
        known = _loaded.get(where)
        if known is None:
            try:
                data = load_dataset(data_doc.data, Path(base_dir))
            except (DataError, OSError) as e:
                return Header(document, None, (), None, f"cannot load the data: {e}")
            known = _loaded[where] = Header(None, data.key, tuple(data.class_names),
                                            _samples(data.x_val, data.y_val, len(data.class_names)))
    return Header(document, known.data_key, known.class_names, known.samples)


def _samples(x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray | None:
    if x.ndim != 4 or not len(x):
        return None
    out = np.zeros((classes, SAMPLES_PER_CLASS, x.shape[2], x.shape[3]))
    for c in range(classes):
        rows = np.flatnonzero(y == c)[:SAMPLES_PER_CLASS]
        for j, r in enumerate(rows):
            image = np.asarray(x[r, 0], dtype=float)
            low, high = float(image.min()), float(image.max())
            out[c, j] = (image - low) / (high - low) if high > low else 0.0
    return out
