"""The overview's document: one per browser session, built from `PANELS`.

To add a panel (the Generate tab, say): write `server/overview/generate.py` with
`def panel(state: OverviewState) -> Panel`, returning `Panel("Generate", layout, "tab")`, and add its `panel` to
`PANELS` below. The factory reads the store and the population through `state`, listens to the events it needs
(`state.on("select", ...)`) and says what it did with `state.emit(...)`; wrap Bokeh callbacks in `state.guard`.
Panels with area "main" stack under the scatter; "tab" panels become tabs beside it, in `PANELS` order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bokeh.document import Document as BokehDocument
from bokeh.layouts import column, row
from bokeh.models import TabPanel, Tabs
from bokeh.models.widgets import Div
from remapdsl_server.overview import (
    children_table,
    classes,
    drawer,
    errors,
    generate,
    inspector,
    link,
    live,
    model_text,
    queue,
    sample,
    scatter,
)
from remapdsl_server.overview.state import OverviewState, Panel, PanelFactory, ServeConfig

from remapdsl.store.changes import change_cursor
from remapdsl.store.db import Store
from remapdsl.store.population import read_population

log = logging.getLogger("remapdsl.overview")

# The panels in screen order. Model overview and data selection are the main column; the rest are tabs.
PANELS: tuple[PanelFactory, ...] = (scatter.panel, sample.panel, classes.panel, inspector.panel, drawer.panel,
                                    queue.panel, generate.panel, children_table.panel, model_text.panel)
TITLE = "remap overview"


def open_state(config: ServeConfig, doc: BokehDocument) -> OverviewState:
    """The session's state: its own connection to the store, the file's header, and the population."""
    from remapdsl_server.overview.workspace import read_header

    store = Store(config.store_path)
    header = read_header(config.file, store)
    cursor = change_cursor(store)  # before reading, so that a write in between is seen again rather than lost
    population = read_population(store, data_key=header.data_key)
    state = OverviewState(config=config, doc=doc, store=store, population=population, document=header.document,
                          data_key=header.data_key, class_names=header.class_names)
    state.cursor = cursor
    state.samples = header.samples
    state.data_problem = header.problem
    return state


def build_document(doc: BokehDocument, config: ServeConfig, panels: tuple[PanelFactory, ...] = PANELS,
                   arguments: dict[str, list[bytes]] | None = None) -> OverviewState:
    """Fill `doc` with the overview of the store; `arguments` are the page's query (`?model=HASH`)."""
    state = open_state(config, doc)
    doc.title = TITLE
    error_line = errors.error_line(state)
    built = [_built(factory, state) for factory in panels]
    main = [p.view for p in built if p.area == "main"]
    tabs = Tabs(tabs=[TabPanel(child=p.view, title=p.title) for p in built if p.area == "tab"], name="tabs",
                width=700)
    where = config.file if config.file is not None else config.store_path.parent.parent
    header = Div(text=f"<b style='font-size:16px'>remap overview</b> <span style='color:#666'>"
                      f"{_escape(str(where))} · store {_escape(str(config.store_path))}</span>", name="header")
    doc.add_root(column(header, error_line, row(column(*main), tabs), name="screen"))
    live.start(state)
    link.apply(state, arguments or {})
    doc.on_session_destroyed(lambda _context: state.store.close())
    return state


def _built(factory: PanelFactory, state: OverviewState) -> Panel:
    """The factory's panel; one that fails is a panel saying so (and the failure is logged), the rest are shown."""
    try:
        return factory(state)
    except Exception as e:
        where = getattr(factory, "__module__", "panel").rpartition(".")[2]
        state.report(f"the {where} panel", e)
        return Panel(where, Div(text=f"<i>The {_escape(where)} panel could not be built: "
                                     f"{_escape(type(e).__name__)}: {_escape(str(e))}</i>", width=680), "tab")


def failed_document(doc: BokehDocument, config: ServeConfig, error: Exception) -> None:
    """The page when the store cannot be read at all: what went wrong, in words."""
    log.error("the overview of %s cannot be built", config.store_path, exc_info=error)
    doc.title = TITLE
    doc.add_root(Div(text=f"<b>remap overview</b><p style='color:#a40000'>The store {_escape(str(config.store_path))} "
                          f"cannot be read: {_escape(type(error).__name__)}: {_escape(str(error))}</p>"
                          "<p>Reload the page once it is fixed.</p>", name="errors", width=900))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_document_handler(config: ServeConfig) -> Callable[[BokehDocument], None]:
    """The function Bokeh calls for each new session."""

    def handler(doc: BokehDocument) -> None:
        context = doc.session_context
        request = getattr(context, "request", None)  # None for a document built outside a server
        arguments = dict(request.arguments) if request is not None else {}
        try:
            build_document(doc, config, arguments=arguments)
        except Exception as e:  # the store unreadable or damaged: said in the page, the server goes on
            doc.clear()
            failed_document(doc, config, e)

    return handler


def config_for(store_path: Path, file: Path | None) -> ServeConfig:
    return ServeConfig(store_path=store_path.resolve(), file=None if file is None else file.resolve())
