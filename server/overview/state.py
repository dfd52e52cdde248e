"""What the panels of one browser session share: the store, the population, the selection and an event bus.

Panels never import each other. One panel says what happened (`state.emit("select", hash)`), the others that
care subscribed with `state.on("select", ...)`. Every handler and every Bokeh callback goes through
`state.guard`, so a failure is logged, shown in the page's error line, and the session keeps serving.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from remapdsl.store.population import Population, per_class_accuracy, read_population

if TYPE_CHECKING:
    from bokeh.document import Document as BokehDocument
    from bokeh.models import LayoutDOM

    from remapdsl.language.model import Document
    from remapdsl.store.db import Store

log = logging.getLogger("remapdsl.overview")

# The events panels emit and subscribe to, with what they carry.
EVENTS = (
    "select",  # the architecture hash now selected, or None
    "population",  # the rows (indices into state.population) that changed or were added
    "classes",  # the class indices chosen in the data selection (empty: overall accuracy)
    "keep",  # hashes to put into the drawer (a tap or a box selection)
    "drawer",  # the drawer's hashes, in order, after it changed
    "jobs",  # the job ids whose status or progress changed
    "epochs",  # the run ids that finished an epoch
)
Area = Literal["main", "tab"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ServeConfig:
    """What `remap serve` was given: the store, and the .remap file whose header it reads (None: a folder)."""

    store_path: Path
    file: Path | None = None
    poll_ms: int = 500  # the live panel's period


@dataclass(frozen=True)
class Panel:
    """One panel of the screen: its layout, its title (a tab's label) and where it goes."""

    title: str
    view: LayoutDOM
    area: Area = "tab"


@dataclass
class OverviewState:
    """One browser session's view of the store. Built by `app.build_document`; panels read and extend it."""

    config: ServeConfig
    doc: BokehDocument
    store: Store
    population: Population
    document: Document | None = None  # the .remap file's parsed text (its header: data, budgets)
    data_key: str | None = None  # the file's data set: only runs on it count
    class_names: tuple[str, ...] = ()
    samples: np.ndarray | None = None  # a few validation images per class (workspace.Header.samples)
    data_problem: str = ""  # why the data set could not be read, when it could not
    cursor: int = 0  # the change feed's cursor: what of the store this session has seen
    selected: str | None = None
    classes: tuple[int, ...] = ()
    errors: list[str] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)  # panels' objects by name, for tests and benchmarks
    _class_accuracy: np.ndarray | None = None  # per-class accuracy by population row, read when first needed
    _handlers: dict[str, list[Callable[..., None]]] = field(default_factory=lambda: defaultdict(list))
    _error_sinks: list[Callable[[str], None]] = field(default_factory=list)

    # --- events ------------------------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., None]) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown overview event '{event}'; expected one of {', '.join(EVENTS)}")
        self._handlers[event].append(handler)

    def emit(self, event: str, value: object) -> None:
        """Call every handler of `event` with `value`; a failing handler is reported and the others still run."""
        if event not in EVENTS:
            raise ValueError(f"unknown overview event '{event}'; expected one of {', '.join(EVENTS)}")
        if event == "select":
            self.selected = value if isinstance(value, str) else None
        elif event == "classes":
            self.classes = tuple(value) if isinstance(value, tuple | list) else ()
        for handler in list(self._handlers[event]):
            self.run_guarded(f"{event} in {_name(handler)}", handler, value)

    def select(self, model_hash: str | None) -> None:
        self.emit("select", model_hash)

    # --- the population ----------------------------------------------------------------------------

    def refresh(self, hashes: set[str] | frozenset[str] | None = None) -> np.ndarray:
        """Read the models of `hashes` again (all of them for None) and return the rows that changed or were
        added; the population's order is kept and new models are appended."""
        if hashes is None:
            self.population = read_population(self.store, data_key=self.data_key)
            self._class_accuracy = None
            return np.arange(len(self.population))
        fresh = read_population(self.store, data_key=self.data_key, hashes=hashes)
        if not len(fresh):
            return np.array([], dtype=int)
        index = self.population.index
        rows = np.array([index.get(h, -1) for h in fresh.hash.tolist()], dtype=int)
        known = rows >= 0
        columns = self.population.columns()
        merged = {}
        for name, values in columns.items():
            new_values = getattr(fresh, name)
            updated = values.copy()
            updated[rows[known]] = new_values[known]
            merged[name] = np.concatenate([updated, new_values[~known]])
        n_old = len(self.population)
        self.population = Population(**merged)
        added = np.arange(n_old, n_old + int((~known).sum()))
        changed = np.concatenate([rows[known], added])
        if self._class_accuracy is not None:
            self._class_accuracy = self._grow(self._class_accuracy, changed)
        return changed

    def _grow(self, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
        fresh = per_class_accuracy(self.store, self.population.run_id[rows])
        width = max(matrix.shape[1], fresh.shape[1])
        out = np.full((len(self.population), width), np.nan)
        out[:matrix.shape[0], :matrix.shape[1]] = matrix
        out[rows, :fresh.shape[1]] = fresh
        return out

    def class_accuracy(self) -> np.ndarray:
        """Per-class validation accuracy, one row per model (NaN where untrained), read once per session."""
        if self._class_accuracy is None or self._class_accuracy.shape[0] != len(self.population):
            self._class_accuracy = per_class_accuracy(self.store, self.population.run_id)
        return self._class_accuracy

    def score(self, classes: tuple[int, ...] | list[int]) -> np.ndarray:
        """Each model's accuracy: overall, or the mean over the chosen classes."""
        if not classes:
            return np.asarray(self.population.val_acc, dtype=float).copy()
        matrix = self.class_accuracy()
        wanted = [c for c in classes if c < matrix.shape[1]]
        if not wanted:
            return np.full(len(self.population), np.nan)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.nanmean(matrix[:, wanted], axis=1) if len(wanted) > 1 else matrix[:, wanted[0]])

    def parent_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the models whose parent is stored, and the rows of their parents."""
        hashes = np.asarray(self.population.hash, dtype=str)
        parents = np.asarray(self.population.parent, dtype=str)
        if not len(hashes):
            return np.array([], dtype=int), np.array([], dtype=int)
        order = np.argsort(hashes)
        at = np.clip(np.searchsorted(hashes[order], parents), 0, len(hashes) - 1)
        found = (parents != "") & (hashes[order][at] == parents)
        return np.flatnonzero(found), order[at[found]]

    # --- failures ----------------------------------------------------------------------------------

    def on_error(self, sink: Callable[[str], None]) -> None:
        """`sink` is told each failure in words (the page's error line)."""
        self._error_sinks.append(sink)

    def report(self, where: str, error: BaseException | str) -> None:
        """Log a failure and show it in the page; the session goes on."""
        if isinstance(error, BaseException):
            text = f"{where}: {type(error).__name__}: {error}"
            log.error("%s\n%s", text, "".join(traceback.format_exception(type(error), error, error.__traceback__)))
        else:
            text = f"{where}: {error}"
            log.error("%s", text)
        self.errors.append(text)
        del self.errors[:-20]
        for sink in self._error_sinks:
            try:
                sink(text)
            except Exception:  # the error line itself failing must not hide the first failure
                log.exception("showing an error failed")

    def run_guarded(self, where: str, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception as e:
            self.report(where, e)

    def guard(self, where: str, fn: F) -> F:
        """`fn` wrapped so that an exception is reported instead of escaping into Bokeh."""

        @functools.wraps(fn)  # Bokeh reads the callback's signature to call it
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                self.report(where, e)
                return None

        return guarded  # type: ignore[return-value]  # same signature, wrapped


def _name(handler: Callable[..., None]) -> str:
    module = getattr(handler, "__module__", "") or ""
    return f"{module.rpartition('.')[2]}.{getattr(handler, '__qualname__', repr(handler))}"


PanelFactory = Callable[[OverviewState], Panel]
