"""The toolbar's "Sample N models": a population drawn from REMAP's Markov chain with a seed
(`remapdsl.jobs.sampling`), appended to the workspace's file or written to a new file beside it, and queued.
The new models reach the overview through the change feed, like any other."""

from __future__ import annotations

import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models.widgets import Button, Div, NumericInput, TextInput
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.jobs.generate import GenerateError
from remapdsl.jobs.sampling import sample_into


class SampleBar:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.count = NumericInput(title="models", value=20, mode="int", width=80, name="sample_n")
        self.seed = NumericInput(title="seed", value=0, mode="int", width=80, name="sample_seed")
        self.target = TextInput(title="into (empty: this file)", value="", width=190, name="sample_target",
                                placeholder="this file, or new.remap")
        self.button = Button(label="Sample N models", width=140, name="sample_button")
        self.button.on_click(state.guard("sample", self.sample))
        self.message = Div(text="", width=600, name="sample_message")
        if state.config.file is None:
            self.button.disabled = True
            self.message.text = "<i>Serve a .remap file (remap serve FILE) to sample models into it.</i>"

    def layout(self) -> Any:
        return column(row(self.count, self.seed, self.target, column(Div(text="&nbsp;"), self.button)),
                      self.message, name="sample_bar")

    def sample(self) -> None:
        file = self.state.config.file
        if file is None:
            return
        try:
            n, seed = _whole(self.count.value, "the number of models"), _whole(self.seed.value, "the seed")
            target = self.target.value.strip() or None
            done = sample_into(file, n, seed, target=target, store=self.state.store)
        except GenerateError as e:
            self.message.text = f"<span style='color:#a40000'>{html.escape(str(e))}</span>"
            return
        colour = "#a40000" if done.queue_problem else "#1a6e1a"
        self.message.text = f"<span style='color:{colour}'>{html.escape(done.message())}</span>"


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise GenerateError(f"{what} must be a whole number; found {value!r}")
    return int(value)


def panel(state: OverviewState) -> Panel:
    return Panel("Sample", SampleBar(state).layout(), "main")
