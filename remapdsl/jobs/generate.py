"""Generating children in a workspace file, as the overview's Generate tab does, through the library that
the command line and the language server use.

A request names a parent model of a `.remap` file and what to derive from it: an ablation of chosen
layers (`remapdsl.search.ablation`), variations with per-layer operators (`remapdsl.search.variation`),
or a handcrafted child's text. `propose` computes the children from the file's text and writes nothing;
`generate` writes them after their parent and the children already following it (where the language
server's spawn puts them, in the blocks `remap ablate` and `remap vary` write), through
`remapdsl.jobs.files`, then registers and queues them through `remapdsl.jobs.enqueue`. A file saved on
disk in between is never overwritten: it is read again and the children derived again, once, and
otherwise the request fails saying so.

Budgets: a child over the file's `budget params` is proposed and marked, never dropped in silence, and
is written and queued only when the request confirms it. Variations are drawn within the budget, as
`remap vary` draws them: an oversized candidate is drawn again, and a note counts those.

Problems are `GenerateError`s whose message says what was wrong; nothing is written when one is raised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from remapdsl.jobs.enqueue import Checked, EnqueueError, Plan, queue_document
from remapdsl.jobs.files import FileChanged, FileProblem, FileText, read_text, replace_text
from remapdsl.language.analysis import Analysis, ModelInfo, analyze, analyze_model
from remapdsl.language.annotations import VARIATION_OPS, allowed_ops
from remapdsl.language.diagnostics import Severity, TextEdit
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import Annotation, Comments, ModelSpec, Value
from remapdsl.language.parser import parse
from remapdsl.search import edits
from remapdsl.search.ablation import ablate
from remapdsl.search.changes import Change, describe_changes, new_layer_text, over_budget, unique_name
from remapdsl.search.children import Parent, appended, block_text, line_ending, parent_of
from remapdsl.search.spawn import DEFAULT_VARIATIONS, checked, insertion, read_layer
from remapdsl.search.variation import vary
from remapdsl.snac.diff import ADDED, CHANGED, REMOVED, diff_models
from remapdsl.store.db import Store, StoreError
from remapdsl.store.queue import model_origin

# What one request from the overview may ask for: a click that would write ten thousand models into a
# file is a slip of the keyboard, not a plan (the command line allows more).
MAX_VARIATIONS = 100
MAX_CHANGES = 10
MAX_SEED = 2**31 - 1
HANDCRAFTED = "handcrafted"
VARIATION_ANNOTATIONS = ("keep", "allow", "deny")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class GenerateError(Exception):
    """A request that cannot be carried out; nothing was written. The message says why."""


@dataclass(frozen=True)
class Ablation:
    """One child per layer of `layers` removed (None: every layer ablation picks by itself)."""

    parent: str
    layers: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Variation:
    """`n` children of 1..`max_changes` random changes drawn from `ops`.

    `layer_ops`, one entry per layer of the parent, says which operators may touch each layer in place of
    its `@keep`/`@allow`/`@deny` annotations; the children then carry those annotations, so the file says
    under which constraints they were drawn (and a variation of a child keeps to them).
    """

    parent: str
    n: int = DEFAULT_VARIATIONS
    max_changes: int = 1
    ops: tuple[str, ...] = VARIATION_OPS
    layer_ops: tuple[tuple[str, ...], ...] | None = None
    seed: int = 0


@dataclass(frozen=True)
class Handcrafted:
    """The child written as `text`: one model block `from` the parent."""

    parent: str
    text: str


Request = Ablation | Variation | Handcrafted


@dataclass(frozen=True)
class Proposed:
    """A child with its analysis against the file's budget."""

    model: ModelSpec
    info: ModelInfo
    over_budget: bool

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def origin(self) -> str:
        return model_origin(self.model)[0]

    @property
    def changes(self) -> str:
        return model_origin(self.model)[1]

    @property
    def text(self) -> str:
        return block_text(self.model)


@dataclass(frozen=True)
class Proposal:
    """The children a request gives on one text of the file, and a note for each one left out."""

    parent: ModelSpec
    children: tuple[Proposed, ...]
    notes: tuple[str, ...]

    def chosen(self, confirm_over_budget: bool) -> tuple[Proposed, ...]:
        return tuple(c for c in self.children if confirm_over_budget or not c.over_budget)


@dataclass(frozen=True)
class Generated:
    """What a request did: the children proposed, those written (and queued when a store was given)."""

    proposal: Proposal
    written: tuple[str, ...]
    held_back: tuple[str, ...]  # over the budget and not confirmed: neither written nor queued
    plan: Plan | None = None
    queue_problem: str = ""  # why the written children were not queued
    retried: bool = False  # the file changed on disk meanwhile, and was read again

    @property
    def notes(self) -> tuple[str, ...]:
        return self.proposal.notes

    def message(self) -> str:
        """One paragraph for the user."""
        parts = []
        if self.written:
            parts.append(f"added {_plural(len(self.written), 'child', 'children')} of "
                         f"'{self.proposal.parent.name}': {', '.join(self.written)}")
        else:
            parts.append(f"no child of '{self.proposal.parent.name}' was added")
        if self.plan is not None:
            parts.append(f"queued {sum(self.plan.new)} for training")
        if self.queue_problem:
            parts.append(f"not queued: {self.queue_problem}")
        if self.held_back:
            parts.append(f"over the parameter budget, held back until confirmed: {', '.join(self.held_back)}")
        parts.extend(self.notes)
        return "; ".join(parts)


# --- proposing ---------------------------------------------------------------------------------------------


def analysed(text: str, base_dir: Path) -> Analysis:
    result = parse(text)
    return analyze(result.document, result.diagnostics, base_dir)


def propose(text: str, base_dir: Path, request: Request) -> Proposal:
    """The children `request` gives on the file text `text` (in folder `base_dir`); nothing is written."""
    analysis = analysed(text, base_dir)
    try:
        parent = parent_of(analysis, request.parent)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    if isinstance(request, Ablation):
        made, notes = _ablation(parent, request)
    elif isinstance(request, Variation):
        made, notes = _variation(parent, request)
    else:
        return _handcrafted(text, base_dir, parent, request)
    # read back and validated as the language server's spawn does, the budget aside: it is marked, not a reason
    kept, left_out = checked(made, replace(parent, budget=None))
    children = tuple(_proposed(m, parent) for m in kept)
    return Proposal(parent.model, children, (*notes, *left_out))


def _proposed(model: ModelSpec, parent: Parent) -> Proposed:
    info = analyze_model(model, parent.dataset, parent.budget)
    return Proposed(model, info, parent.budget is not None and over_budget(info))


def _ablation(parent: Parent, request: Ablation) -> tuple[list[ModelSpec], list[str]]:
    if request.layers is not None and not request.layers:
        raise GenerateError("choose at least one layer to ablate")
    try:
        # without the budget, so that a child over it is kept and marked rather than left out
        result = ablate(parent.model, parent.dataset, request.layers, None, existing_names=parent.names,
                        existing_hashes=parent.hashes)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    return [c.model for c in result.children], list(result.notes)


def _variation(parent: Parent, request: Variation) -> tuple[list[ModelSpec], list[str]]:
    check_count("the number of variations", request.n, 1, MAX_VARIATIONS)
    check_count("the number of changes per child", request.max_changes, 1, MAX_CHANGES)
    check_count("the seed", request.seed, 0, MAX_SEED)
    model = parent.model
    if request.layer_ops is not None:
        model = with_layer_ops(model, request.layer_ops)
    try:
        result = vary(model, parent.dataset, request.n, max_changes=request.max_changes, ops=request.ops,
                      seed=request.seed, budget=parent.budget, existing_hashes=parent.hashes,
                      existing_names=parent.names)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    return [c.model for c in result.children], list(result.notes)


def with_layer_ops(model: ModelSpec, layer_ops: Sequence[Sequence[str]]) -> ModelSpec:
    """`model` with each layer's variation annotations replaced where `layer_ops` allows other operators
    than its annotations do (`@keep` for none, `@allow(...)` otherwise); other layers as they are."""
    if len(layer_ops) != len(model.layers):
        raise GenerateError(f"operators are given for {len(layer_ops)} layers; '{model.name}' has "
                            f"{len(model.layers)}")
    layers = []
    for i, (layer, ops) in enumerate(zip(model.layers, layer_ops, strict=True)):
        unknown = [op for op in ops if op not in VARIATION_OPS]
        if unknown:
            raise GenerateError(f"layer {i}: unknown operator '{unknown[0]}'; expected some of "
                                f"{', '.join(VARIATION_OPS)}")
        wanted = frozenset(ops)
        if wanted == allowed_ops(layer):
            layers.append(layer)
            continue
        others = tuple(a for a in layer.annotations if a.name not in VARIATION_ANNOTATIONS)
        mark = (Annotation("allow", tuple(op for op in VARIATION_OPS if op in wanted)) if wanted
                else Annotation("keep"))
        layers.append(replace(layer, annotations=(*others, mark)))
    return replace(model, layers=tuple(layers))


def check_count(what: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenerateError(f"{what} must be a whole number; found {value!r}")
    if not low <= value <= high:
        raise GenerateError(f"{what} must be from {low} to {high:,}; found {value:,}")


# --- handcrafted children ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextProblem:
    """A diagnostic of the language in a child's text: line and column from 1, in the child's own text."""

    line: int
    column: int
    message: str
    severity: str  # "error", "warning", ...
    code: str = ""

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class ChildText:
    """A handcrafted child's text checked in its place in the file: the language's own diagnostics, and the
    child's model and analysis (shapes, parameters) when it has one."""

    problems: tuple[TextProblem, ...]
    model: ModelSpec | None = None
    info: ModelInfo | None = None
    over_budget: bool = False

    @property
    def errors(self) -> tuple[TextProblem, ...]:
        """The errors that stop the child from being written: all but its budget."""
        return tuple(p for p in self.problems if p.severity == Severity.ERROR.label and p.code != "budget")

    def why_not(self) -> str | None:
        """Why the child cannot be queued, in words; None when it can."""
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"the child's text has errors: {self.errors[0]}{more}"
        if self.model is None:
            return "the text holds no model"
        return None


def check_child_text(text: str, base_dir: Path, parent_name: str, child_text: str) -> ChildText:
    """`child_text` analysed as it would be in the file `text`, after its parent's family of children.

    Only what concerns the child is reported, at its own lines: syntax and layer errors, shapes, budget, a
    `from` other than the parent, and a name the file has already.
    """
    analysis = analysed(text, base_dir)
    try:
        parent = parent_of(analysis, parent_name)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    full, first = _with_block(text, analysis, parent, child_text)
    last = first + len(_LINE_BREAK.split(child_text.rstrip("\r\n"))) - 1
    result = parse(full)
    analysis_after = analyze(result.document, result.diagnostics, base_dir)
    problems = [_local(d.range.start.line, d.range.start.character, d.message, d.severity.label, d.code, first)
                for d in analysis_after.diagnostics if first <= d.range.start.line <= last
                and d.code != "duplicate-model"]
    mine = [m for m in result.document.models if first <= m.range.start.line <= last]
    if not mine:
        problems.append(TextProblem(1, 1, f"expected one model: `model NAME from {parent_name}:` and its layers",
                                    Severity.ERROR.label, "syntax"))
        return ChildText(tuple(problems))
    for extra in mine[1:]:
        start = extra.range.start
        problems.append(_local(start.line, start.character, "a handcrafted child is one model; this is a second one",
                               Severity.ERROR.label, "syntax", first))
    model = mine[0]
    at = model.name_range.start
    if model.name in parent.names:
        line = parent.document.model(model.name)
        where = f" at line {line.name_range.start.line + 1} of the file" if line is not None else ""
        problems.append(_local(at.line, at.character, f"model '{model.name}' is already defined{where}; "
                               "choose another name", Severity.ERROR.label, "duplicate-model", first))
    if model.parent != parent_name:
        problems.append(_local(at.line, at.character, f"a child of '{parent_name}' is written "
                               f"`model {model.name} from {parent_name}:`", Severity.ERROR.label, "parent", first))
    info = analysis_after.models.get(model.name)
    if info is None or info.model.range != model.range:
        info = analyze_model(model, parent.dataset, parent.budget)
    problems.sort(key=lambda p: (p.line, p.column))
    return ChildText(tuple(problems), model, info, parent.budget is not None and over_budget(info))


def _local(line: int, character: int, message: str, severity: str, code: str, first: int) -> TextProblem:
    return TextProblem(line - first + 1, character + 1, message, severity, code)


def _with_block(text: str, analysis: Analysis, parent: Parent, block: str) -> tuple[str, int]:
    """`text` with `block` where children of `parent` go, and the line the block starts on."""
    try:
        at = insertion(text, analysis.document, parent.model, ())
    except ValueError as e:
        raise GenerateError(str(e)) from None
    newline = line_ending(text)
    lead = at.new_text + newline  # a blank line before the block, as before every child
    body = lead + newline.join(_LINE_BREAK.split(block.rstrip("\r\n"))) + newline
    return applied(text, TextEdit(at.range, body)), at.range.start.line + len(_LINE_BREAK.findall(lead))


def applied(text: str, edit: TextEdit) -> str:
    """`text` with `edit` applied (positions in characters, lines split as the parser splits them)."""
    start = _offset(text, edit.range.start.line, edit.range.start.character)
    end = _offset(text, edit.range.end.line, edit.range.end.character)
    return text[:start] + edit.new_text + text[end:]


def _offset(text: str, line: int, character: int) -> int:
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]
    return min(starts[line] + character, len(text)) if line < len(starts) else len(text)


def _handcrafted(text: str, base_dir: Path, parent: Parent, request: Handcrafted) -> Proposal:
    check = check_child_text(text, base_dir, parent.model.name, request.text)
    problem = check.why_not()
    if problem is not None:
        raise GenerateError(f"{problem}; nothing was written")
    assert check.model is not None
    model = with_change_comment(check.model, parent)
    kept, notes = checked([model], replace(parent, budget=None))
    key = architecture_hash(model)
    if kept and key in parent.hashes:
        same = next(m.name for m in parent.document.models if architecture_hash(m) == key)
        return Proposal(parent.model, (), (f"{model.name}: skipped, it has the same architecture as '{same}'",))
    return Proposal(parent.model, tuple(_proposed(m, parent) for m in kept), tuple(notes))


def changes_between(parent: ModelInfo, child: ModelInfo) -> tuple[Change, ...]:
    """The change records that take `parent` to `child`, aligned as the diff chip aligns them and numbered
    as the variation records are: a parent's layer by its index in the parent, an added one by the child's."""
    out: list[Change] = []
    for row in diff_models(parent, child).rows:
        if row.status == REMOVED and row.parent is not None:
            out.append(Change("remove", row.parent.index, row.parent.kind))
        elif row.status == ADDED and row.child is not None:
            out.append(Change("prepend", row.child.index, row.child.kind,
                              layer=new_layer_text(child.model.layers[row.child.index])))
        elif row.status == CHANGED and row.parent is not None and row.child is not None:
            old, new = row.parent, row.child
            if old.kind != new.kind:
                out.append(Change("replace", old.index, old.kind,
                                  layer=new_layer_text(child.model.layers[new.index])))
                continue
            for name in [*old.params, *(n for n in new.params if n not in old.params)]:
                before, after = old.params.get(name), new.params.get(name)
                if before != after:
                    out.append(Change("reparameterize", old.index, old.kind, param=name, old=before, new=after))
    return tuple(out)


def with_change_comment(model: ModelSpec, parent: Parent) -> ModelSpec:
    """`model` whose `handcrafted:` comment (added when it has no comment) says what differs from its parent."""
    leading = model.comments.leading
    if leading and not leading[0].strip().lower().startswith(f"{HANDCRAFTED}:"):
        return model  # the user's own words
    changes = changes_between(analyze_model(parent.model, parent.dataset), analyze_model(model, parent.dataset))
    line = f"{HANDCRAFTED}: {describe_changes(changes) or 'no change'}"
    return replace(model, comments=replace(model.comments, leading=(line, *leading[1:])))


# --- the draft a user edits through the chip's handles ------------------------------------------------------


HANDLE_OPS = ("insert", "remove", "reparameterize", "replace")


def new_draft(text: str, base_dir: Path, parent_name: str) -> str:
    """The text of a fresh handcrafted child: the parent's layers under a free `<parent>_edit` name."""
    analysis = analysed(text, base_dir)
    try:
        parent = parent_of(analysis, parent_name)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    name = unique_name(f"{parent_name}_edit", parent.names)
    model = ModelSpec(name, parent.model.layers, parent=parent_name,
                      comments=Comments((f"{HANDCRAFTED}: no change",)))
    return block_text(model)


def edit_draft(text: str, base_dir: Path, parent_name: str, draft: str, op: str, index: int, *, layer: str = "",
               param: str = "", value: Value | None = None) -> str:
    """`draft` (a handcrafted child's text) with one handle's edit: `insert` `layer` (text such as
    `dropout 0.25`) before layer `index` (its layer count: after the last), `remove` or `replace` layer
    `index`, or `reparameterize` its `param` to `value`; its change comment follows."""
    analysis = analysed(text, base_dir)
    try:
        parent = parent_of(analysis, parent_name)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    result = parse(draft)
    if result.diagnostics or len(result.document.models) != 1:
        why = f" ({result.diagnostics[0].message})" if result.diagnostics else ""
        raise GenerateError(f"fix the child's text before editing it through the chip{why}")
    model = result.document.models[0]
    try:
        if op == "insert":
            edit = edits.insert(model.layers, index, read_layer(layer))
        elif op == "remove":
            edit = edits.remove(model.layers, index)
        elif op == "replace":
            edit = edits.replace_at(model.layers, index, read_layer(layer))
        elif op == "reparameterize":
            if value is None:
                raise ValueError("reparameterize needs a value")
            edit = edits.set_param(model.layers, index, param, value)
        else:
            raise ValueError(f"unknown edit '{op}'; expected one of {', '.join(HANDLE_OPS)}")
    except ValueError as e:
        raise GenerateError(str(e)) from None
    return block_text(with_change_comment(replace(model, layers=edit.layers), parent))


# --- writing -------------------------------------------------------------------------------------------------


def generate(path: str | Path, request: Request, store: Store | None = None, *, confirm_over_budget: bool = False,
             device: str = "auto") -> Generated:
    """Carry `request` out on the file at `path`: write the children after their parent, then register and
    queue them in `store` (when given) with the file's settings and data.

    Children over the budget are written and queued only with `confirm_over_budget`. A file saved on disk
    meanwhile is read again and the children derived again, once; GenerateError when it changed again, or
    cannot be read or written (then it is as it was).
    """
    file = Path(path)
    retried = False
    for attempt in range(2):
        source = _read(file)
        proposal = propose(source.text, file.resolve().parent, request)
        chosen = proposal.chosen(confirm_over_budget)
        held = tuple(c.name for c in proposal.children if c not in chosen)
        if not chosen:
            return Generated(proposal, (), held, retried=retried)
        try:
            new_text = _with_children(source.text, file.resolve().parent, proposal.parent, chosen)
            replace_text(source, new_text)
            break
        except FileChanged as e:
            if attempt == 1:
                raise GenerateError(f"{e}, twice while the children were being written; nothing was written: "
                                    "try again") from None
            retried = True
        except FileProblem as e:
            raise GenerateError(str(e)) from None
    written = tuple(c.name for c in chosen)
    if store is None:
        return Generated(proposal, written, held, retried=retried)
    try:
        plan = queue_document(store, Checked(file, analysed(new_text, file.resolve().parent).document,
                                             list(written)), epochs=None, device=device, force=False,
                              origin=None)
    except (EnqueueError, StoreError, OSError) as e:
        return Generated(proposal, written, held, queue_problem=str(e), retried=retried)
    return Generated(proposal, written, held, plan, retried=retried)


def _read(file: Path) -> FileText:
    try:
        return read_text(file)
    except FileProblem as e:
        raise GenerateError(str(e)) from None


def _with_children(text: str, base_dir: Path, parent: ModelSpec, children: Sequence[Proposed]) -> str:
    analysis = analysed(text, base_dir)
    try:
        edit = insertion(text, analysis.document, analysis.models[parent.name].model, [c.model for c in children])
    except ValueError as e:
        raise GenerateError(str(e)) from None
    return applied(text, edit)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# --- a stored model into the file ------------------------------------------------------------------------------


def append_model(path: str | Path, model_text: str, name: str) -> str:
    """Append the model block `model_text` (a stored model's text) to the file at `path` under `name`, or
    `name_2`... when the file has that name already; the name used. GenerateError when the file has the
    architecture already (under the name it says), or cannot be written."""
    result = parse(model_text)
    if result.diagnostics or len(result.document.models) != 1:
        raise GenerateError("the model's text does not read as one model; nothing was written")
    model = result.document.models[0]
    file = Path(path)
    for attempt in range(2):
        source = _read(file)
        document = parse(source.text).document
        key = architecture_hash(model)
        same = next((m.name for m in document.models if architecture_hash(m) == key), None)
        if same is not None:
            raise GenerateError(f"{file.name} has this architecture already, as '{same}'; nothing was written")
        named = replace(model, name=unique_name(name, {m.name for m in document.models}))
        try:
            replace_text(source, appended(source.text, [named]))
            return named.name
        except FileChanged as e:
            if attempt == 1:
                raise GenerateError(f"{e}, twice while the model was being written; nothing was written: "
                                    "try again") from None
        except FileProblem as e:
            raise GenerateError(str(e)) from None
    raise AssertionError("unreachable")
