"""Copy as DSL and Append to file, for the model in the inspector (the selection) and any kept in the drawer:
the model's text as the store keeps it, copied to the clipboard in the browser, or appended to the
workspace's file under a free name (`remapdsl.jobs.generate.append_model`)."""

from __future__ import annotations

import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import CustomJS
from bokeh.models.widgets import Button, Div, Select, TextAreaInput
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.jobs.generate import GenerateError, append_model
from remapdsl.store.drawer import Drawer

WIDTH = 680


class ModelText:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.pick = Select(title="model (the selection, or one kept in the drawer)", options=[], width=360,
                           name="dsl_pick")
        self.pick.on_change("value", state.guard("dsl model", lambda _a, _o, new: self.show(new)))
        self.text = TextAreaInput(value="", rows=10, width=WIDTH, name="dsl_text", styles={"font-family": "monospace"})
        self.copy = Button(label="Copy as DSL", width=120, name="dsl_copy")
        # the clipboard is the browser's: copied there, without a round trip
        self.copy.js_on_click(CustomJS(args={"text": self.text}, code="""
            if (navigator.clipboard) { navigator.clipboard.writeText(text.value) }"""))
        self.copy.on_click(state.guard("copy", lambda: self._say("copied to the clipboard")))
        self.append = Button(label="Append to file", width=130, name="dsl_append")
        self.append.on_click(state.guard("append", self.append_to_file))
        self.message = Div(text="", width=WIDTH, name="dsl_message")
        state.on("select", lambda _h: self.refresh())
        state.on("drawer", lambda _v: self.refresh())
        self.refresh()

    def layout(self) -> Any:
        return column(self.pick, self.text, row(self.copy, self.append), self.message, name="dsl_panel")

    def _drawer(self) -> list[str]:
        return list(Drawer(self.state.store).hashes())

    def refresh(self) -> None:
        names = dict(zip(self.state.population.hash.tolist(), self.state.population.name.tolist(), strict=True))
        options: list[str | tuple[Any, str]] = []
        selected = self.state.selected
        if selected is not None:
            options.append((selected, f"selected: {names.get(selected, selected[:8])}"))
        options += [(h, f"drawer: {names.get(h, h[:8])}") for h in self._drawer() if h != self.state.selected]
        self.pick.options = options
        value = self.state.selected or (str(options[0][0]) if options else "")
        if self.pick.value != value:
            self.pick.value = value
        else:
            self.show(value)

    def show(self, model_hash: str) -> None:
        row_ = self.state.store.model(model_hash) if model_hash else None
        self.text.value = row_.text if row_ is not None else ""
        self.message.text = ""

    def append_to_file(self) -> None:
        file = self.state.config.file
        model_hash = self.pick.value
        if file is None:
            self._say("serve a .remap file (remap serve FILE) to append models to it", error=True)
            return
        row_ = self.state.store.model(model_hash) if model_hash else None
        if row_ is None:
            self._say("choose a model first", error=True)
            return
        index = self.state.population.index.get(model_hash)
        name = str(self.state.population.name[index]) if index is not None else f"m_{model_hash[:8]}"
        try:
            used = append_model(file, row_.text, name or f"m_{model_hash[:8]}")
        except GenerateError as e:
            self._say(str(e), error=True)
            return
        self._say(f"appended to {file.name} as '{used}'")

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#a40000" if error else "#1a6e1a"
        self.message.text = f"<span style='color:{colour}'>{html.escape(text)}</span>"


def panel(state: OverviewState) -> Panel:
    return Panel("DSL", ModelText(state).layout(), "tab")
