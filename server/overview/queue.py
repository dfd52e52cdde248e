"""The queue (the paper's Queue tab): every job with its model, status and a progress bar (epoch k of n, the
last validation loss); move a queued job to the top, up or down; cancel (a running job stops at its next batch and
keeps its finished epochs); retry; filter by status. Every action goes through `remapdsl.store.queue.Queue`, so
the command line and the editor see it at once, and so do the other sessions (through the change feed)."""

from __future__ import annotations

import html
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, CustomJS
from bokeh.models.widgets import Button, CheckboxButtonGroup, DataTable, Div, HTMLTemplateFormatter, TableColumn
from remapdsl_server.overview.state import OverviewState, Panel

from remapdsl.store.db import JOB_STATUSES
from remapdsl.store.queue import Queue, QueueError

STATUSES = tuple(str(s) for s in JOB_STATUSES)
SHOWN_FIRST = ("queued", "running", "failed")  # done and cancelled jobs pile up: shown when asked
MAX_ROWS = 2_000  # rows of one status filter shown at once (the newest ended jobs first)

PROGRESS = """
<div style="background:#eee;width:100%;height:14px;position:relative;margin-top:3px">
  <div style="background:<%= status == 'running' ? '#E69F00' : status == 'done' ? '#009E73' : '#bbb' %>;
              width:<%= progress %>%;height:14px"></div>
  <span style="position:absolute;left:4px;top:-1px;font-size:11px"><%= progress_text %></span>
</div>
"""


class QueuePanel:
    def __init__(self, state: OverviewState) -> None:
        self.state = state
        self.queue = Queue(state.store)
        self.source = ColumnDataSource(self._columns([]), name="jobs")
        self.filter = CheckboxButtonGroup(labels=list(STATUSES), name="job_filter",
                                          active=[STATUSES.index(s) for s in SHOWN_FIRST])
        self.filter.on_change("active", state.guard("queue filter", lambda _attr, _old, _new: self.reload()))
        columns = [
            TableColumn(field="id", title="job", width=45),
            TableColumn(field="model", title="model", width=150),
            TableColumn(field="status", title="status", width=80),
            TableColumn(field="progress", title="progress", width=190,
                        formatter=HTMLTemplateFormatter(template=PROGRESS)),
            TableColumn(field="loss", title="val loss", width=70),
            TableColumn(field="note", title="", width=160),
        ]
        self.table = DataTable(source=self.source, columns=columns, width=680, height=420, index_position=None,
                               selectable=True, name="job_table")
        # BokehJS redraws a table when its view's indices change, and new data of as many rows leaves them as they
        # were: the browser says the view changed whenever the data does
        self.source.js_on_change("data", CustomJS(args={"table": self.table}, code="table.view.change.emit()"))
        self.message = Div(text="", width=680, name="queue_message")
        self.counts = Div(text="", width=680, name="queue_counts")
        self.buttons = []
        for label, action in (("⤒ top", "top"), ("↑ up", "up"), ("↓ down", "down"), ("cancel", "cancel"),
                              ("retry", "retry")):
            b = Button(label=label, width=80, name=f"job_{action}",
                       button_type="danger" if action == "cancel" else "default")
            b.on_click(state.guard(f"queue {action}", lambda action=action: self.act(action)))
            self.buttons.append(b)
        state.on("jobs", lambda _ids: self.reload())
        self.reload()

    def layout(self) -> Any:
        return column(self.counts, self.filter, row(*self.buttons), self.message, self.table, name="queue_panel")

    def _columns(self, jobs: list[Any]) -> dict[str, list[Any]]:
        losses = self._losses([j for j in jobs if j.status == "running"])
        out: dict[str, list[Any]] = {k: [] for k in ("id", "model", "status", "progress", "progress_text", "loss",
                                                      "note")}
        for j in jobs:
            planned = max(j.epochs_planned, 1)
            out["id"].append(j.id)
            out["model"].append(j.model_name)
            out["status"].append(j.status + (" (stopping)" if j.cancel_requested and j.status == "running" else ""))
            out["progress"].append(round(100 * min(j.epochs_done, planned) / planned))
            out["progress_text"].append(f"epoch {j.epochs_done} of {j.epochs_planned}")
            loss = losses.get(j.run_id)
            out["loss"].append(f"{loss:.4f}" if loss is not None else "")
            out["note"].append(j.error or (j.worker or ""))
        return out

    def _losses(self, running: list[Any]) -> dict[int, float]:
        out = {}
        for j in running:
            epochs = self.state.store.epochs(j.run_id)
            if epochs:
                out[j.run_id] = epochs[-1].val_loss
        return out

    def reload(self) -> None:
        wanted = [STATUSES[i] for i in self.filter.active]
        jobs = self.queue.jobs(wanted) if wanted else []
        active = [j for j in jobs if j.status in ("queued", "running")]
        ended = sorted((j for j in jobs if j.status not in ("queued", "running")), key=lambda j: -(j.finished or 0))
        shown = [*sorted((j for j in active if j.status == "running"), key=lambda j: j.started or 0),
                 *[j for j in active if j.status == "queued"], *ended][:MAX_ROWS]
        ids = list(self.source.data["id"])
        selected = [ids[i] for i in self.source.selected.indices if i < len(ids)]
        counts = self.queue.counts()
        self.counts.text = " · ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
        fresh = self._columns(shown)
        if fresh == {k: list(v) for k, v in self.source.data.items()}:
            return
        self.source.data = fresh
        new_ids = [j.id for j in shown]
        self.source.selected.indices = [new_ids.index(i) for i in selected if i in new_ids]

    def act(self, action: str) -> None:
        ids = list(self.source.data["id"])
        chosen = [ids[i] for i in self.source.selected.indices if i < len(ids)]
        if not chosen:
            self.message.text = "<i>Select a job in the table first.</i>"
            return
        done, problems = [], []
        # moving several jobs up keeps their order: move the first first (down: the last first)
        for job_id in (reversed(chosen) if action in ("down", "top") else chosen):
            try:
                if action in ("top", "up", "down"):
                    self.queue.move(int(job_id), action)
                elif action == "cancel":
                    self.queue.cancel(int(job_id))
                else:
                    self.queue.retry(int(job_id))
                done.append(str(job_id))
            except QueueError as e:
                problems.append(str(e))
        said = f"{action}: job {', '.join(done)}" if done else ""
        self.message.text = html.escape("; ".join([s for s in (said, *problems) if s]))
        self.reload()


def panel(state: OverviewState) -> Panel:
    part = state.parts["queue"] = QueuePanel(state)
    return Panel("Queue", part.layout(), "tab")
