"""Data selection (the paper's Fig. 2b): the classes of the data set, each with a few validation images.
Choosing classes recolours the overview by the models' mean accuracy on them (from the stored confusion
matrices) and the Pareto front follows."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, FixedTicker, Range1d
from bokeh.models.widgets import Button, CheckboxButtonGroup, Div
from bokeh.palettes import Greys256
from bokeh.plotting import figure
from remapdsl_server.overview.state import OverviewState, Panel

MAX_CLASSES = 40  # classes shown with images; more are chosen by name only


def panel(state: OverviewState) -> Panel:
    names = list(state.class_names)
    title = Div(text="<b>Data selection</b> — choose classes to colour the models by their accuracy on them",
                width=760, name="classes_title")
    if not names:
        why = state.data_problem or "the data set is unknown"
        return Panel("Data selection", column(title, Div(text=html.escape(f"No classes: {why}."))), "main")
    buttons = CheckboxButtonGroup(labels=names, active=[], name="classes", width=760)
    clear = Button(label="all classes", width=110, name="all_classes")
    strip = _strip(state, names[:MAX_CLASSES])

    def chosen(_attr: str, _old: list[int], new: list[int]) -> None:
        state.emit("classes", tuple(sorted(new)))

    buttons.on_change("active", state.guard("class selection", chosen))
    clear.on_click(state.guard("class selection", lambda: setattr(buttons, "active", [])))
    parts: list[Any] = [title, buttons, clear]
    if strip is not None:
        parts.insert(1, strip)
    return Panel("Data selection", column(*parts, name="classes_panel"), "main")


def _strip(state: OverviewState, names: list[str]) -> Any:
    """Sample images in one figure: under each class name its images, two by two."""
    samples = state.samples
    if samples is None or not len(samples):
        return None
    k = samples.shape[1]
    across = 2
    down = (k + across - 1) // across
    images, xs, ys = [], [], []
    n = min(len(names), samples.shape[0])
    for c in range(n):
        for j in range(k):
            images.append(np.flipud(samples[c, j]))  # image rows go up in Bokeh
            xs.append(c * (across + 0.5) + j % across)
            ys.append(float(down - 1 - j // across))
    source = ColumnDataSource({"image": images, "x": xs, "y": ys, "dw": [0.94] * len(xs), "dh": [0.94] * len(xs)})
    width = n * (across + 0.5) - 0.5
    pixels = min(34.0, 740 / max(width, 1))  # an image's side on screen
    p = figure(width=760, height=int(down * pixels) + 34, x_range=Range1d(start=-0.2, end=width + 0.2),
               y_range=Range1d(start=0, end=down), toolbar_location=None, tools="", name="class_samples")
    p.image(image="image", x="x", y="y", dw="dw", dh="dh", source=source, palette=list(reversed(Greys256)))
    p.xaxis.ticker = FixedTicker(ticks=[c * (across + 0.5) + across / 2 for c in range(n)])
    p.xaxis.major_label_overrides = {c * (across + 0.5) + across / 2: names[c] for c in range(n)}
    p.yaxis.visible = False
    p.grid.visible = False
    p.outline_line_color = None
    return p
