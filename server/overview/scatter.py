"""The model overview (the paper's Fig. 1A and 4b): every model of the store in one scatter, in three
projections the user toggles.

One ColumnDataSource of NumPy columns holds every model once, with its position in each projection (`ax`,
`ay` accuracy against log10 parameters; `sx`, `sy` structural; `px`, `py` predictions). Switching projections
points the glyph at other columns: no data moves. Darkness encodes accuracy (or the mean accuracy of the chosen
classes), the size log10 parameters; queued and running models are hollow; models outside the budgets (the
file's and the sliders') are dimmed. Tap selects a model and keeps it in the drawer; a box selection keeps
every model in it.
"""

from __future__ import annotations

import concurrent.futures
import math
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, LinearColorMapper
from bokeh.models.widgets import Checkbox, Div, RadioButtonGroup, Slider
from bokeh.plotting import figure
from remapdsl_server.overview import positions
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.space.distance_cache import PREDICTIONS, STRUCTURAL
from remapdsl.store.pareto import ParetoFront
from remapdsl.store.population import Population

PROJECTIONS = ("accuracy", STRUCTURAL, PREDICTIONS)
LABELS = ("Accuracy × parameters", "Structure (OTMANN)", "Predictions")
COLUMNS = {"accuracy": ("ax", "ay"), STRUCTURAL: ("sx", "sy"), PREDICTIONS: ("px", "py")}
AXES = {"accuracy": ("log10 parameters", "validation accuracy"),
        STRUCTURAL: ("structural MDS 1", "structural MDS 2"), PREDICTIONS: ("prediction MDS 1", "prediction MDS 2")}
# Darkness is accuracy: light grey for poor models, near black for the best (the paper's encoding).
PALETTE = tuple(f"#{v:02x}{v:02x}{v:02x}" for v in np.linspace(225, 20, 64).astype(int))
RUNNING, QUEUED = "#E69F00", "#56B4E9"
UNTRAINED_Y = -0.06  # the band below the axis where models without an accuracy yet are drawn
DIMMED, SHOWN = 0.12, 0.9
MAX_BOX_KEEP = 200  # models a box selection puts into the drawer at most

TOOLTIP = """
<div style="max-width:320px">
  <div><b>@name</b> <span style="color:#666">@origin</span></div>
  <div><img src="chip/@hash/mini.svg" alt="" style="max-height:40px;margin:2px 0"></div>
  <div>@params_text parameters · @acc_text</div>
  <div>@measured</div>
  <div style="color:#444">@changes</div>
  <div style="color:#a33">@note</div>
</div>
"""


def columns(pop: Population) -> dict[str, Any]:
    """The scatter's columns for a population (NumPy, vectorised: no work per model in Python beyond the
    formatting of the hover texts). Text columns are object arrays, so a patch can lengthen a value."""
    params = np.asarray(pop.params, dtype=float)
    params[params < 0] = np.nan
    acc = np.asarray(pop.val_acc, dtype=float)
    status = np.asarray(pop.status, dtype=object)
    logp = np.log10(np.maximum(np.nan_to_num(params, nan=1.0), 1.0))
    trained = ~np.isnan(acc)
    ay = np.where(trained, acc, UNTRAINED_Y)
    active = (status == "queued") | (status == "running")
    latency = np.asarray(pop.latency_ms, dtype=float)
    size = np.asarray(pop.size_bytes, dtype=float)
    n = len(params)
    nan = np.full(n, np.nan)
    return {
        "hash": np.asarray(pop.hash, dtype=object), "name": np.asarray(pop.name, dtype=object),
        "origin": np.asarray(pop.origin, dtype=object), "changes": np.asarray(pop.changes, dtype=object),
        "status": status, "params": params, "acc": acc, "latency": latency, "size_bytes": size,
        "ax": logp, "ay": ay, "sx": nan.copy(), "sy": nan.copy(), "px": nan.copy(), "py": nan.copy(),
        "radius": 3 + 3 * logp,
        "score": acc.copy(),
        "fill_alpha": np.where(active, 0.0, SHOWN),
        "line_alpha": np.full(n, SHOWN),
        "line": np.where(status == "running", RUNNING, np.where(status == "queued", QUEUED, "#333333")).astype(object),
        "params_text": np.array([_si(p) for p in params], dtype=object),
        "acc_text": _acc_texts(acc, status, np.asarray(pop.epoch, dtype=float), np.asarray(pop.epochs, dtype=float)),
        "measured": _measured(latency, size),
        "note": np.full(n, "", dtype=object),
    }


def _si(p: float) -> str:
    if math.isnan(p):
        return "?"
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if p >= div:
            return f"{p / div:.3g}{unit}"
    return str(int(p))


def _acc_texts(acc: np.ndarray, status: np.ndarray, epoch: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    out = np.empty(len(acc), dtype=object)
    for i in range(len(acc)):
        if status[i] == "running":
            out[i] = f"training, epoch {int(np.nan_to_num(epoch[i]))} of {int(np.nan_to_num(epochs[i]))}"
        elif math.isnan(acc[i]):
            out[i] = status[i]
        else:
            out[i] = f"{100 * acc[i]:.1f}% validation accuracy"
    return out


def _measured(latency: np.ndarray, size: np.ndarray) -> np.ndarray:
    out = np.empty(len(latency), dtype=object)
    for i in range(len(latency)):
        parts = []
        if not math.isnan(latency[i]):
            parts.append(f"ONNX {latency[i]:.3g} ms")
        if not math.isnan(size[i]):
            parts.append(f"{size[i] / 1024:.0f} KB")
        out[i] = " · ".join(parts)
    return out


class Scatter:
    """The panel's models and callbacks; `panel` builds it into the session."""

    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.projection = "accuracy"
        self.source = ColumnDataSource(data=columns(state.population), name="model_source")
        self.front = ColumnDataSource(data={"x": [], "y": []}, name="front")
        self.lines = ColumnDataSource(data={"x0": [], "y0": [], "x1": [], "y1": []}, name="lineage_lines")
        self.pareto: ParetoFront | None = None
        n = len(state.population)
        self.notes = {space: np.full(n, "", dtype=object) for space in (STRUCTURAL, PREDICTIONS)}
        self.pending: dict[str, concurrent.futures.Future[positions.Positions]] = {}
        self.mapper = LinearColorMapper(palette=list(PALETTE), low=0.0, high=1.0, nan_color="#ffffff")
        self.figure = self._figure()
        self.status = Div(text="", styles={"color": "#555", "font-size": "12px"}, name="scatter_status")
        self.toggle = RadioButtonGroup(labels=list(LABELS), active=0, name="projection")
        self.toggle.on_change("active", state.guard("projection switch",
                                                    lambda _a, _o, new: self.show(PROJECTIONS[new])))
        self.lineage = Checkbox(label="lines from parents to children", active=False, name="lineage")
        self.lineage.on_change("active", state.guard("lineage lines", lambda _attr, _old, _new: self.draw_lines()))
        self.sliders = self._budget_sliders()
        self.source.selected.on_change("indices", state.guard("selection", self.on_selected))
        state.on("population", self.on_population)
        state.on("classes", self.on_classes)
        state.on("select", self.on_select)
        self._read_stored()
        self.update_front()
        self.apply_budgets()
        self._say()

    # --- building ---------------------------------------------------------------------------------

    def _figure(self) -> Any:
        x_range, y_range = DataRange1d(range_padding=0.12), DataRange1d(range_padding=0.12)
        p = figure(width=760, height=560, output_backend="webgl", x_range=x_range, y_range=y_range,
                   tools="pan,wheel_zoom,box_select,tap,reset,save", active_scroll="wheel_zoom", name="overview",
                   toolbar_location="above")
        p.xaxis.axis_label, p.yaxis.axis_label = AXES["accuracy"]
        self.front_renderer = p.step(x="x", y="y", source=self.front, mode="after", line_color="#D55E00",
                                     line_width=2, line_alpha=0.8, legend_label="Pareto front")
        self.lines_renderer = p.segment(x0="x0", y0="y0", x1="x1", y1="y1", source=self.lines, line_color="#999999",
                                        line_alpha=0.5, visible=False)
        self.renderer = p.scatter(x="ax", y="ay", size="radius", source=self.source,
                                  fill_color={"field": "score", "transform": self.mapper}, fill_alpha="fill_alpha",
                                  line_color="line", line_alpha="line_alpha", line_width=1.2, name="models",
                                  selection_line_color="#CC79A7", selection_line_width=3,
                                  nonselection_fill_alpha="fill_alpha", nonselection_line_alpha="line_alpha")
        p.add_tools(HoverTool(renderers=[self.renderer], tooltips=TOOLTIP))
        # the view fits the models of the projection shown, not the front or lines of another
        x_range.renderers = y_range.renderers = [self.renderer]
        p.legend.location = "bottom_right"
        p.legend.background_fill_alpha = 0.6
        return p

    def _budget_sliders(self) -> list[Slider]:
        """A slider per measure; the file's budget sets its start (`budget params <= 100k`)."""
        limits = budgets(self.state)
        data = self.source.data
        out = []
        for metric, values, label, scale in (("params", data["params"], "max parameters (log10)", "log"),
                                             ("latency", data["latency"], "max latency (ms)", "lin"),
                                             ("size", data["size_bytes"], "max size (KB)", "kb")):
            finite = np.asarray(values, dtype=float)
            finite = finite[~np.isnan(finite)]
            top = float(finite.max()) if len(finite) else 1.0
            limit = limits.get(metric, top)
            if scale == "log":
                end, value = math.log10(max(top, limit, 10)) + 0.1, math.log10(max(limit, 1))
            elif scale == "kb":
                end, value = max(top, limit) / 1024 * 1.05 + 1, limit / 1024
            else:
                end, value = max(top, limit) * 1.05 + 0.01, limit
            end = math.ceil(end * 1000) / 1000
            # at its end a slider sets no limit: models that arrive later with more are not dimmed by it
            s = Slider(start=0, end=end, value=min(value, end) if metric in limits else end, step=end / 200,
                       title=label, width=240, name=f"budget_{metric}")
            s.on_change("value_throttled", self.state.guard("budget slider",
                                                            lambda _attr, _old, _new: self.apply_budgets()))
            if not len(finite) and metric not in limits:
                s.disabled, s.show_value = True, False
                s.title = f"{label}: not measured yet"
            out.append(s)
        return out

    def layout(self) -> Any:
        controls = row(self.toggle, self.lineage, self.status)
        return column(controls, self.figure, row(*self.sliders), name="overview_panel")

    # --- projections ------------------------------------------------------------------------------

    def show(self, projection: str) -> None:
        """Point the glyphs at the projection's columns (computing positions first when none are stored)."""
        self.projection = projection
        x, y = COLUMNS[projection]
        self.renderer.glyph.update(x=x, y=y)
        self.figure.xaxis.axis_label, self.figure.yaxis.axis_label = AXES[projection]
        self.front_renderer.visible = self.figure.legend.visible = projection == "accuracy"
        if projection != "accuracy" and np.isnan(np.asarray(self.source.data[x], dtype=float)).any():
            self.place(projection)
        self.draw_lines()
        self._say()

    def _read_stored(self) -> None:
        pop = self.state.population
        for space in (STRUCTURAL, PREDICTIONS):
            keys = positions.keys_of(space, np.asarray(pop.hash), np.asarray(pop.run_id))
            self._apply(space, positions.stored(self.state.store, space, keys))

    def _apply(self, space: str, found: positions.Positions) -> None:
        """The space's positions into its columns, and its reasons for rows without one into the hover's note."""
        x, y = COLUMNS[space]
        n = len(found.x)
        self.notes[space] = np.asarray(found.notes, dtype=object)
        for other, notes in self.notes.items():  # models streamed in since the other space was laid out
            if len(notes) < n:
                self.notes[other] = np.concatenate([notes, np.full(n - len(notes), "", dtype=object)])
        joined = [("; ".join(n for n in pair if n)) for pair in zip(*self.notes.values(), strict=True)]
        self.source.data.update({x: found.x, y: found.y, "note": np.array(joined, dtype=object)})

    def place(self, space: str) -> None:
        """Lay out the models without a position in a thread; the session picks the result up when it is done."""
        if space in self.pending:
            return
        pop = self.state.population
        hashes, run_ids = np.asarray(pop.hash).astype(str), np.asarray(pop.run_id)
        future = EXECUTOR.submit(positions.compute, self.state.store.path, space, hashes, run_ids)
        self.pending[space] = future
        self._say()
        doc = self.state.doc

        def done(f: concurrent.futures.Future[positions.Positions]) -> None:
            doc.add_next_tick_callback(lambda: self.state.run_guarded(f"{space} layout", self._placed, space, f))

        future.add_done_callback(done)

    def finish_pending(self, timeout: float | None = None) -> None:
        """Wait for the layouts being computed and apply them now (what the session does on its next tick)."""
        for space, future in list(self.pending.items()):
            future.result(timeout)
            self._placed(space, future)

    def _placed(self, space: str, future: concurrent.futures.Future[positions.Positions]) -> None:
        if self.pending.get(space) is not future:
            return  # applied already
        self.pending.pop(space, None)
        found = future.result()
        if len(found.x) == len(self.source.data["hash"]):
            self._apply(space, found)
        self.draw_lines()
        self._say()

    def _say(self) -> None:
        data = self.source.data
        n = len(data["hash"])
        x, _ = COLUMNS[self.projection]
        shown = int((~np.isnan(np.asarray(data[x], dtype=float))).sum())
        text = f"{n:,} models"
        if shown < n:
            text += f", {shown:,} with a position here"
        if self.state.classes:
            names = self.state.class_names
            chosen = ", ".join(names[c] if c < len(names) else str(c) for c in self.state.classes)
            text += f" · darkness and front: accuracy on {chosen}"
        if self.pending:
            text += f" · laying out {', '.join(self.pending)}…"
        self.status.text = text

    # --- colour, front, budgets, lines ------------------------------------------------------------

    def on_classes(self, classes: tuple[int, ...]) -> None:
        self.source.data["score"] = self.state.score(classes)
        self.update_front()
        self._say()

    def fit_colours(self) -> None:
        """Darkness spans the accuracies shown: the worst model lightest, the best darkest."""
        score = np.asarray(self.source.data["score"], dtype=float)
        score = score[~np.isnan(score)]
        low, high = (float(score.min()), float(score.max())) if len(score) else (0.0, 1.0)
        if high - low < 0.02:
            low = max(0.0, high - 0.02)
        self.mapper.update(low=low, high=high)

    def update_front(self, rows: np.ndarray | None = None) -> None:
        """The Pareto front of the scores shown: built anew (O(n log n)), or with `rows` changed, kept up to date
        one row at a time. It is drawn through its models' glyphs (by overall accuracy, where they sit)."""
        self.fit_colours()
        data = self.source.data
        score = np.asarray(data["score"], dtype=float)
        params = np.asarray(data["params"], dtype=float)
        if rows is None or self.pareto is None:
            self.pareto = ParetoFront(params, score)
        else:
            for i in rows.tolist():
                self.pareto.add(int(i), params[i], score[i])
        order = np.asarray(self.pareto.indices(), dtype=int)
        self.front.data = {"x": np.asarray(data["ax"], dtype=float)[order],
                           "y": np.asarray(data["ay"], dtype=float)[order]}

    def apply_budgets(self) -> None:
        fill, line = self._alphas(self.source.data)
        self.source.data.update(fill_alpha=fill, line_alpha=line)

    def _alphas(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """Fill and line alpha of the rows of `data` (columns): dimmed outside the sliders' bounds, hollow while
        queued or running."""
        params_limit, latency_limit, size_limit = (math.inf if s.value >= s.end else s.value for s in self.sliders)
        logp = np.asarray(data["ax"], dtype=float)
        latency = np.asarray(data["latency"], dtype=float)
        size = np.asarray(data["size_bytes"], dtype=float) / 1024
        outside = logp > params_limit + 1e-9
        outside |= ~np.isnan(latency) & (latency > latency_limit + 1e-12)
        outside |= ~np.isnan(size) & (size > size_limit + 1e-9)
        active = np.isin(np.asarray(data["status"]), ("queued", "running"))
        alpha = np.where(outside, DIMMED, SHOWN)
        return np.where(active, 0.0, alpha), alpha

    def draw_lines(self) -> None:
        self.lines_renderer.visible = bool(self.lineage.active)
        if not self.lineage.active:
            self.lines.data = {"x0": [], "y0": [], "x1": [], "y1": []}
            return
        data = self.source.data
        x, y = (np.asarray(data[c], dtype=float) for c in COLUMNS[self.projection])
        child, parent = self.state.parent_rows()
        ok = ~np.isnan(x[child]) & ~np.isnan(x[parent])
        child, parent = child[ok], parent[ok]
        self.lines.data = {"x0": x[parent], "y0": y[parent], "x1": x[child], "y1": y[child]}

    # --- selection and live updates ---------------------------------------------------------------

    def on_selected(self, _attr: str, _old: list[int], new: list[int]) -> None:
        hashes = np.asarray(self.source.data["hash"])
        if not new:
            return
        if len(new) == 1:
            self.state.select(str(hashes[new[0]]))
        self.state.emit("keep", [str(h) for h in hashes[np.asarray(new[:MAX_BOX_KEEP])]])

    def on_select(self, model_hash: str | None) -> None:
        hashes = np.asarray(self.source.data["hash"])
        rows = np.flatnonzero(hashes == model_hash) if model_hash else np.array([], dtype=int)
        if list(self.source.selected.indices) != rows.tolist():
            self.source.selected.indices = rows.tolist()

    def on_population(self, rows: np.ndarray) -> None:
        """Rows changed or were added: patch the changed ones and stream the new ones (only their values go to the
        browser), then keep the colour scale and the Pareto front up to date."""
        n_old = len(self.source.data["hash"])
        rows = np.asarray(rows, dtype=int)
        old_rows = rows[rows < n_old]
        new_rows = np.sort(rows[rows >= n_old])
        keep_positions = ("sx", "sy", "px", "py", "note")
        score = self.state.score(self.state.classes)
        if len(old_rows):
            fresh = self._rows(old_rows, score)
            patch = {name: [(int(i), _plain(v)) for i, v in zip(old_rows, fresh[name], strict=True)]
                     for name in fresh if name not in keep_positions}
            self.source.patch(patch)
        if len(new_rows):
            self.source.stream(self._rows(new_rows, score))
            for space in (STRUCTURAL, PREDICTIONS):
                self.place(space)
        self.update_front(rows)
        self._say()

    def _rows(self, rows: np.ndarray, score: np.ndarray) -> dict[str, Any]:
        fresh = columns(self.state.population.take(rows))
        fresh["score"] = score[rows]
        fresh["fill_alpha"], fresh["line_alpha"] = self._alphas(fresh)
        return fresh


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def budgets(state: OverviewState) -> dict[str, float]:
    """The file's budgets by measure (params in parameters, latency in ms, size in bytes)."""
    document = state.document
    if document is None:
        return {}
    return {b.metric: float(b.limit) for b in document.budgets if b.metric in ("params", "latency", "size")}


EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="overview-layout")


def panel(state: OverviewState) -> Panel:
    scatter = Scatter(state)
    state.parts["scatter"] = scatter
    return Panel("Model overview", scatter.layout(), "main")
