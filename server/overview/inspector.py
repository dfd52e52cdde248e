"""The inspector (the paper's Fig. 2a): the selected model's confusion matrix as a heatmap with class names,
its training curves, per-class accuracy bars, ONNX figures, DSL text, SNAC chip, parent and children.

Its data is read on selection (`model_detail`), into sources of its own, and again when the selected model's
run finishes an epoch.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import BasicTicker, ColumnDataSource, FactorRange, LinearColorMapper, Range1d
from bokeh.models.widgets import Div, Select
from bokeh.palettes import Blues256
from bokeh.plotting import figure
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.store.population import ModelDetail, model_detail

WIDTH = 680

EMPTY = "<i>Tap a model in the overview (or open /?model=HASH) to inspect it.</i>"


class Inspector:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.detail: ModelDetail | None = None
        self.title = Div(text=EMPTY, width=WIDTH, name="inspector_title")
        self.chip = Div(text="", width=WIDTH, name="inspector_chip")
        self.family = Select(title="parent and children", options=[], value="", width=320, name="family")
        self.family.on_change("value", state.guard("parent or child", self._go))
        self.confusion = ColumnDataSource({"true": [], "predicted": [], "count": [], "share": [], "label": [],
                                           "ink": []},
                                          name="confusion")
        self.curves = ColumnDataSource({"epoch": [], "train_loss": [], "val_loss": [], "train_acc": [],
                                        "val_acc": []}, name="curves")
        self.bars = ColumnDataSource({"cls": [], "acc": []}, name="per_class")
        names = list(state.class_names) or [str(i) for i in range(10)]
        self.heatmap = self._heatmap(names)
        self.loss, self.accuracy = self._curves()
        self.per_class = self._bars(names)
        self.onnx = Div(text="", width=WIDTH, name="inspector_onnx")
        self.text = Div(text="", width=WIDTH, name="inspector_text")
        state.on("select", self.show)
        state.on("epochs", self.on_epochs)

    def _heatmap(self, names: list[str]) -> Any:
        p = figure(width=330, height=320, x_range=FactorRange(factors=names),
                   y_range=FactorRange(factors=list(reversed(names))), tools="hover",
                   toolbar_location=None, title="confusion (rows: true class)", name="confusion_matrix",
                   tooltips=[("true", "@true"), ("predicted", "@predicted"), ("count", "@count")])
        mapper = LinearColorMapper(palette=list(reversed(Blues256)), low=0, high=1)
        p.rect(x="predicted", y="true", width=1, height=1, source=self.confusion,
               fill_color={"field": "share", "transform": mapper}, line_color="#ffffff")
        p.text(x="predicted", y="true", text="label", source=self.confusion, text_align="center",
               text_baseline="middle", text_font_size="9px", text_color="ink")
        p.xaxis.axis_label = "predicted"
        p.grid.visible = False
        return p

    def _curves(self) -> tuple[Any, Any]:
        loss = figure(width=330, height=155, title="loss", toolbar_location=None, tools="", name="loss_curve")
        loss.line("epoch", "train_loss", source=self.curves, color="#0072B2", legend_label="train")
        loss.line("epoch", "val_loss", source=self.curves, color="#D55E00", legend_label="validation")
        loss.scatter("epoch", "val_loss", source=self.curves, color="#D55E00", size=4)
        acc = figure(width=330, height=155, title="accuracy", toolbar_location=None, tools="", name="accuracy_curve",
                     y_range=Range1d(start=0, end=1.02))
        acc.line("epoch", "train_acc", source=self.curves, color="#0072B2", legend_label="train")
        acc.line("epoch", "val_acc", source=self.curves, color="#D55E00", legend_label="validation")
        acc.scatter("epoch", "val_acc", source=self.curves, color="#D55E00", size=4)
        for p in (loss, acc):
            p.xaxis[0].ticker = BasicTicker(min_interval=1)  # whole epochs
            p.xaxis.axis_label = "epoch"
            p.legend.location = "center_right"
            p.legend.label_text_font_size = "9px"
            p.legend.background_fill_alpha = 0.5
        return loss, acc

    def _bars(self, names: list[str]) -> Any:
        p = figure(width=WIDTH, height=150, x_range=FactorRange(factors=names), y_range=Range1d(start=0, end=1.02),
                   title="validation accuracy per class",
                   toolbar_location=None, tools="hover", tooltips=[("class", "@cls"), ("accuracy", "@acc{0.0%}")],
                   name="per_class_bars")
        p.vbar(x="cls", top="acc", width=0.8, source=self.bars, color="#009E73")
        p.xgrid.visible = False
        return p

    def layout(self) -> Any:
        return column(self.title, row(self.chip), self.family,
                      row(self.heatmap, column(self.loss, self.accuracy)), self.per_class, self.onnx, self.text,
                      name="inspector_panel")

    # --- reading ----------------------------------------------------------------------------------

    def show(self, model_hash: str | None) -> None:
        if model_hash is None:
            self.detail = None
            self.title.text = EMPTY
            self._clear()
            return
        try:
            detail = model_detail(self.state.store, model_hash, data_key=self.state.data_key)
        except KeyError:
            self.title.text = f"<i>No model {html.escape(model_hash)} in this store.</i>"
            self._clear()
            return
        self.detail = detail
        self._fill(detail)

    def on_epochs(self, run_ids: list[int]) -> None:
        d = self.detail
        if d is not None and (d.run is None or d.run.id in run_ids):
            self.show(d.model.hash)

    def _go(self, _attr: str, _old: str, new: str) -> None:
        if new and (self.detail is None or new != self.detail.model.hash):
            self.state.select(new)

    def _clear(self) -> None:
        self.chip.text = self.onnx.text = self.text.text = ""
        self.confusion.data = {k: [] for k in self.confusion.data}
        self.curves.data = {k: [] for k in self.curves.data}
        self.bars.data = {k: [] for k in self.bars.data}
        self.family.options, self.family.value = [], ""

    def _fill(self, d: ModelDetail) -> None:
        m, run = d.model, d.run
        facts = [f"{m.params:,} parameters" if m.params is not None else "parameters unknown", m.origin]
        if run is not None:
            acc = run.val_acc if run.val_acc is not None else (d.epochs[-1].val_acc if d.epochs else None)
            status = f"{run.status}, {len(d.epochs)} of {run.settings.get('epochs', '?')} epochs"
            facts.append(f"{100 * acc:.1f}% validation accuracy ({status})" if acc is not None else status)
            if run.reason:
                facts.append(run.reason)
        else:
            facts.append("not trained")
        if m.changes:
            facts.append(m.changes)
        family = self._family_text(d)
        if family:
            facts.append(family)
        self.title.text = (f"<b style='font-size:15px'>{html.escape(d.name)}</b> "
                           f"<code style='color:#666'>{m.hash[:12]}</code><br>"
                           + " · ".join(html.escape(str(f)) for f in facts))
        self.chip.text = f"<img src='chip/{m.hash}/compact.svg' alt='SNAC chip of {html.escape(d.name)}'>"
        self._fill_family(d)
        self._fill_confusion(d)
        self.curves.data = {"epoch": [e.epoch for e in d.epochs], "train_loss": [e.train_loss for e in d.epochs],
                            "val_loss": [e.val_loss for e in d.epochs], "train_acc": [e.train_acc for e in d.epochs],
                            "val_acc": [e.val_acc for e in d.epochs]}
        names = list(self.per_class.x_range.factors)
        if d.per_class is not None:
            k = min(len(names), len(d.per_class))
            self.bars.data = {"cls": names[:k], "acc": np.nan_to_num(d.per_class[:k]).tolist()}
        else:
            self.bars.data = {"cls": [], "acc": []}
        self.onnx.text = _onnx_text(d)
        self.text.text = (f"<pre style='font-size:12px;background:#f6f6f6;padding:6px;max-height:240px;"
                          f"overflow:auto'>{html.escape(m.text)}</pre>")

    def _family_text(self, d: ModelDetail) -> str:
        names = self.state.population.index
        pop = self.state.population

        def name(h: str) -> str:
            i = names.get(h)
            return str(pop.name[i]) if i is not None else h[:8]

        parts = []
        if d.parent is not None:
            parts.append(f"parent {name(d.parent.hash)}")
        if d.children:
            shown = ", ".join(name(h) for h in d.children[:8])
            more = f" and {len(d.children) - 8} more" if len(d.children) > 8 else ""
            parts.append(f"children {shown}{more}")
        return "; ".join(parts)

    def _fill_family(self, d: ModelDetail) -> None:
        names = dict(zip(self.state.population.hash.tolist(), self.state.population.name.tolist(), strict=True))
        options: list[str | tuple[Any, str]] = [("", "—")]
        if d.parent is not None:
            options.append((d.parent.hash, f"parent: {names.get(d.parent.hash, d.parent.hash[:8])}"))
        options += [(h, f"child: {names.get(h, h[:8])}") for h in d.children]
        self.family.options = options
        self.family.value = ""

    def _fill_confusion(self, d: ModelDetail) -> None:
        names = list(self.heatmap.x_range.factors)
        if d.confusion is None:
            self.confusion.data = {k: [] for k in self.confusion.data}
            self.heatmap.title.text = ("confusion: none stored (the model has no finished training with "
                                       "predictions)")
            return
        matrix = np.asarray(d.confusion.matrix, dtype=float)
        k = min(len(names), matrix.shape[0])
        matrix = matrix[:k, :k]
        totals = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        t, p = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        self.confusion.data = {"true": [names[i] for i in t.ravel()], "predicted": [names[j] for j in p.ravel()],
                               "count": matrix.ravel().astype(int).tolist(), "share": share.ravel().tolist(),
                               "label": [str(int(v)) if v else "" for v in matrix.ravel()],
                               "ink": ["#ffffff" if v > 0.5 else "#222222" for v in share.ravel()]}
        self.heatmap.title.text = "confusion (rows: true class)"


def _onnx_text(d: ModelDetail) -> str:
    o = d.onnx
    if o is None:
        why = f": {d.onnx_error}" if d.onnx_error else ""
        return f"<b>ONNX</b>: not measured{html.escape(why)}"
    cells = []
    for batch in (1, 64):
        p50, p95 = o.p50(batch), o.p95(batch)
        if p50 is not None and p95 is not None:
            cells.append(f"batch {batch}: p50 {p50:.3g} ms, p95 {p95:.3g} ms")
    parity = "parity ok" if o.parity_ok else f"parity off by {o.max_abs_diff:.2g}"
    weights = "trained weights" if o.trained else "fresh weights"
    return (f"<b>ONNX</b> ({html.escape(o.provider or 'onnxruntime')}, {weights}): " + "; ".join(cells)
            + f"; {o.size_bytes / 1024:.1f} KB; {parity}")


def panel(state: OverviewState) -> Panel:
    part = state.parts["inspector"] = Inspector(state)
    return Panel("Inspector", part.layout(), "tab")
