"""What the store knows about one architecture, for hovers: its latest finished run, curve, classes, ONNX, and
its page in the model overview when a `remap serve` runs on the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from remapdsl.store.db import FINISHED, Store
from remapdsl.store.estimate import TimeModel, time_model
from remapdsl.store.services import OVERVIEW, running_service

if TYPE_CHECKING:
    from remapdsl.onnx.bench import OnnxReport


@dataclass(frozen=True)
class TrainedFacts:
    run_id: int
    val_acc: float
    curve: tuple[float, ...]  # validation accuracy per epoch
    per_class: tuple[float, ...]  # validation accuracy per class, in class order
    seconds: float | None
    device: str | None
    latency_ms: float | None  # ONNX p50 at batch 1
    latency_where: str = ""  # the execution provider of latency_ms
    # the same figure with each other provider measured (CUDA, with the gpu extra): (provider, ms)
    other_latencies: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class StoreFacts:
    trained: TrainedFacts | None
    n_train: int | None  # training examples of this data, from any past run on it
    # fitted to past runs on the GPU, else the CPU (what trains next); None for a trained model
    timing: TimeModel | None
    # the model's page in a running overview (`remap serve` on this store), when the store knows the model
    overview: str | None = None


def overview_link(url: str, model_hash: str) -> str:
    """The overview at `url` with one model selected: `URL?model=HASH` (other query parameters kept)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"model": model_hash})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def store_facts(store: Store, model_hash: str, data_text: str) -> StoreFacts:
    """The newest finished run of `model_hash` on this data line, what an estimate needs, and the link into a
    running overview. A few small queries on a store the caller keeps open (a hover must stay fast)."""
    from remapdsl.onnx.records import latest_report

    url = running_service(store, OVERVIEW)
    overview = overview_link(url, model_hash) if url is not None and store.model(model_hash) is not None else None

    runs = [r for r in store.runs(model_hash) if r.data_text == data_text]
    finished = [r for r in runs if r.status in FINISHED and r.val_acc is not None]
    n_train = next((r.n_train for r in runs if r.n_train), None)
    if n_train is None:
        n_train = store.latest_n_train(data_text)
    if not finished:  # only an untrained model needs an estimate: the fit is left out of other hovers
        return StoreFacts(None, n_train, time_model(store, "cuda") or time_model(store, "cpu"), overview)
    run = finished[-1]  # runs come oldest first
    confusion = store.confusion(run.id)
    report = latest_report(store, model_hash, trained=True)
    one = report.at_batch(1) if report is not None else None
    trained = TrainedFacts(
        run.id, float(run.val_acc or 0.0), tuple(e.val_acc for e in store.epochs(run.id)),
        tuple(float(a) for a in confusion.per_class) if confusion is not None else (),
        run.seconds, run.used_device, one.p50_ms if one else None,
        f"{report.session.provider}" if report is not None else "", _other_latencies(store, model_hash, report))
    return StoreFacts(trained, n_train, None, overview)


def _other_latencies(store: Store, model_hash: str, newest: OnnxReport | None) -> tuple[tuple[str, float], ...]:
    from remapdsl.onnx.records import latest_reports

    if newest is None:
        return ()
    out = []
    for provider, report in latest_reports(store, model_hash, trained=True).items():
        one = report.at_batch(1)
        if provider != newest.session.provider and one is not None:
            out.append((provider, one.p50_ms))
    return tuple(out)
