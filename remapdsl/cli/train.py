"""`remap train FILE`: queue a file's models and train them here, with a progress bar per model and epoch.

Also holds what `remap results`, `remap worker`, `remap queue` and `remap demo` share: opening the store
named by `--store` (default: `.remap/remap.db` beside the file), reading a file into checked models, the
training settings and data of a document, and the progress display.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from remapdsl.cli import UsageError
from remapdsl.cli.check import read_source
from remapdsl.jobs.worker import ENDED, Worker, WorkerEvent, WorkerOptions
from remapdsl.language.analysis import analyze, did_you_mean
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.model import Document
from remapdsl.store.db import EpochRow, Store, StoreError, default_store_path
from remapdsl.store.queue import Enqueued, Job, Queue, Registered, data_line, register_models
from remapdsl.train.parallel import usable_cores

if TYPE_CHECKING:
    from remapdsl.language.header import TrainSettings
    from remapdsl.train.data import Dataset

DEFAULT_JOBS = 2


# --- shared by the training commands ---------------------------------------------------------------------


def add_store_option(p: argparse.ArgumentParser, *, nested: bool = False) -> None:
    # a sub-command's own default would overwrite a --store given before it
    p.add_argument("--store", type=Path, metavar="PATH", default=argparse.SUPPRESS if nested else None,
                   help="the store file (default: .remap/remap.db in the file's folder, or in the current folder)")


def store_path(args: argparse.Namespace, file: Path | None = None) -> Path:
    return Path(args.store) if args.store else default_store_path(file)


def open_store(path: Path, *, must_exist: bool = False) -> Store:
    if must_exist and not path.exists():
        raise UsageError(f"no store at {path}: nothing has been queued or trained there; pass --store PATH")
    try:
        return Store(path)
    except StoreError as e:
        raise UsageError(str(e)) from None


@dataclass(frozen=True)
class Checked:
    """A file's document, read and analysed, with the models asked for that have no error, and the first error
    of each one that has."""

    path: Path
    document: Document
    names: list[str]
    skipped: dict[str, Diagnostic] = field(default_factory=dict)

    def report_skipped(self, out: TextIO) -> None:
        for name, error in self.skipped.items():
            print(f"{name}: skipped, it has errors: {error.format(str(self.path))}", file=out)

    def note_skipped(self, out: TextIO) -> None:
        """A last line, below the results, so that the skipped models are not lost in a long training's output."""
        if self.skipped:
            print(f"note: skipped {len(self.skipped)} model(s) with errors: {', '.join(self.skipped)}; "
                  f"`remap check {self.path}` lists every error", file=out)


def read_models(path: Path, wanted: Sequence[str] | None) -> Checked:
    """The document of FILE and the models to use: those asked for (all by default) without errors, the others
    listed as skipped. UsageError for an unknown model, an error outside the models (the header), or when
    every model asked for has errors."""
    from remapdsl.language.parser import parse

    result = parse(read_source(str(path)))
    analysis = analyze(result.document, result.diagnostics, Path(path).parent)
    known = list(analysis.models)
    names = list(dict.fromkeys(wanted)) if wanted else known
    for name in names:
        if name not in analysis.models:
            listing = f"; models: {', '.join(known)}" if known else "; it defines no models"
            raise UsageError(f"{path} has no model '{name}'{did_you_mean(name, known)}{listing}")
    if not names:
        raise UsageError(f"{path} defines no models to train")
    errors = [d for d in analysis.diagnostics if d.severity == Severity.ERROR and (d.model is None or d.model in names)]
    # an error of the header (data, train, budget lines) concerns every model
    shared = [d for d in errors if d.model is None]
    skipped: dict[str, Diagnostic] = {}
    for d in errors:
        if d.model is not None:
            skipped.setdefault(d.model, d)
    if shared or len(skipped) == len(names):
        first = shared or errors
        more = f" (and {len(errors) - 1} more; see remap check {path})" if len(errors) > 1 else ""
        raise UsageError(f"{first[0].format(str(path))}{more}")
    return Checked(path, result.document, [n for n in names if n not in skipped], skipped)


def settings_of(document: Document, epochs: int | None) -> TrainSettings:
    from remapdsl.language.header import TrainSettings

    try:
        return TrainSettings.from_document(document, epochs=epochs)
    except ValueError as e:
        raise UsageError(str(e)) from None


def dataset_of(document: Document, base_dir: Path) -> Dataset:
    from remapdsl.language.datasets import DataError
    from remapdsl.train.data import load_dataset

    try:
        return load_dataset(document.data, base_dir)
    except DataError as e:
        raise UsageError(f"cannot load the data: {e}") from None


def device_of(device: str) -> str:
    from remapdsl.train.trainer import resolve_device

    try:
        return resolve_device(device)
    except ValueError as e:
        raise UsageError(str(e)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more; got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0; got {text}")
    return value


# --- progress ----------------------------------------------------------------------------------------------


class Progress:
    """A bar per training model on a terminal (redrawn in place); plain lines otherwise. `total` 0: not known
    ahead (a worker serving a queue), so ended jobs are counted without one."""

    def __init__(self, out: TextIO, total: int, tty: bool | None = None, width: int = 24) -> None:
        self.out = out
        self.total = total
        self.tty = out.isatty() if tty is None else tty
        self.width = width
        self.active: dict[int, str] = {}  # job id -> its bar
        self.drawn = 0  # bar lines on screen below the finished lines
        self.finished = 0

    def __call__(self, event: WorkerEvent) -> None:
        job = event.job
        if event.kind == "start":
            self.active[job.id] = self._bar(job, event.resumed_from, None)
            note = f" (resuming after epoch {event.resumed_from})" if event.resumed_from else ""
            self._emit(f"{job.model_name}: training {job.epochs_planned} epochs{note}" if not self.tty else None)
        elif event.kind == "epoch" and event.epoch is not None:
            e = event.epoch
            self.active[job.id] = self._bar(job, e.epoch, e)
            self._emit(None if self.tty else
                       f"{job.model_name}: epoch {e.epoch}/{job.epochs_planned} loss {e.train_loss:.4f} "
                       f"val loss {e.val_loss:.4f} val acc {100 * e.val_acc:.1f}% ({e.seconds:.2f}s)")
        elif event.kind == "end":
            self.active.pop(job.id, None)
            self.finished += event.status in ENDED
            count = f"{self.finished}/{self.total}" if self.total else str(self.finished)
            self._emit(f"[{count}] {job.model_name}: {_ending(event)}")
        elif event.kind == "skipped":
            self._emit(f"{job.model_name} (job {job.id}): {event.reason}")

    def _bar(self, job: Job, done: int, epoch: EpochRow | None) -> str:
        planned = max(job.epochs_planned, 1)
        filled = round(self.width * min(done, planned) / planned)
        acc = f"  val acc {100 * epoch.val_acc:.1f}%" if epoch else ""
        return f"{job.model_name[:28]:<28} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{planned}{acc}"

    def _emit(self, line: str | None) -> None:
        if not self.tty:
            if line:
                print(line, file=self.out, flush=True)
            return
        # move up over the bars drawn last time, print the finished line, draw the bars again
        self.out.write("\x1b[1A\x1b[2K" * self.drawn + "\r\x1b[2K")
        if line:
            self.out.write(line + "\n")
        bars = list(self.active.values())
        for bar in bars:
            self.out.write(bar + "\n")
        self.drawn = len(bars)
        self.out.flush()


def _ending(event: WorkerEvent) -> str:
    job = event.job
    if event.status in ("done", "stopped"):
        text = f"{event.status} after {job.epochs_done} epoch(s)"
        return f"{text}; {event.reason}" if event.reason and event.status == "stopped" else text
    if event.status == "released":
        return f"stopped after {job.epochs_done} epoch(s); queued again to resume"
    if event.status == "lost":
        return f"given up after {job.epochs_done} epoch(s): {event.reason}"
    return f"{event.status}: {event.reason}" if event.reason else event.status


class StoreWatcher:
    """Turns what other processes write to the store about some jobs into worker events."""

    def __init__(self, queue: Queue, job_ids: Sequence[int], on_event: Callable[[WorkerEvent], None]) -> None:
        self.queue = queue
        self.on_event = on_event
        self.seen: dict[int, tuple[str, int, int]] = {j: ("queued", 0, 0) for j in job_ids}

    def poll(self) -> None:
        for job_id, (status, epochs, attempts) in list(self.seen.items()):
            job = self.queue.job(job_id)
            if job is None or status in ("done", "failed", "cancelled"):
                continue
            if job.attempts > attempts and job.status != "queued":
                self.on_event(WorkerEvent("start", job, resumed_from=epochs if attempts else 0))
            if job.epochs_done > epochs:
                for row in self.queue.store.epochs(job.run_id)[epochs:]:
                    self.on_event(WorkerEvent("epoch", job, epoch=row))
            if job.status in ("done", "failed", "cancelled"):
                run = self.queue.store.run(job.run_id)
                self.on_event(WorkerEvent("end", job, status=run.status if run else job.status,
                                          reason=run.reason if run else job.error))
            self.seen[job_id] = (job.status, max(job.epochs_done, epochs), job.attempts)


# --- training the queued jobs ------------------------------------------------------------------------------


def train_jobs(path: Path, job_ids: Sequence[int], *, jobs: int, device: str | None, out: TextIO,
               options: WorkerOptions | None = None, tty: bool | None = None) -> None:
    """Train the given queued jobs in this process (jobs=1) or in a pool of worker processes, with progress."""
    options = options or WorkerOptions(device=device)
    progress = Progress(out, len(job_ids), tty)
    processes = max(1, min(jobs, len(job_ids)))
    threads = max(1, usable_cores() // processes)
    if processes == 1:
        _set_threads(threads)
        with Worker(path, options=options, only=job_ids, on_event=progress) as worker:
            worker.run(until_empty=True)
        return
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker_process, args=(str(path), list(job_ids), options, threads), daemon=True)
             for _ in range(processes)]
    for p in procs:
        p.start()
    with Store(path) as store:
        watcher = StoreWatcher(Queue(store), job_ids, progress)
        try:
            while any(p.is_alive() for p in procs):
                watcher.poll()
                time.sleep(0.2)
        finally:
            for p in procs:
                p.join()
        watcher.poll()
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed:
        print(f"note: {len(crashed)} worker process(es) ended abnormally (exit {crashed[0]}); "
              "their jobs go back to the queue when their lease runs out", file=sys.stderr)


def _set_threads(threads: int) -> None:
    import torch

    # the cores are shared out between the processes: torch's threads spin against each other (and against
    # other processes) on a busy CPU, while a lone training of a large model gains from every core
    torch.set_num_threads(threads)


def _worker_process(path: str, job_ids: list[int], options: WorkerOptions, threads: int) -> None:
    _set_threads(threads)
    try:
        with Worker(path, options=options, only=job_ids) as worker:
            worker.run(until_empty=True)
    except KeyboardInterrupt:
        pass


@dataclass(frozen=True)
class Plan:
    """What `remap train` queued and what it found already trained or queued."""

    registered: list[Registered]
    jobs: list[Job]
    new: list[bool]
    data: Any
    settings: Any
    device: str


def queue_document(store: Store, checked: Checked, *, epochs: int | None, device: str, force: bool,
                   origin: str | None = None) -> Plan:
    """Register and queue the chosen models of a checked file."""
    resolved = device_of(device)
    settings = settings_of(checked.document, epochs)
    data = dataset_of(checked.document, checked.path.resolve().parent)
    registered, enqueued = enqueue_models(store, checked, settings, data.key, device=device, force=force,
                                          origin=origin)
    return Plan(registered, [e.job for e in enqueued], [e.created for e in enqueued], data, settings, resolved)


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
    from dataclasses import asdict

    return asdict(settings)


def report_plan(plan: Plan, out: TextIO) -> list[int]:
    """Say what is trained already and what will train; the ids of the jobs to train now."""
    todo: list[int] = []
    for job, new in zip(plan.jobs, plan.new, strict=True):
        if new or job.status in ("queued", "running"):
            todo.append(job.id)
        elif job.status == "done":
            print(f"{job.model_name}: already trained (run {job.run_id}); --force trains it again", file=out)
        else:
            print(f"{job.model_name}: job {job.id} was {job.status}; `remap queue retry {job.id}` resumes it, "
                  "--force starts over", file=out)
    return todo


def print_results(store: Store, plan: Plan, out: TextIO, as_json: bool = False) -> None:
    import json

    from remapdsl.store.results import format_table, result_rows, rows_json

    rows = result_rows(store, plan.registered, data_key=plan.data.key, settings_key=plan.settings.key(),
                       epochs=plan.settings.epochs, n_train=len(plan.data.y_train), device=plan.device,
                       batch=plan.settings.batch)
    if as_json:
        print(json.dumps(rows_json(rows), indent=2), file=out)
    else:
        print(format_table(rows), file=out)


# --- the command -------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("train", help="queue a file's models and train them here",
                              description="Queue the models of FILE (all, or those named with --model) and train "
                                          "them in this process or a pool of worker processes, with a progress bar "
                                          "per model and epoch; then print the results table. A model already "
                                          "trained with the same data and settings is not trained again. Models "
                                          "with errors are skipped and listed with their first error; the others "
                                          "train and the exit status is 0. It is 2 when nothing can be trained: "
                                          "every model asked for has errors, or the header (data, train, budget "
                                          "lines) has one.")
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("--model", "-m", action="append", metavar="M", help="train this model (repeat for more)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override the file's epochs")
    p.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--jobs", "-j", type=positive_int, default=DEFAULT_JOBS, metavar="N",
                   help=f"worker processes training at once (default {DEFAULT_JOBS}; 1 trains in this process)")
    p.add_argument("--force", action="store_true", help="train again even if already trained")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_no_onnx_option(p)
    add_store_option(p)
    p.set_defaults(run=run)


def add_no_onnx_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-onnx", dest="onnx", action="store_false",
                   help="do not export trained models to ONNX and measure them with onnxruntime")


def worker_options(device: str, onnx: bool) -> WorkerOptions:
    """How `remap train` and `remap demo` train here: on the device asked for (each job's own for auto)."""
    return WorkerOptions(device=device if device != "auto" else None, onnx=onnx)


def run(args: argparse.Namespace) -> int:
    checked = read_models(args.file, args.model)
    progress_out = sys.stderr if args.json else sys.stdout
    checked.report_skipped(sys.stderr)
    with open_store(store_path(args, args.file)) as store:
        plan = queue_document(store, checked, epochs=args.epochs, device=args.device, force=args.force)
        todo = report_plan(plan, progress_out)
        if todo:
            train_jobs(store.path, todo, jobs=args.jobs, device=None, out=progress_out,
                       options=worker_options(args.device, args.onnx))
        print_results(store, plan, sys.stdout, args.json)
    checked.note_skipped(sys.stderr)
    return 0
