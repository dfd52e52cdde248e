"""SNAC chips of stored models as SVG, for the hover, the drawer and the inspector (`/chip/HASH/SIZE.svg`) and
the drawer's comparison (`/diff/PARENT/CHILD.svg`). A chip is drawn from the model's stored text with the input
shape of the data line it was trained on, when asked for; chips are kept by hash and size (a hash names one
architecture, so a chip never goes stale)."""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from pathlib import Path

from tornado.web import RequestHandler

from remapdsl.language.analysis import ModelInfo, analyze
from remapdsl.language.parser import parse
from remapdsl.snac import SIZE_NAMES, diff_models, render_diff_svg, render_svg
from remapdsl.store.db import Store, StoreError

KEPT = 20_000  # chips kept in memory (a micro chip is about 1 KB)
DEFAULT_DATA = "data digits"


class ChipError(ValueError):
    """The chip cannot be drawn; the message says why, for the picture's text."""


def model_info(store: Store, model_hash: str, data_line: str | None = None) -> ModelInfo:
    row = store.model(model_hash)
    if row is None:
        raise ChipError(f"no model {model_hash[:12]} in the store")
    runs = store.runs(model_hash)
    header = data_line or (runs[-1].data_text if runs else DEFAULT_DATA)
    base = Path(runs[-1].base_dir) if runs and runs[-1].base_dir else None
    result = parse(f"{header}\n{row.text}")
    models = result.document.models
    if result.diagnostics or len(models) != 1:
        raise ChipError("its stored text no longer parses")
    analysis = analyze(result.document, result.diagnostics, base)
    return analysis.models[models[0].name]


def chip_svg(store: Store, model_hash: str, size: str) -> str:
    return render_svg(model_info(store, model_hash), size)


def diff_svg(store: Store, parent: str, child: str) -> str:
    return render_diff_svg(diff_models(model_info(store, parent), model_info(store, child)), "compact", legend=False)


def problem_svg(text: str) -> str:
    width = 8 + 6 * len(text)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="18" role="img" '
            f'aria-label="{html.escape(text)}"><text x="4" y="13" font-size="11" fill="#a40000" '
            f'font-family="sans-serif">{html.escape(text)}</text></svg>')


class ChipCache:
    """Rendered chips by (kind, hashes, size), the newest `KEPT`; one store connection per thread."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self._svgs: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()

    def _store(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open_read_only(self.store_path)
        return store

    def get(self, key: tuple[str, ...]) -> str:
        with self._lock:
            if key in self._svgs:
                self._svgs.move_to_end(key)
                return self._svgs[key]
        try:
            svg = diff_svg(self._store(), key[1], key[2]) if key[0] == "diff" else chip_svg(self._store(), key[1],
                                                                                            key[2])
        except (ChipError, StoreError) as e:
            return problem_svg(f"no chip: {e}")
        with self._lock:
            self._svgs[key] = svg
            while len(self._svgs) > KEPT:
                self._svgs.popitem(last=False)
        return svg


class ChipHandler(RequestHandler):
    """GET /chip/HASH/SIZE.svg and /diff/PARENT/CHILD.svg."""

    def initialize(self, cache: ChipCache) -> None:
        self.cache = cache

    def get(self, kind: str, first: str, second: str) -> None:
        if kind == "chip" and second not in SIZE_NAMES:
            self.set_status(404)
            self.finish(f"unknown chip size '{second}'; expected one of {', '.join(SIZE_NAMES)}")
            return
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "max-age=3600")
        self.finish(self.cache.get((kind, first, second)))


# hashes are hex; the pattern keeps anything else (paths, dots) out
ROUTE = r"/(chip|diff)/([0-9a-f]{1,64})/([0-9a-z]{1,64})\.svg"
