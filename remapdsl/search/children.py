"""What deriving children needs to know about the document their parent lives in.

Shared by the `remap ablate` and `remap vary` commands and by the language server's code actions: which
errors stop a model from having children, the parent with the document's data, budget, names and
architectures, and the children's blocks in the file's own line endings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from remapdsl.language.analysis import Analysis, ModelInfo
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Budget, Document, ModelSpec
from remapdsl.language.printer import format_model


@dataclass(frozen=True)
class Parent:
    """A model to derive children from, with the document facts children are checked against."""

    model: ModelSpec
    dataset: DatasetInfo
    budget: Budget | None
    document: Document = field(repr=False, compare=False)

    @staticmethod
    def of(analysis: Analysis, model: ModelSpec) -> Parent:
        """`model` of an analysed document whose data set is known (see `parent_problem`)."""
        assert analysis.dataset is not None
        return Parent(model, analysis.dataset, analysis.document.budget("params"), analysis.document)

    @cached_property
    def names(self) -> frozenset[str]:
        """Every model name of the document: children get new ones."""
        return frozenset(m.name for m in self.document.models)

    @cached_property
    def hashes(self) -> frozenset[str]:
        """Every architecture of the document, which ablations and variations do not repeat. Computed when
        first asked for: a handcrafted edit of one layer should not hash a thousand models."""
        return frozenset(architecture_hash(m) for m in self.document.models)


def model_errors(analysis: Analysis, info: ModelInfo) -> list[Diagnostic]:
    """The model's own errors, syntax errors in its lines, and header errors that leave its shapes unknown.

    A syntax error in a layer line drops that layer from the parsed model, so the model alone can look
    valid while its text is not: its lines, up to the next model, are searched too.
    """
    start = info.model.range.start.line
    end = next((m.range.start.line for m in analysis.document.models if m.range.start.line > start), None)
    data = analysis.document.data
    # without a usable data set no shape is known: the data line's errors concern every model
    data_line = data.range.start.line if data is not None and analysis.dataset is None else None
    out = [d for d in info.diagnostics if d.severity == Severity.ERROR]
    for d in analysis.diagnostics:
        if d.severity != Severity.ERROR or d.model is not None or d in out:
            continue
        line = d.range.start.line
        on_its_lines = d.code == "syntax" and start <= line and (end is None or line < end)
        if on_its_lines or line == data_line:
            out.append(d)
    return sorted(out, key=lambda d: d.range)  # ranges order as (start, end)


def blocking_errors(errors: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The errors that stop a model from having children: all but its budget (what ablation shrinks)."""
    return [d for d in errors if d.code != "budget"]


def parent_problem(analysis: Analysis, name: str) -> str | None:
    """Why model `name` cannot have children now, in the user's words; None when it can."""
    info = analysis.models.get(name)
    if info is None:
        return f"there is no model '{name}'"
    errors = blocking_errors(model_errors(analysis, info))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"model '{name}' has errors; fix them first: line {errors[0].range}: {errors[0].message}{more}"
    if analysis.dataset is None:
        return "the data line cannot be used, so shapes are unknown; fix the data line first"
    return None


def parent_of(analysis: Analysis, name: str) -> Parent:
    """Model `name` as a parent; ValueError saying why when it cannot have children."""
    problem = parent_problem(analysis, name)
    if problem is not None:
        raise ValueError(problem)
    return Parent.of(analysis, analysis.models[name].model)


def line_ending(text: str) -> str:
    """The file's line ending: CRLF when it has any, CR in a file of CRs alone, otherwise LF."""
    if "\r\n" in text:
        return "\r\n"
    return "\r" if "\r" in text and "\n" not in text else "\n"


def block_text(model: ModelSpec, newline: str = "\n") -> str:
    """The canonical block of `model` (its comment lines, model line and layers) ending in `newline`."""
    text = format_model(model)
    return text if newline == "\n" else text.replace("\n", newline)


def appended(text: str, models: Iterable[ModelSpec]) -> str:
    """`text` with the models' blocks at its end, a blank line before each, in the file's line endings."""
    newline = line_ending(text)
    blocks = newline.join(block_text(m, newline) for m in models)
    return text.rstrip() + newline + newline + blocks if text.strip() else blocks
