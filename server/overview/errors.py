"""The page's error line: each failure of a callback, in words, newest first (it stays until dismissed).

The failure is also logged with its traceback (`state.report`); the session goes on serving.
"""

from __future__ import annotations

import html

from bokeh.layouts import row
from bokeh.models.widgets import Button, Div
from remapdsl_server.overview.state import OverviewState

SHOWN = 3


def error_line(state: OverviewState) -> object:
    text = Div(text="", name="errors", styles={"color": "#a40000", "font-size": "13px"}, width=1300)
    dismiss = Button(label="dismiss", button_type="light", width=80, visible=False, name="dismiss_errors")
    shown: list[str] = []

    def show(message: str) -> None:
        shown.insert(0, message)
        del shown[SHOWN:]
        text.text = "<br>".join(f"⚠ {html.escape(m)}" for m in shown)
        dismiss.visible = True

    def clear() -> None:
        shown.clear()
        text.text = ""
        dismiss.visible = False

    state.on_error(show)
    dismiss.on_click(state.guard("dismiss", clear))
    return row(dismiss, text, name="error_line")
