"""The children table (the REMAP paper's Fig. 7): for a parent, its own row on top, then each child's origin,
changes, parameters and Δparameters, validation accuracy and Δaccuracy, estimated then actual training time,
status with progress, and a sparkline of its validation loss that grows as epochs finish
(`remapdsl.store.children`). Any column sorts; a row selects its model in the overview.

The parent is the selected model, and stays while the selection moves to one of its children, so that a user
can look at children one after the other. Live like the queue: reread when the change feed reports a model,
job or epoch of the family.
"""

from __future__ import annotations

import html
import math
from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, CustomJS
from bokeh.models.widgets import DataTable, Div, HTMLTemplateFormatter, NumberFormatter, TableColumn
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.store.children import ChildRow, children_table
from remapdsl.store.results import duration

WIDTH = 680
FIELDS = ("hash", "model", "origin", "changes", "params", "delta_params", "val_acc", "delta_acc", "estimated",
          "actual", "status", "progress", "sparkline", "loss")
EMPTY = "<i>Select a model in the overview: its children are listed here with their differences to it.</i>"
SPARK_W, SPARK_H = 80, 18


class ChildrenTable:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.parent: str | None = None
        self.hashes: list[str] = []
        self.title = Div(text=EMPTY, width=WIDTH, name="children_title")
        self.parent_source = ColumnDataSource({k: [] for k in FIELDS}, name="children_parent")
        self.source = ColumnDataSource({k: [] for k in FIELDS}, name="children")
        self.parent_view = DataTable(source=self.parent_source, columns=_columns(), width=WIDTH, height=56,
                                     index_position=None, sortable=False, name="children_parent_table")
        self.table = DataTable(source=self.source, columns=_columns(), width=WIDTH, height=300, index_position=None,
                               sortable=True, selectable=True, name="children_table")
        for table in (self.parent_view, self.table):
            # BokehJS redraws a table when its view's indices change, so new values in as many rows as before
            # would stay unseen: redraw on every new data
            table.source.js_on_change("data", CustomJS(args={"table": table}, code="table.view.change.emit()"))
        self.source.selected.on_change("indices", state.guard("children row", self._on_row))
        state.on("select", self.on_select)
        for event in ("population", "jobs", "epochs"):
            state.on(event, lambda _value: self.reload())

    def layout(self) -> Any:
        return column(self.title, self.parent_view, self.table, name="children_panel")

    def on_select(self, model_hash: str | None) -> None:
        if model_hash is None or model_hash == self.parent or model_hash in self.hashes:
            return  # a child picked from the table: the table keeps its parent
        self.parent = model_hash
        self.reload()

    def reload(self) -> None:
        if self.parent is None:
            return
        rows = children_table(self.state.store, self.parent, data_key=self.state.data_key)
        if not rows:
            self.title.text = f"<i>No model {html.escape(self.parent[:12])} in this store.</i>"
            self.parent_source.data = {k: [] for k in FIELDS}
            self.source.data = {k: [] for k in FIELDS}
            self.hashes = []
            return
        parent, children = rows[0], rows[1:]
        self.title.text = (f"<b style='font-size:15px'>Children of {html.escape(parent.name)}</b> "
                           f"<span style='color:#666'>{len(children)} "
                           f"{'child' if len(children) == 1 else 'children'}</span>")
        self.parent_source.data = _data([parent])
        hashes = [r.hash for r in children]
        data = _data(children)
        if data != self.source.data:
            self.source.data = data  # rows keep their order, so a selected row stays selected
        self.hashes = hashes

    def _on_row(self, _attr: str, _old: list[int], new: list[int]) -> None:
        if len(new) == 1 and 0 <= new[0] < len(self.source.data["hash"]):
            self.state.select(self.source.data["hash"][new[0]])


def _columns() -> list[TableColumn]:
    signed = NumberFormatter(format="+0,0")
    percent = NumberFormatter(format="0.0%")
    signed_percent = NumberFormatter(format="+0.0%")
    spark = HTMLTemplateFormatter(template="<%= value %>")
    return [
        TableColumn(field="model", title="model", width=110),
        TableColumn(field="origin", title="origin", width=70),
        TableColumn(field="changes", title="changes", width=170,  # the whole text on hover
                    formatter=HTMLTemplateFormatter(template="<span title='<%- value %>'><%- value %></span>")),
        TableColumn(field="params", title="params", formatter=NumberFormatter(format="0,0"), width=70),
        TableColumn(field="delta_params", title="Δparams", formatter=signed, width=65),
        TableColumn(field="val_acc", title="val acc", formatter=percent, width=55),
        TableColumn(field="delta_acc", title="Δacc", formatter=signed_percent, width=50),
        TableColumn(field="estimated", title="est. time", width=60),
        TableColumn(field="actual", title="time", width=50),
        TableColumn(field="status", title="status", width=80),
        TableColumn(field="sparkline", title="val loss", formatter=spark, width=90, sortable=False),
    ]


def _data(rows: list[ChildRow]) -> dict[str, list[Any]]:
    return {
        "hash": [r.hash for r in rows],
        "model": [r.name for r in rows],
        "origin": [r.origin for r in rows],
        "changes": [r.changes or "—" for r in rows],
        "params": [_number(r.params) for r in rows],
        "delta_params": [_number(r.delta_params) for r in rows],
        "val_acc": [_number(r.val_acc) for r in rows],
        "delta_acc": [_number(r.delta_acc) for r in rows],
        "estimated": [duration(r.estimated_seconds) for r in rows],
        "actual": [duration(r.actual_seconds) for r in rows],
        "status": [_status(r) for r in rows],
        "progress": [r.progress for r in rows],
        "sparkline": [sparkline(r.val_loss) for r in rows],
        "loss": [r.val_loss[-1] if r.val_loss else math.nan for r in rows],
    }


def _number(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def _status(r: ChildRow) -> str:
    if r.status in ("running", "queued") and r.epochs:
        return f"{r.status} {r.epoch}/{r.epochs}"
    return r.status


def sparkline(values: tuple[float, ...]) -> str:
    """An inline SVG polyline of `values` (finite ones), or '' for none."""
    points = [v for v in values if math.isfinite(v)]
    if not points:
        return ""
    low, high = min(points), max(points)
    span = high - low or 1.0
    step = (SPARK_W - 4) / max(len(points) - 1, 1)
    xy = " ".join(f"{2 + i * step:.1f},{2 + (SPARK_H - 4) * (high - v) / span:.1f}" for i, v in enumerate(points))
    dot = xy.rsplit(" ", 1)[-1].split(",")
    return (f"<svg width='{SPARK_W}' height='{SPARK_H}' class='sparkline'><polyline points='{xy}' fill='none' "
            f"stroke='#D55E00' stroke-width='1.5'/><circle cx='{dot[0]}' cy='{dot[1]}' r='2' fill='#D55E00'/>"
            "</svg>")


def panel(state: OverviewState) -> Panel:
    return Panel("Children", ChildrenTable(state).layout(), "tab")
