"""The Generate tab (the REMAP paper's Fig. 3 and 5): children of the selected model, through the library the
editor's code actions use (`remapdsl.jobs.generate`), so a child made here and one made in the editor are the
same model with the same name and change record.

- Ablations: a toggle per layer of the parent's chip (all that ablation takes by default) and one button.
- Variations: per layer, toggles for the operators it allows (prefilled from `@keep`/`@allow`/`@deny`); the
  number of children, changes per child and a seed.
- Handcraft: the draft child's chip as handles (+ before every layer and after the last; a layer to remove or
  reparameterize within the catalog's ranges; a handle to insert a layer of any kind) beside its DSL text,
  checked as the user types with the language's own diagnostics, its shapes and parameters; a child with
  errors is not queued, and the page says why.

Every generation writes the children into the workspace's file after their parent and queues them; children
over the file's `budget params` are listed and held back until the confirmation box is ticked.
"""

from __future__ import annotations

import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models.widgets import (
    Button,
    Checkbox,
    CheckboxButtonGroup,
    Div,
    NumericInput,
    RadioButtonGroup,
    Select,
    TextAreaInput,
    TextInput,
)
from remapdsl_server.overview.parents import FileModel, find
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.jobs.files import FileProblem, read_text
from remapdsl.jobs.generate import (
    DEFAULT_VARIATIONS,
    Ablation,
    ChildText,
    Generated,
    GenerateError,
    Handcrafted,
    Variation,
    analysed,
    check_child_text,
    edit_draft,
    generate,
    new_draft,
)
from remapdsl.language.analysis import ModelInfo
from remapdsl.language.annotations import VARIATION_OPS, allowed_ops
from remapdsl.language.catalog import LAYER_TYPES, describe_shape
from remapdsl.language.model import Value
from remapdsl.language.parser import parse
from remapdsl.language.printer import layer_text

WIDTH = 680
EMPTY = "<i>Select a model in the overview to generate children from it.</i>"
INSERT_DEFAULTS = {"dropout": "0.25"}  # a grid value, as the editor's insert offers


class GeneratePanel:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.parent: FileModel | None = None
        self.parent_hash: str | None = None
        self.layer_count = 0
        self.default_ablation: list[int] = []
        self.default_ops: list[list[int]] = []
        self.title = Div(text=EMPTY, width=WIDTH, name="generate_title")
        self.chip = Div(text="", width=WIDTH, name="generate_chip")
        self.message = Div(text="", width=WIDTH, name="generate_message")
        self.confirm = Checkbox(label="also add children over the parameter budget", active=False,
                                name="confirm_budget")
        # ablations
        self.ablate_layers = CheckboxButtonGroup(labels=[], active=[], name="ablate_layers")
        self.ablate_button = Button(label="Ablate the chosen layers", button_type="primary", name="ablate_button")
        self.ablate_button.on_click(state.guard("ablate", self.ablate))
        # variations
        self.ops = column(name="vary_ops")
        self.op_groups: list[CheckboxButtonGroup] = []
        self.count = NumericInput(title="variations", value=DEFAULT_VARIATIONS, mode="int", width=110,
                                  name="vary_n")
        self.changes = NumericInput(title="changes per child", value=1, mode="int", width=130, name="vary_changes")
        self.seed = NumericInput(title="seed", value=0, mode="int", width=110, name="vary_seed")
        self.vary_button = Button(label="Generate variations", button_type="primary", name="vary_button")
        self.vary_button.on_click(state.guard("vary", self.vary))
        # handcraft
        self.handles = RadioButtonGroup(labels=[], active=None, name="handcraft_handles")
        self.handles.on_change("active", state.guard("handle", self.on_handle))
        kinds: list[str | tuple[Any, str]] = list(LAYER_TYPES)
        self.kind = Select(title="insert a layer", options=kinds, value="dropout", width=130, name="insert_kind")
        self.kind.on_change("value", state.guard("insert kind", lambda _a, _o, new: self._default_args(new)))
        self.args = TextInput(title="its parameters", value=INSERT_DEFAULTS["dropout"], width=170, name="insert_args")
        self.insert_button = Button(label="Insert", width=80, name="insert_button")
        self.insert_button.on_click(state.guard("insert", self.insert))
        self.remove_button = Button(label="Remove this layer", width=140, name="remove_button")
        self.remove_button.on_click(state.guard("remove", self.remove))
        self.param = Select(title="parameter", options=[], width=130, name="reparam_param")
        self.param.on_change("value", state.guard("parameter", lambda _a, _o, _n: self._describe_param()))
        self.value = TextInput(title="new value", value="", width=260, name="reparam_value")
        self.reparam_button = Button(label="Set", width=60, name="reparam_button")
        self.reparam_button.on_click(state.guard("reparameterize", self.reparameterize))
        self.insert_row = row(self.kind, self.args, column(Div(text="&nbsp;"), self.insert_button), visible=False)
        self.layer_row = row(column(Div(text="&nbsp;"), self.remove_button), self.param, self.value,
                             column(Div(text="&nbsp;"), self.reparam_button), visible=False)
        self.text = TextAreaInput(title="the child's text", value="", rows=12, width=420, name="handcraft_text",
                                  styles={"font-family": "monospace"})
        self.text.on_change("value_input", state.guard("check the child", self._on_text))
        self.diagnostics = Div(text="", width=WIDTH, name="handcraft_diagnostics")
        self.shapes = Div(text="", width=250, name="handcraft_shapes")
        self.queue_button = Button(label="Queue this child", button_type="success", name="handcraft_queue",
                                   disabled=True)
        self.queue_button.on_click(state.guard("queue the child", self.queue_child))
        self.new_draft_button = Button(label="Start again from the parent", name="handcraft_reset")
        self.new_draft_button.on_click(state.guard("new draft", self.reset_draft))
        self.controls = [self.ablate_button, self.vary_button, self.insert_button, self.remove_button,
                         self.reparam_button, self.new_draft_button]
        self._enable(False)
        state.on("select", self.show)

    def layout(self) -> Any:
        section = "<b style='font-size:14px'>{}</b>".format
        return column(
            self.title, self.chip, self.message, self.confirm,
            Div(text=section("Ablations") + " <span style='color:#666'>one child per chosen layer removed</span>"),
            self.ablate_layers, self.ablate_button,
            Div(text=section("Variations") + " <span style='color:#666'>operators each layer allows</span>"),
            self.ops, row(self.count, self.changes, self.seed, column(Div(text="&nbsp;"), self.vary_button)),
            Div(text=section("Handcraft") + " <span style='color:#666'>+ inserts a layer; a layer can be removed "
                                            "or reparameterized</span>"),
            self.handles, self.insert_row, self.layer_row,
            row(self.text, self.shapes), self.diagnostics, row(self.queue_button, self.new_draft_button),
            name="generate_panel")

    # --- the parent ---------------------------------------------------------------------------------

    def show(self, model_hash: str | None) -> None:
        self.parent_hash = model_hash
        if model_hash is None:
            self._no_parent(EMPTY)
            return
        found = find(self.state, model_hash)
        if isinstance(found, str):
            self._no_parent(f"<i>{html.escape(found)}</i>")
            return
        self.parent = found
        analysis = analysed(found.text, found.path.parent)
        info = analysis.models[found.name]
        model = info.model
        self.layer_count = len(model.layers)
        head = self.layer_count - 1
        labels = [f"{i} {layer_text(layer)}" for i, layer in enumerate(model.layers)]
        self.title.text = (f"<b style='font-size:15px'>Generate from {html.escape(found.name)}</b> "
                           f"<span style='color:#666'>in {html.escape(found.path.name)} · "
                           f"{info.param_count:,} parameters</span>")
        self.chip.text = f"<img src='chip/{model_hash}/compact.svg' alt='SNAC chip of {html.escape(found.name)}'>"
        self.ablate_layers.labels = labels
        self.default_ablation = [i for i, layer in enumerate(model.layers) if i != head and
                                 "remove" in allowed_ops(layer)]
        self.ablate_layers.active = list(self.default_ablation)
        self.default_ops = [[VARIATION_OPS.index(op) for op in VARIATION_OPS if op in allowed_ops(layer)]
                            for layer in model.layers]
        self.op_groups = [CheckboxButtonGroup(labels=list(VARIATION_OPS), active=list(active), name=f"vary_ops_{i}")
                          for i, active in enumerate(self.default_ops)]
        self.ops.children = [row(Div(text=f"<code>{html.escape(label)}</code>", width=200), group)
                             for label, group in zip(labels, self.op_groups, strict=True)]
        self._enable(True)
        try:
            self.reset_draft()
        except GenerateError as e:  # a parent with errors: the tab says so, and generating says it again
            self._say(str(e), error=True)
            self.queue_button.disabled = True

    def _no_parent(self, text: str) -> None:
        self.parent = None
        self.title.text = text
        self.chip.text = ""
        self.ablate_layers.labels, self.ablate_layers.active = [], []
        self.ops.children = []
        self.op_groups = []
        self.handles.labels, self.handles.active = [], None
        self.text.value = ""
        self.diagnostics.text = self.shapes.text = ""
        self._enable(False)
        self.queue_button.disabled = True

    def _enable(self, on: bool) -> None:
        for control in self.controls:
            control.disabled = not on

    # --- generating ---------------------------------------------------------------------------------

    def ablate(self) -> None:
        chosen = sorted(self.ablate_layers.active)
        layers = None if chosen == sorted(self.default_ablation) else tuple(chosen)
        self._run(lambda name: Ablation(name, layers))

    def vary(self) -> None:
        layer_ops = None
        chosen = [sorted(g.active) for g in self.op_groups]
        if chosen != [sorted(a) for a in self.default_ops]:
            layer_ops = tuple(tuple(VARIATION_OPS[i] for i in active) for active in chosen)
        n, changes, seed = self.count.value, self.changes.value, self.seed.value
        self._run(lambda name: Variation(name, n=_whole(n, "the number of variations"),
                                         max_changes=_whole(changes, "the number of changes per child"),
                                         layer_ops=layer_ops, seed=_whole(seed, "the seed")))

    def queue_child(self) -> None:
        text = self._draft()
        check = self.check(text)
        problem = check.why_not() if check is not None else "there is no parent"
        if problem is not None:
            self._say(f"not queued: {problem}", error=True)
            return
        self._run(lambda name: Handcrafted(name, text), then=self.reset_draft)

    def _run(self, request_for: Any, then: Any = None) -> None:
        parent = self.parent
        if parent is None:
            self._say("select a model of the workspace file first", error=True)
            return
        try:
            done = generate(parent.path, request_for(parent.name), self.state.store,
                            confirm_over_budget=self.confirm.active)
        except GenerateError as e:
            self._say(str(e), error=True)
            return
        self._report(done)
        if done.written:
            self._refresh_parent()
            if then is not None:
                then()

    def _report(self, done: Generated) -> None:
        rows = []
        for child in done.proposal.children:
            mark = " <b style='color:#a40000'>over the budget</b>" if child.over_budget else ""
            state = "added" if child.name in done.written else "held back"
            rows.append(f"<li><code>{html.escape(child.name)}</code> ({state}, {child.info.param_count:,} "
                        f"parameters{mark}): {html.escape(child.changes)}</li>")
        notes = "".join(f"<li style='color:#666'>{html.escape(n)}</li>" for n in done.notes)
        self._say(done.message(), error=bool(done.queue_problem) or not done.written,
                  details=f"<ul style='margin:2px'>{''.join(rows)}{notes}</ul>")

    def _refresh_parent(self) -> None:
        if self.parent is not None:
            found = find(self.state, self.parent_hash) if self.parent_hash else None
            if found is not None and not isinstance(found, str):
                self.parent = found

    def _say(self, text: str, *, error: bool = False, details: str = "") -> None:
        colour = "#a40000" if error else "#1a6e1a"
        self.message.text = f"<div style='color:{colour}'>{html.escape(text)}</div>{details}"

    # --- handcrafting ---------------------------------------------------------------------------------

    def reset_draft(self) -> None:
        parent = self.parent
        if parent is None:
            return
        self._set_text(new_draft(parent.text, parent.path.parent, parent.name))

    def _on_text(self, _attr: str, _old: str, new: str) -> None:
        self.check(new)

    def _set_text(self, text: str) -> None:
        self.text.value = text
        self.text.value_input = text
        self.check(text)

    def _draft(self) -> str:
        """The child's text as typed so far (`value` follows only when the text area loses focus)."""
        return self.text.value_input if self.text.value_input is not None else self.text.value

    def check(self, text: str) -> ChildText | None:
        parent = self.parent
        if parent is None:
            return None
        current = _current_text(parent)
        try:
            check = check_child_text(current, parent.path.parent, parent.name, text)
        except GenerateError as e:
            self.diagnostics.text = f"<span style='color:#a40000'>{html.escape(str(e))}</span>"
            self.queue_button.disabled = True
            return None
        self._show_check(check)
        return check

    def _show_check(self, check: ChildText) -> None:
        lines = []
        for p in check.problems:
            colour = "#a40000" if p.severity == "error" else "#8a6d00"
            lines.append(f"<li style='color:{colour}'>line {p.line}, column {p.column}: {html.escape(p.message)}</li>")
        why = check.why_not()
        status = (f"<b style='color:#a40000'>cannot be queued: {html.escape(why)}</b>" if why else
                  "<b style='color:#8a6d00'>over the parameter budget: tick the box above to queue it</b>"
                  if check.over_budget else "<b style='color:#1a6e1a'>no errors: ready to queue</b>")
        self.diagnostics.text = status + (f"<ul style='margin:2px'>{''.join(lines)}</ul>" if lines else "")
        self.queue_button.disabled = why is not None
        self.shapes.text = _shapes(check.info) if check.info is not None else ""
        if check.model is not None:
            self.handles.labels = _handle_labels([layer_text(layer) for layer in check.model.layers])

    def on_handle(self, _attr: str, _old: int | None, new: int | None) -> None:
        self.insert_row.visible = new is not None and new % 2 == 0
        self.layer_row.visible = new is not None and new % 2 == 1
        if new is not None and new % 2 == 1:
            self._fill_params((new - 1) // 2)

    def _draft_layer(self, index: int) -> tuple[str, dict[str, Value]] | None:
        result = parse(self._draft())
        models = result.document.models
        if len(models) != 1 or not 0 <= index < len(models[0].layers):
            return None
        layer = models[0].layers[index]
        ltype = LAYER_TYPES.get(layer.kind)
        return (layer.kind, ltype.resolve(layer.written()) if ltype is not None else {})

    def _fill_params(self, index: int) -> None:
        found = self._draft_layer(index)
        kind = found[0] if found else ""
        ltype = LAYER_TYPES.get(kind)
        names: list[str | tuple[Any, str]] = [p.name for p in ltype.params] if ltype is not None else []
        self.param.options = names
        self.param.value = str(names[0]) if names else ""
        self.param.disabled = self.value.disabled = self.reparam_button.disabled = not names
        self._describe_param()

    def _describe_param(self) -> None:
        index = self._handle_index()
        found = self._draft_layer(index) if index is not None else None
        ltype = LAYER_TYPES.get(found[0]) if found else None
        spec = ltype.param(self.param.value) if ltype is not None and self.param.value else None
        if spec is None or found is None:
            self.value.title, self.value.value = "new value", ""
            return
        grid = f"; grid {', '.join(str(v) for v in spec.grid)}" if spec.grid else ""
        self.value.title = f"{spec.name}: {spec.describe_allowed()}{grid}"
        current = found[1].get(spec.name)
        self.value.value = "" if current is None else str(current)

    def _handle_index(self) -> int | None:
        active = self.handles.active
        return None if active is None or active % 2 == 0 else (active - 1) // 2

    def _default_args(self, kind: str) -> None:
        ltype = LAYER_TYPES.get(kind)
        positional = ltype.positional if ltype is not None else None
        if kind in INSERT_DEFAULTS:
            self.args.value = INSERT_DEFAULTS[kind]
        elif positional is not None and positional.grid:
            self.args.value = str(positional.grid[0])
        else:
            self.args.value = ""

    def insert(self) -> None:
        active = self.handles.active
        if active is None or active % 2 == 1:
            self._say("choose a + handle to insert at", error=True)
            return
        layer = f"{self.kind.value} {self.args.value.strip()}".strip()
        self._edit("insert", active // 2, layer=layer)

    def remove(self) -> None:
        index = self._handle_index()
        if index is None:
            self._say("choose a layer to remove", error=True)
            return
        self._edit("remove", index)

    def reparameterize(self) -> None:
        index = self._handle_index()
        if index is None or not self.param.value:
            self._say("choose a layer and one of its parameters", error=True)
            return
        self._edit("reparameterize", index, param=self.param.value, value=_value(self.value.value))

    def _edit(self, op: str, index: int, **what: Any) -> None:
        parent = self.parent
        if parent is None:
            return
        try:
            text = edit_draft(_current_text(parent), parent.path.parent, parent.name, self._draft(), op, index,
                              **what)
        except GenerateError as e:
            self._say(str(e), error=True)
            return
        self._say(f"draft: {op} at {index}")
        self.handles.active = None
        self._set_text(text)


def _current_text(parent: FileModel) -> str:
    """The file as it is now (another tab, the editor or a worker may have written it), else as last read."""
    try:
        return read_text(parent.path).text
    except FileProblem:
        return parent.text


def _handle_labels(layers: list[str]) -> list[str]:
    out = ["+"]
    for i, text in enumerate(layers):
        out += [f"{i} {text}", "+"]
    return out


def _shapes(info: ModelInfo) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>{html.escape(li.layer.kind)}</td>"
                   f"<td>{html.escape(describe_shape(li.output_shape)) if li.output_shape else '?'}</td>"
                   f"<td style='text-align:right'>{li.param_count:,}</td></tr>" for i, li in enumerate(info.layers))
    return (f"<b>{info.param_count:,} parameters</b><table style='font-size:11px'>"
            f"<tr><th>#</th><th>layer</th><th>output</th><th>params</th></tr>{rows}</table>")


def _whole(value: object, what: str) -> int:
    if value is None:
        raise GenerateError(f"{what} is empty; enter a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise GenerateError(f"{what} must be a whole number; found {value}")
        return int(value)
    if isinstance(value, int):
        return value
    raise GenerateError(f"{what} must be a whole number; found {value!r}")


def _value(text: str) -> Value:
    word = text.strip()
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            pass
    return word


def panel(state: OverviewState) -> Panel:
    return Panel("Generate", GeneratePanel(state).layout(), "tab")

