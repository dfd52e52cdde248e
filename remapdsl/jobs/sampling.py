"""Sampling a population from the overview: N models from REMAP's Markov chain (`remapdsl.search.sampler`,
as `remap sample` draws them), appended to the workspace's file or written to a new file beside it with
the same header, then registered and queued.

The file's `budget params` caps the sampler, so that no sampled model breaks it. Appended models get the
next free names (`m020`, `m021`, ... after `m019`), and a model whose architecture the file has already
is left out with a note. Writes go through `remapdsl.jobs.files`: atomic, never over a file saved
meanwhile (read again once), never over an existing file when a new one is asked for, never outside the
workspace's folder. Problems are `GenerateError`s; nothing is written when one is raised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from remapdsl.jobs.enqueue import Checked, EnqueueError, Plan, queue_document
from remapdsl.jobs.files import FileChanged, FileProblem, FileText, read_text, replace_text, write_new
from remapdsl.jobs.generate import MAX_SEED, GenerateError, analysed, check_count
from remapdsl.language.analysis import Analysis
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Document, ModelSpec
from remapdsl.language.printer import format_document
from remapdsl.search.children import appended
from remapdsl.search.sampler import sample_models
from remapdsl.store.db import Store, StoreError

MAX_SAMPLED = 1000
DEFAULT_MAX_PARAMS = 1_000_000  # the reference's cap, as `remap sample` has it
_NUMBERED = re.compile(r"m(\d+)")


@dataclass(frozen=True)
class Sampled:
    path: Path  # the file written
    names: tuple[str, ...]
    notes: tuple[str, ...]
    plan: Plan | None = None
    queue_problem: str = ""

    def message(self) -> str:
        parts = [f"sampled {len(self.names)} model{'s' if len(self.names) != 1 else ''} into {self.path.name}"]
        if self.plan is not None:
            parts.append(f"queued {sum(self.plan.new)} for training")
        if self.queue_problem:
            parts.append(f"not queued: {self.queue_problem}")
        return "; ".join([*parts, *self.notes])


def sample_into(path: str | Path, n: int, seed: int, *, target: str | Path | None = None, store: Store | None = None,
                max_params: int = DEFAULT_MAX_PARAMS, device: str = "auto") -> Sampled:
    """Sample `n` models with `seed` for the data of the file at `path`; append them to it (`target` None or
    the file itself) or write them to the new file `target` in its folder with its header; queue them in
    `store` when given."""
    check_count("the number of models", n, 1, MAX_SAMPLED)
    check_count("the seed", seed, 0, MAX_SEED)
    check_count("the parameter cap", max_params, 1, 10**12)
    file = Path(path)
    folder = file.resolve().parent
    new_file = None if target is None else _new_file(Path(target), folder, file)
    notes: tuple[str, ...] = ()
    for attempt in range(2):
        source = _read(file)
        analysis = analysed(source.text, folder)
        if analysis.dataset is None:
            raise GenerateError(f"the data line of {file.name} cannot be used, so nothing can be sampled for it; "
                                "fix the data line first")
        models = _sample(analysis, n, seed, max_params)
        try:
            if new_file is not None:
                document = Document(models=tuple(models), data=analysis.document.data,
                                    train=analysis.document.train, budgets=analysis.document.budgets)
                write_new(new_file, format_document(document))
                written, text = new_file, format_document(document)
            else:
                models, notes = _fresh(analysis, models)
                if not models:
                    return Sampled(file, (), notes)
                text = appended(source.text, models)
                replace_text(source, text)
                written = file
            break
        except FileChanged as e:
            if attempt == 1:
                raise GenerateError(f"{e}, twice while the models were being written; nothing was written: "
                                    "try again") from None
        except FileProblem as e:
            raise GenerateError(str(e)) from None
    names = tuple(m.name for m in models)
    if store is None:
        return Sampled(written, names, notes)
    try:
        plan = queue_document(store, Checked(written, analysed(text, folder).document, list(names)), epochs=None,
                              device=device, force=False)
    except (EnqueueError, StoreError, OSError) as e:
        return Sampled(written, names, notes, queue_problem=str(e))
    return Sampled(written, names, notes, plan)


def _new_file(target: Path, folder: Path, current: Path) -> Path:
    """`target` as a new .remap file in the workspace's folder; GenerateError otherwise."""
    if target.name != str(target) and target.resolve().parent != folder:
        raise GenerateError(f"a new file goes beside {current.name}, in {folder}; found {target}")
    if target.suffix != ".remap" or not target.stem or target.name.startswith("."):
        raise GenerateError(f"a new file needs a name ending in .remap, such as more.remap; found '{target.name}'")
    return folder / target.name


def _read(file: Path) -> FileText:
    try:
        return read_text(file)
    except FileProblem as e:
        raise GenerateError(str(e)) from None


def _sample(analysis: Analysis, n: int, seed: int, max_params: int) -> list[ModelSpec]:
    assert analysis.dataset is not None
    budget = analysis.document.budget("params")
    if budget is not None:
        limit = math.floor(budget.limit)
        max_params = min(max_params, limit - 1 if budget.strict and limit == budget.limit else limit)
    try:
        return sample_models(n, analysis.dataset, seed, max_params=max_params)
    except ValueError as e:
        raise GenerateError(str(e)) from None


def _fresh(analysis: Analysis, models: list[ModelSpec]) -> tuple[list[ModelSpec], tuple[str, ...]]:
    """The sampled models the file does not have yet, renamed after its highest `mNNN`; a note for the others."""
    known = {architecture_hash(m): m.name for m in analysis.document.models}
    taken = {m.name for m in analysis.document.models}
    numbers = [int(match.group(1)) for name in taken if (match := _NUMBERED.fullmatch(name))]
    number = max(numbers, default=-1) + 1
    width = max(3, len(str(number + len(models))))
    out: list[ModelSpec] = []
    notes: list[str] = []
    for model in models:
        key = architecture_hash(model)
        if key in known:
            notes.append(f"a sampled model was left out: it has the architecture of '{known[key]}'")
            continue
        while f"m{number:0{width}d}" in taken:
            number += 1
        name = f"m{number:0{width}d}"
        taken.add(name)
        known[key] = name
        out.append(replace(model, name=name))
    return out, tuple(notes)
