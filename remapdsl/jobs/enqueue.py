"""From a document to the training queue: the one path by which the command line and the language server
queue models in a store.

A document's models are checked first: those asked for that have no error can train, the others are
skipped with their first error. The document's training settings and data then give the keys a training
is known by, and each chosen model is registered and queued once: a model already queued, running or
trained with the same data and settings keeps its job. Problems are `EnqueueError`s whose message is
written for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from remapdsl.language.analysis import Analysis
from remapdsl.language.datasets import DataError
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Document
from remapdsl.store.db import Store
from remapdsl.store.queue import Enqueued, Job, Queue, Registered, data_line, register_models
from remapdsl.train.data import Dataset, load_dataset


class EnqueueError(Exception):
    """A document that cannot be queued as asked; the message says why, in the user's terms."""


@dataclass(frozen=True)
class Checked:
    """A file's document with the models asked for that have no error, and the first error of each one that
    has."""

    path: Path  # the file, as named to the user
    document: Document
    names: list[str]
    skipped: dict[str, Diagnostic] = field(default_factory=dict)


def check_models(path: Path, analysis: Analysis, names: Sequence[str]) -> Checked:
    """The models `names` of the analysed file at `path` that can train, the others skipped with their first
    error. EnqueueError when the header (data, train, budget lines) has an error, which concerns every model,
    or when every model asked for has errors. The names must be models of the document."""
    unknown = [name for name in names if name not in analysis.models]
    if unknown:
        raise ValueError(f"not models of {path}: {', '.join(unknown)}")
    errors = [d for d in analysis.diagnostics if d.severity == Severity.ERROR and (d.model is None or d.model in names)]
    shared = [d for d in errors if d.model is None]
    skipped: dict[str, Diagnostic] = {}
    for d in errors:
        if d.model is not None:
            skipped.setdefault(d.model, d)
    if shared or len(skipped) == len(names):
        first = shared or errors
        more = f" (and {len(errors) - 1} more; see remap check {path})" if len(errors) > 1 else ""
        raise EnqueueError(f"{first[0].format(str(path))}{more}")
    return Checked(path, analysis.document, [n for n in names if n not in skipped], skipped)


def settings_of(document: Document, epochs: int | None = None) -> TrainSettings:
    """The document's training settings, with `epochs` in place of its own when given."""
    try:
        return TrainSettings.from_document(document, epochs=epochs)
    except ValueError as e:
        raise EnqueueError(str(e)) from None


def load_document_data(document: Document, base_dir: Path) -> Dataset:
    """The data set of the document's data line, relative paths taken from `base_dir` (the file's folder)."""

    try:
        data = load_dataset(document.data, base_dir)
    except DataError as e:
        raise EnqueueError(f"cannot load the data: {e}") from None
    _data_keys[(data_line(document), str(base_dir))] = data.key
    return data


# Data keys by data line and folder, for the life of the process (see `data_key`).
_data_keys: dict[tuple[str, str], str] = {}


def data_key(document: Document, base_dir: Path) -> str:
    """The store's key of the document's data. Loading the data is what gives the key, and a big data set
    takes seconds to load, so keys are kept for the process's life by data line and folder."""
    where = (data_line(document), str(base_dir))
    if where not in _data_keys:
        load_document_data(document, base_dir)
    return _data_keys[where]


def resolved_device(device: str) -> str:
    """The device `auto`, `cpu`, `cuda` or `cuda:N` stands for on this machine."""
    # asking torch is what costs: the language server imports this module long before it trains anything
    from remapdsl.train.trainer import resolve_device

    try:
        return resolve_device(device)
    except ValueError as e:
        raise EnqueueError(str(e)) from None


def enqueue_models(store: Store, checked: Checked, settings: TrainSettings, data_key: str, *, device: str = "auto",
                   force: bool = False, origin: str | None = None) -> tuple[list[Registered], list[Enqueued]]:
    """Register the chosen models of a checked file and queue a training of each with these settings and data."""
    source = str(checked.path.resolve())
    base_dir = checked.path.resolve().parent
    registered = register_models(store, checked.document, checked.names, source=source, origin=origin,
                                 base_dir=base_dir)
    queue = Queue(store)
    enqueued = [queue.enqueue(m.hash, m.name, data_key=data_key, data_text=data_line(checked.document),
                              settings_key=settings.key(), settings=_settings_dict(settings), device=device,
                              source=source, base_dir=str(base_dir), params=m.params, flops=m.flops, force=force)
                for m in registered]
    return registered, enqueued


def _settings_dict(settings: TrainSettings) -> dict[str, Any]:
    return asdict(settings)


@dataclass(frozen=True)
class Plan:
    """What was queued for a checked file, and what was found already trained or queued: per model its
    registration, its job and whether that job is new; with the data, settings and device of the trainings."""

    registered: list[Registered]
    jobs: list[Job]
    new: list[bool]
    data: Dataset
    settings: TrainSettings
    device: str


def queue_document(store: Store, checked: Checked, *, epochs: int | None, device: str, force: bool,
                   origin: str | None = None, runs_on: str | None = None) -> Plan:
    """Register and queue the chosen models of a checked file, with the document's settings (`epochs` in place
    of its own when given) and data; `force` queues a new training even of a model already trained. `runs_on`:
    the device the trainings will use when they run elsewhere (a cluster), which this machine need not have;
    by default `device` as this machine resolves it."""
    resolved = runs_on or resolved_device(device)
    settings = settings_of(checked.document, epochs)
    data = load_document_data(checked.document, checked.path.resolve().parent)
    registered, enqueued = enqueue_models(store, checked, settings, data.key, device=device, force=force,
                                          origin=origin)
    return Plan(registered, [e.job for e in enqueued], [e.created for e in enqueued], data, settings, resolved)
