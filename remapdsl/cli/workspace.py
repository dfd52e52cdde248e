"""What the subcommands share about the files and the store they work on: reading a `.remap` file, picking
its models by name, opening the store, finding trained weights, training queued jobs here with a progress
display, writing a file and its children, and a file's models as members of a model space. Every problem
is a `UsageError` that says what was wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from remapdsl.cli.options import UsageError, executor_argv
from remapdsl.jobs import local
from remapdsl.jobs.enqueue import Checked, Plan, check_models, load_document_data, settings_of
from remapdsl.jobs.files import FileProblem, read_text, write_new
from remapdsl.jobs.pool import GpuShare
from remapdsl.jobs.ray_executor import ExecutorError, RayOptions, RayWorker
from remapdsl.jobs.ray_executor import train_jobs as train_on_ray
from remapdsl.jobs.worker import ENDED, WorkerEvent, WorkerOptions
from remapdsl.language.analysis import Analysis, ModelInfo, analyze, did_you_mean
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.model import Document, ModelSpec
from remapdsl.language.parser import parse
from remapdsl.language.printer import format_document
from remapdsl.search.changes import Child
from remapdsl.search.children import Parent, appended, blocking_errors, model_errors
from remapdsl.store.db import EpochRow, ReadOnlyStore, Store, StoreError, default_store_path
from remapdsl.store.queue import Job

if TYPE_CHECKING:
    from remapdsl.language.header import TrainSettings
    from remapdsl.onnx.records import TrainedWeights
    from remapdsl.space.model_space import Members, ModelSpace, RunPredictions
    from remapdsl.train.data import Dataset



# --- reading a file --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceText:
    """The text of a .remap file, and whether the file starts with a byte order mark (kept when it is
    rewritten)."""

    text: str
    bom: bool


def read_source(path: str | os.PathLike[str]) -> SourceText:
    """The text of a .remap file, its line endings as written, or a UsageError saying why it cannot be read (a
    device, a pipe or a file over the size limit is refused before it is read)."""
    try:
        read = read_text(path)
    except FileProblem as e:
        raise UsageError(str(e)) from None
    return SourceText(read.text, read.bom)


def read_analysis(path: str | os.PathLike[str]) -> Analysis:
    """FILE parsed and analysed."""
    result = parse(read_source(path).text)
    return analyze(result.document, result.diagnostics, Path(path).parent)


def print_diagnostics(path: str | os.PathLike[str], diagnostics: Iterable[Diagnostic]) -> None:
    for d in diagnostics:
        print(d.format(str(path)), file=sys.stderr)


# --- picking models by name ------------------------------------------------------------------------------


def unknown_model(path: str | os.PathLike[str], name: str, known: list[str]) -> UsageError:
    """The error for a model name that FILE does not define, with a suggestion and the names it does."""
    listing = f"; models: {', '.join(known)}" if known else "; it defines no models"
    return UsageError(f"{path} has no model '{name}'{did_you_mean(name, known)}{listing}")


@dataclass(frozen=True)
class Loaded:
    """A model picked from a file, with the errors that concern it (syntax errors in its lines included)."""

    path: Path
    analysis: Analysis
    info: ModelInfo
    errors: tuple[Diagnostic, ...]


def pick_model(path: Path, analysis: Analysis, name: str) -> Loaded:
    """MODEL from an analysed FILE, with its errors; an unknown name is a usage error with a suggestion."""
    info = analysis.models.get(name)
    if info is None:
        raise unknown_model(path, name, list(analysis.models))
    return Loaded(path, analysis, info, tuple(model_errors(analysis, info)))


def print_errors(loaded: Loaded) -> None:
    print_diagnostics(loaded.path, loaded.errors)


def read_models(path: Path, wanted: Sequence[str] | None) -> Checked:
    """The document of FILE and the models to use: those asked for (all by default) without errors, the others
    listed as skipped. A usage error for an unknown model; an EnqueueError for an error outside the models
    (the header), or when every model asked for has errors."""
    analysis = read_analysis(path)
    known = list(analysis.models)
    names = list(dict.fromkeys(wanted)) if wanted else known
    for name in names:
        if name not in analysis.models:
            raise unknown_model(path, name, known)
    if not names:
        raise UsageError(f"{path} defines no models to train")
    return check_models(path, analysis, names)


def report_skipped(checked: Checked, out: TextIO) -> None:
    for name, error in checked.skipped.items():
        print(f"{name}: skipped, it has errors: {error.format(str(checked.path))}", file=out)


# --- the store -------------------------------------------------------------------------------------------


def store_path(args: argparse.Namespace, file: Path | None = None) -> Path:
    """The store named by --store, or `.remap/remap.db` beside FILE (or in the current folder)."""
    return Path(args.store) if args.store else default_store_path(file)


def open_store(path: Path, *, must_exist: bool = False) -> Store:
    """The store at `path` to write (created when missing, unless `must_exist`); a usage error saying why it
    cannot be, a read-only file or folder included."""
    if must_exist and not path.exists():
        raise UsageError(f"no store at {path}: nothing has been queued or trained there; pass --store PATH")
    try:
        return Store(path)
    except StoreError as e:
        raise UsageError(str(e)) from None


def read_store(path: Path) -> Store:
    """The existing store at `path`, only read (a read-only file or folder will do); a usage error saying why it
    cannot be."""
    if not path.exists():
        raise UsageError(f"no store at {path}: nothing has been queued or trained there; pass --store PATH")
    try:
        return Store.open_read_only(path)
    except StoreError as e:
        raise UsageError(str(e)) from None


def store_to_write_or_read(path: Path) -> Store:
    """The store at `path` to write, or only to read when it exists and cannot be written (a command that records
    something only when there is something new, and says then that it cannot)."""
    try:
        return Store(path)
    except ReadOnlyStore:
        return read_store(path)
    except StoreError as e:
        raise UsageError(str(e)) from None


# --- a file with its data and trained weights ------------------------------------------------------------


@dataclass
class Workspace:
    """A .remap file read and analysed, with its data (when it loads) and its store (when there is one)."""

    path: Path
    analysis: Analysis
    store_path: Path
    store: Store | None
    data: Dataset | None
    data_problem: str  # why `data` is None
    epochs: int | None = None  # the epochs the models were trained with, when not the file's

    @property
    def input_shape(self) -> tuple[int, ...]:
        assert self.analysis.dataset is not None
        return tuple(self.analysis.dataset.input_shape)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def open_workspace(path: Path, store: Path | None, epochs: int | None = None, *,
                   create_store: bool = False, read_only: bool = False) -> Workspace:
    """Read FILE; the input shape must be known (a broken data line is a usage error). Its store is opened when
    there is one (made when `create_store`), only read when `read_only`."""
    analysis = read_analysis(path)
    if analysis.dataset is None:
        print_diagnostics(path, (d for d in analysis.diagnostics if d.model is None and d.severity == Severity.ERROR))
        raise UsageError(f"{path}: the input shape is unknown until the data line is fixed")
    data, problem = _load_data(analysis, path)
    location = store or default_store_path(path)
    opened = (read_store(location) if read_only else open_store(location)) if create_store or location.exists() \
        else None
    return Workspace(path, analysis, location, opened, data, problem, epochs)


def _load_data(analysis: Analysis, path: Path) -> tuple[Dataset | None, str]:
    from remapdsl.language.datasets import DataError
    from remapdsl.train.data import load_dataset

    try:
        return load_dataset(analysis.document.data, path.resolve().parent), ""
    except (DataError, OSError) as e:
        return None, str(e)


def select(ws: Workspace, name: str) -> ModelInfo:
    """The model called `name`; unknown or invalid models are usage errors that say why."""
    info = ws.analysis.models.get(name)
    if info is None:
        raise unknown_model(ws.path, name, list(ws.analysis.models))
    if not info.valid:
        print_diagnostics(ws.path, (d for d in info.diagnostics if d.severity == Severity.ERROR))
        raise UsageError(f"model '{name}' has errors (above); fix them first")
    return info


def find_trained(ws: Workspace, info: ModelInfo) -> tuple[TrainedWeights | None, str]:
    """The model's trained weights, or None and why there are none (in words, for the user)."""
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.language.header import TrainSettings
    from remapdsl.onnx.records import trained_weights

    name = info.model.name
    if ws.store is None:
        return None, f"model '{name}' has not been trained: there is no store at {ws.store_path}"
    if ws.data is None:
        return None, f"the trained weights of model '{name}' cannot be looked up: {ws.data_problem}"
    try:
        settings = TrainSettings.from_document(ws.analysis.document, epochs=ws.epochs)
    except ValueError as e:
        return None, f"the trained weights of model '{name}' cannot be looked up: {e}"
    model_hash = architecture_hash(info.model)
    try:
        found = trained_weights(ws.store, model_hash, ws.data.key, settings.key())
    except (ValueError, StoreError) as e:  # a checkpoint file that is not one, or is gone
        return None, f"the checkpoint of model '{name}' in {ws.store_path} cannot be read: {e}"
    if found is None:
        return None, (f"model '{name}' has no finished training with {ws.path.name}'s data and settings "
                      f"in {ws.store_path}{_other_settings(ws.store, model_hash, ws.data.key, settings)}")
    return found, ""


def _other_settings(store: Store, model_hash: str, data_key: str, wanted: TrainSettings) -> str:
    """A hint naming the settings of the newest finished training of the model on the same data, when it was
    trained with other settings than those looked up: most often other --epochs."""
    from remapdsl.store.db import FINISHED

    run = next((r for r in reversed(store.runs(model_hash)) if r.status in FINISHED and r.data_key == data_key),
               None)
    if run is None:
        return ""
    wanted_values = asdict(wanted)
    differ = {k: v for k, v in run.settings.items() if k in wanted_values and wanted_values[k] != v}
    if not differ:
        return ""
    shown = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in differ.items())
    flag = f"; pass --epochs {differ['epochs']} to use it" if set(differ) == {"epochs"} else (
        "; set the train line to these to use it")
    return f" (run {run.id} trained it with {shown}{flag})"


# --- training here, with progress -------------------------------------------------------------------------


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


def train_jobs(path: Path, job_ids: Sequence[int], *, jobs: int | None, out: TextIO, options: WorkerOptions,
               tty: bool | None = None, job_bytes: Sequence[int] = (), executor: RayOptions | None = None) -> None:
    """Train the given queued jobs in this process (jobs=1) or in a pool of worker processes, with progress; or,
    with `executor`, on a Ray cluster. On CUDA `jobs` counts per GPU, and None sizes each GPU's share from
    `job_bytes` (see `job_estimates`)."""
    progress = Progress(out, len(job_ids), tty)
    if executor is not None:
        def connected(worker: RayWorker) -> None:
            print(worker.describe(), file=out, flush=True)

        try:
            train_on_ray(path, job_ids, executor, options=options, on_event=progress, on_connect=connected)
        except ExecutorError as e:
            raise UsageError(str(e)) from None
        return

    def on_pool(shares: list[GpuShare]) -> None:
        for share in shares:
            print(f"cuda:{share.gpu}: {share.processes} training process(es) ({share.reason})", file=out, flush=True)

    crashed = local.train_jobs(path, job_ids, processes=jobs, options=options, on_event=progress,
                               job_bytes=job_bytes, on_pool=on_pool)
    if crashed:
        print(f"note: {len(crashed)} worker process(es) ended abnormally (exit {crashed[0]}); "
              "their jobs go back to the queue when their lease runs out", file=sys.stderr)


def job_estimates(checked: Checked, plan: Plan) -> list[int]:
    """The estimated GPU memory of training each model of a plan, in bytes, for sizing the pool on a GPU;
    empty on the CPU."""
    if not plan.device.startswith("cuda"):
        return []
    from remapdsl.language.analysis import analyze_model
    from remapdsl.train.memory import model_job_bytes

    data = plan.data
    data_bytes = sum(a.nbytes for a in (data.x_train, data.y_train, data.x_val, data.y_val))
    models = {m.name: m for m in checked.document.models}
    return [model_job_bytes(analyze_model(models[r.name], data.info()), plan.settings.batch, data_bytes)
            for r in plan.registered if r.name in models]


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


# --- writing a file and a model's children ---------------------------------------------------------------


def write_atomic(path: str, text: str, bom: bool = False) -> None:
    """Write `text` to `path` through a temporary file in the same folder, so a reader never sees half of it."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a directory; expected a file name")
    try:
        write_new(target, text, bom=bom, replace=True)
    except FileProblem as e:
        raise UsageError(str(e)) from None


@dataclass(frozen=True)
class Source:
    """A parent model picked from a file, with the file it came from."""

    path: str
    text: str
    bom: bool
    analysis: Analysis
    parent: Parent


def load_source(path: str, name: str) -> Source:
    """FILE parsed and analysed and MODEL picked; an unknown model or one with errors is a usage error."""
    source = read_source(path)
    result = parse(source.text)
    analysis = analyze(result.document, result.diagnostics, Path(path).parent)
    loaded = pick_model(Path(path), analysis, name)
    errors = blocking_errors(loaded.errors)
    if errors:
        more = f" (and {len(errors) - 1} more; see `remap check {path}`)" if len(errors) > 1 else ""
        raise UsageError(f"model '{name}' has errors; fix them first: {errors[0].format(path)}{more}")
    if analysis.dataset is None:
        raise UsageError(f"the data line of {path} cannot be used, so shapes are unknown; see `remap check {path}`")
    return Source(path, source.text, source.bom, analysis, Parent.of(analysis, loaded.info.model))


def write_children(source: Source, children: Sequence[Child], notes: Sequence[str], output: str | None) -> int:
    """Print the children and notes, then append the children to FILE or write them to OUT."""
    for child in children:
        print(f"{child.model.name}: {child.describe()} ({child.info.param_count:,} parameters)")
    for note in notes:
        print(f"note: {note}")
    if not children:
        print(f"no children; {source.path} is unchanged", file=sys.stderr)
        return 0
    if output is not None:
        if Path(output).exists() and os.path.samefile(output, source.path):
            raise UsageError(f"-o names the input file {output}; leave -o out to append the children to it")
        write_atomic(output, format_document(_own_document(source, children)))
        print(f"wrote {_plural(len(children), 'model')} to {output}", file=sys.stderr)
        return 0
    write_atomic(source.path, appended(source.text, (c.model for c in children)), bom=source.bom)
    print(f"appended {_plural(len(children), 'model')} to {source.path}", file=sys.stderr)
    return 0


def _own_document(source: Source, children: Sequence[Child]) -> Document:
    """FILE's header, the parent with its ancestors (so `from` resolves: the space too, when the first of them
    was drawn from one), and the children."""
    document = source.analysis.document
    lineage = [source.parent.model]
    while (parent := lineage[0].parent) is not None and not lineage[0].parent_space \
            and (model := document.model(parent)) is not None and model not in lineage:
        lineage.insert(0, model)
    root = lineage[0]
    space = document.space(root.parent) if root.parent is not None and root.parent_space else None
    return Document(models=(*lineage, *(c.model for c in children)), data=document.data, train=document.train,
                    budgets=document.budgets, spaces=(space,) if space is not None else ())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- a file's models as members of a model space ---------------------------------------------------------


def number(x: float) -> float:
    """A float for JSON: -0.0 (a layout's coordinate, a solver's zero) becomes 0.0."""
    return float(x) + 0.0


def read_document(path: Path) -> tuple[Document, list[Diagnostic]]:
    """FILE parsed, with its syntax errors."""
    result = parse(read_source(path).text)
    return result.document, list(result.diagnostics)


def _broken_models(document: Document, diagnostics: list[Diagnostic]) -> dict[str, Diagnostic]:
    """Models with a syntax error among their lines: the parser dropped the broken layer, so their
    structure as parsed is not the one written."""
    starts = sorted((m.range.start.line, m.name) for m in document.models)
    broken: dict[str, Diagnostic] = {}
    for d in diagnostics:
        if d.severity != Severity.ERROR:
            continue
        owner = d.model
        if owner is None:
            before = [name for line, name in starts if line <= d.range.start.line]
            owner = before[-1] if before else None
        if owner is not None:
            broken.setdefault(owner, d)
    return broken


def file_models(path: Path) -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """The models of FILE by name, and why each model left out cannot be compared as written."""
    document, diagnostics = read_document(path)
    broken = _broken_models(document, diagnostics)
    models: dict[str, ModelSpec] = {}
    problems: dict[str, str] = {}
    for model in document.models:
        if model.name in models or model.name in problems:
            models.pop(model.name, None)
            problems.setdefault(model.name, f"model '{model.name}' is defined more than once")
        elif model.name in broken:
            d = broken[model.name]
            problems[model.name] = f"{path}:{d.range}: {d.message}"
        else:
            models[model.name] = model
    return models, problems


def require_model(path: Path, name: str, known: Mapping[str, object], problems: Mapping[str, str]) -> None:
    if name in problems:
        raise UsageError(f"cannot compare '{name}': {problems[name]}")
    if name not in known:
        raise unknown_model(path, name, [*known, *problems])


def warn_skipped(problems: Mapping[str, str]) -> None:
    for name, reason in problems.items():
        print(f"note: left out '{name}': {reason}", file=sys.stderr)


@contextmanager
def open_space(args: argparse.Namespace, *, create: bool = False) -> Iterator[tuple[ModelSpace, Store | None]]:
    """The model space over FILE's store (--store, or .remap/remap.db beside FILE) and the store itself.

    With `create` (a layout is something recorded) the store is made if missing. Otherwise an existing one
    is used for its cached distances, and without one the distances live in memory; the predictions space
    needs the store's runs, so there a missing store is an error.
    """
    from remapdsl.space.model_space import ModelSpace

    location = store_path(args, args.file)
    store: Store | None
    if create:  # a read-only store still shows the positions it keeps; placing new ones there is refused
        store = store_to_write_or_read(location)
    elif args.space == "predictions":
        store = read_store(location)
    else:  # the cache is read, and extended only in memory
        store = read_store(location) if location.is_file() else None
    try:
        yield ModelSpace(store, workers=getattr(args, "workers", 2)), store
    finally:
        if store is not None:
            store.close()


def file_members(args: argparse.Namespace, space: ModelSpace, store: Store | None, models: Mapping[str, ModelSpec],
                 problems: Mapping[str, str], names: Sequence[str] | None = None) -> Members:
    """FILE's models (or those of `names`) as members of the space asked for; those left out say why."""
    from remapdsl.space.model_space import Members

    chosen = {n: models[n] for n in names} if names is not None else dict(models)
    if args.space == "predictions":
        assert store is not None  # open_space insists on one for this space
        members = space.predictions(trained_predictions(args.file, list(chosen), store))
    else:
        members = space.structural(chosen)
    return Members(members.space, members.keys, {**problems, **members.problems})


def trained_predictions(path: Path, names: list[str], store: Store) -> dict[str, RunPredictions]:
    """The run standing for each named model in the predictions space: its finished run on the file's data.

    All runs must share the data set and its split, so that example i is the same image for every model;
    runs with the file's training settings are preferred, other finished runs on the same data are used
    otherwise. A model without such a run is a usage error naming it. Distances between runs are cached
    by run id.
    """
    from remapdsl.space.model_space import RunPredictions
    from remapdsl.store.db import FINISHED
    from remapdsl.store.queue import describe_models
    from remapdsl.store.results import pick_run

    document, _ = read_document(path)
    folder = path.resolve().parent
    data = load_document_data(document, folder)
    settings_key = settings_of(document).key()
    described = {m.name: m for m, _ in describe_models(document, names, base_dir=folder)}
    out: dict[str, RunPredictions] = {}
    missing: list[str] = []
    for name in names:
        run = pick_run(store, described[name].hash, data.key, settings_key)
        if run is None or run.status not in FINISHED:
            run = next((r for r in store.runs(described[name].hash)
                        if r.data_key == data.key and r.status in FINISHED), None)
        predictions = store.predictions(run.id) if run is not None else None
        if run is None or predictions is None:
            missing.append(name)
        else:
            out[name] = RunPredictions(run.id, predictions)
    if missing:
        raise UsageError(f"no finished run on this data for {', '.join(missing)} in {store.path}: the predictions "
                         "space compares validation predictions of trained models; train them first "
                         f"(`remap train {path}`), or use --space structural")
    return out


@contextmanager
def comparable() -> Iterator[None]:
    """Predictions that cannot be compared (other lengths) are bad input, said as such."""
    from remapdsl.space.prediction_distance import PredictionError

    try:
        yield
    except PredictionError as e:
        raise UsageError(str(e)) from None


# --- serving the overview -------------------------------------------------------------------------------


def check_serving(file: Path | None, args: argparse.Namespace) -> None:
    """UsageError when the overview cannot serve `file` (it has errors) on the port asked for (taken)."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535; found {args.port}")
    from remapdsl_server.overview.serve import PortInUse, check_port
    from remapdsl_server.overview.workspace import HeaderError, check_file

    if file is not None:
        try:
            check_file(file)
        except HeaderError as e:
            raise UsageError(str(e)) from None
    try:
        check_port(args.host, args.port)
    except PortInUse as e:
        raise UsageError(str(e)) from None


def serve_file(file: Path | None, store_path: Path, args: argparse.Namespace) -> int:
    """Serve the overview of `store_path` (with `file`'s header) as the serve options of `args` ask."""
    check_serving(file, args)
    from remapdsl_server.overview.app import config_for
    from remapdsl_server.overview.serve import PortInUse, serve

    try:
        return serve(config_for(store_path, file), host=args.host, port=args.port, worker=args.worker,
                     worker_args=executor_argv(args), browser=args.browser)
    except PortInUse as e:
        raise UsageError(str(e)) from None
