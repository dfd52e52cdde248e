"""The model drawer (the paper's Fig. 1B): kept models with their SNAC chips, drawn on one height scale so
chips compare across the drawer. The drawer lives in the store (`remapdsl.store.drawer`): a reload or a second
browser sees the same one. Any two kept models compare: the diff chip (`remapdsl.snac`) and a line diff of their
DSL text."""

from __future__ import annotations

import difflib
import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models.widgets import Button, Div, Select
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.store.drawer import Drawer, DrawerError

WIDTH = 680


class DrawerPanel:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.drawer = Drawer(state.store)
        self.list = Div(text="", width=WIDTH, name="drawer_list")
        self.pick = Select(title="kept model", options=[], width=260, name="drawer_pick")
        self.first = Select(title="compare", options=[], width=220, name="compare_a")
        self.second = Select(title="with", options=[], width=220, name="compare_b")
        self.result = Div(text="", width=WIDTH, name="drawer_diff")
        buttons = []
        for label, action in (("inspect", self.inspect), ("remove", self.remove), ("↑", lambda: self.move("up")),
                              ("↓", lambda: self.move("down")), ("empty the drawer", self.clear)):
            b = Button(label=label, width=70 if len(label) < 8 else 130, name=f"drawer_{label.split()[0]}")
            b.on_click(state.guard(f"drawer {label}", action))
            buttons.append(b)
        compare = Button(label="compare", width=90, button_type="primary", name="drawer_compare")
        compare.on_click(state.guard("drawer compare", self.compare))
        self.controls = column(row(self.pick, *buttons[:4]), row(self.first, self.second, compare, buttons[4]))
        state.on("keep", self.keep)
        state.on("drawer", lambda _v: self.reload())
        state.on("population", lambda _rows: self.reload())
        self.reload()

    def layout(self) -> Any:
        return column(self.list, self.controls, self.result, name="drawer_panel")

    def keep(self, hashes: list[str]) -> None:
        try:
            self.drawer.add(hashes)
        except DrawerError as e:
            self.result.text = f"<i>{html.escape(str(e))}</i>"
        self.reload()

    def reload(self) -> None:
        hashes = self.drawer.hashes()
        pop = self.state.population
        index = pop.index
        rows = []
        options: list[str | tuple[Any, str]] = []
        for h in hashes:
            i = index.get(h)
            name = str(pop.name[i]) if i is not None else h[:8]
            acc = float(pop.val_acc[i]) if i is not None else float("nan")
            params = int(pop.params[i]) if i is not None else -1
            facts = " · ".join(x for x in (f"{params:,} params" if params >= 0 else "",
                                           f"{100 * acc:.1f}%" if acc == acc else str(pop.status[i]) if i is not None
                                           else "") if x)
            rows.append(f"<tr><td style='padding:2px 8px 2px 0'><b>{html.escape(name)}</b><br>"
                        f"<span style='color:#666;font-size:11px'>{html.escape(facts)}</span></td>"
                        f"<td><img src='chip/{h}/compact.svg' alt='{html.escape(name)}'></td></tr>")
            options.append((h, name))
        self.list.text = (f"<b>Drawer</b> ({len(hashes)} kept)<div style='max-height:330px;overflow:auto'>"
                          f"<table>{''.join(rows)}</table></div>" if hashes else
                          "<b>Drawer</b>: empty. Tap models in the overview, or drag a box over them, to keep them "
                          "here.")
        for select in (self.pick, self.first, self.second):
            value = select.value
            select.options = options
            select.value = value if value in hashes else (hashes[0] if hashes else "")
        if len(hashes) > 1 and self.second.value == self.first.value:
            self.second.value = hashes[1]

    def inspect(self) -> None:
        if self.pick.value:
            self.state.select(self.pick.value)

    def remove(self) -> None:
        if self.pick.value:
            self.drawer.remove(self.pick.value)
            self.reload()

    def move(self, where: str) -> None:
        order = self.drawer.hashes()
        if self.pick.value in order:
            at = order.index(self.pick.value)
            self.drawer.move(self.pick.value, max(at - 1, 0) if where == "up" else at + 1)
            self.reload()

    def clear(self) -> None:
        self.drawer.clear()
        self.result.text = ""
        self.reload()

    def compare(self) -> None:
        a, b = self.first.value, self.second.value
        if not a or not b or a == b:
            self.result.text = "<i>Choose two different kept models.</i>"
            return
        store = self.state.store
        ra, rb = store.model(a), store.model(b)
        if ra is None or rb is None:
            self.result.text = "<i>One of them is no longer in the store.</i>"
            return
        names = {h: str(n) for h, n in zip(self.state.population.hash.tolist(), self.state.population.name.tolist(),
                                           strict=True)}
        lines = difflib.unified_diff(ra.text.splitlines(), rb.text.splitlines(), names.get(a, a[:8]),
                                     names.get(b, b[:8]), lineterm="", n=2)
        diff = "\n".join(_colour(line) for line in lines) or "(the same text)"
        self.result.text = (f"<div><img src='diff/{a}/{b}.svg' alt='diff chip'></div>"
                            f"<pre style='font-size:12px;background:#f6f6f6;padding:6px;max-height:260px;"
                            f"overflow:auto'>{diff}</pre>")


def _colour(line: str) -> str:
    text = html.escape(line)
    if line.startswith("+") and not line.startswith("+++"):
        return f"<span style='color:#0a6b2e'>{text}</span>"
    if line.startswith("-") and not line.startswith("---"):
        return f"<span style='color:#a40000'>{text}</span>"
    return text


def panel(state: OverviewState) -> Panel:
    part = state.parts["drawer"] = DrawerPanel(state)
    return Panel("Drawer", part.layout(), "tab")
