"""Driving the overview in headless Chromium through Playwright: a `remap serve` in a subprocess, a page that has
connected (the "Websocket connection 0 is now open" console message, then the document in `Bokeh.documents`),
the models' sources as the browser holds them, and where a model is drawn on the screen.

Debian's `chromium` is used (`executable_path=shutil.which("chromium")`, never `playwright install`). Without it
the tests are skipped on a developer's machine and fail in CI (CI=true), which installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("REMAP_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "overview"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CONNECTED = "Websocket connection 0 is now open"
VIEWPORT = {"width": 1500, "height": 1000}


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def served(path: Path, *extra: str, timeout: float = 120) -> Iterator[str]:
    """`remap serve PATH --port 0 --no-browser EXTRA...` until the block ends (stopped as Ctrl-C stops it); its
    URL."""
    process = subprocess.Popen([sys.executable, "-m", "remapdsl", "serve", str(path), "--port", "0", "--no-browser",
                                *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=path.parent)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"at (http://\S+)", first)
        assert found, first + (process.stdout.read() if process.poll() is not None else "")
        url = found.group(1)
        deadline = time.monotonic() + timeout
        while True:  # the first page builds the document: wait until the server answers
            try:
                with urllib.request.urlopen(url, timeout=timeout) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def open_page(browser: Any, url: str, timeout: float = 90) -> Any:
    """A page on `url` once its document is connected and shown."""
    page = browser.new_page(viewport=VIEWPORT)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(url, timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while not any(CONNECTED in m for m in messages):
        assert time.monotonic() < deadline, f"no websocket connection: {messages[-5:]}"
        page.wait_for_timeout(100)
    page.wait_for_function("() => Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].get_model_by_name('model_source') != null", timeout=timeout * 1000)
    page.wait_for_timeout(300)  # the first paint after the document arrives
    page.messages = messages
    return page


def data(page: Any, name: str) -> dict[str, list[Any]]:
    """The columns of a ColumnDataSource as the browser holds them."""
    return page.evaluate("""(name) => {
        const data = Bokeh.documents[0].get_model_by_name(name).data;
        const out = {};
        for (const [k, v] of (data instanceof Map ? data.entries() : Object.entries(data))) out[k] = Array.from(v);
        return out;
    }""", name)


def wait_for(page: Any, condition: str, arg: Any = None, timeout: float = 60) -> None:
    page.wait_for_function(condition, arg=arg, timeout=timeout * 1000)


FIND_PLOT = """
    const plot = Bokeh.documents[0].get_model_by_name('overview');
    const stack = [...Bokeh.index]; let view = null;
    while (stack.length) { const v = stack.pop(); if (v.model === plot) { view = v; break; }
                           for (const c of (v.child_views ?? [])) stack.push(c); }
"""


def glyph_points(page: Any) -> list[list[float]]:
    """Where each model is drawn, in page pixels (NaN where it has no position in the projection shown)."""
    return page.evaluate("""() => {""" + FIND_PLOT + """
        const renderer = plot.renderers.find(r => r.name === 'models');
        const src = Bokeh.documents[0].get_model_by_name('model_source');
        const get = (k) => Array.from(src.data instanceof Map ? src.data.get(k) : src.data[k]);
        const xs = get(renderer.glyph.x.field), ys = get(renderer.glyph.y.field);
        const box = view.canvas_view.el.getBoundingClientRect();
        const [xscale, yscale] = [view.frame.x_scale, view.frame.y_scale];
        return xs.map((x, i) => [box.left + xscale.compute(x), box.top + yscale.compute(ys[i])]);
    }""")


def box_of(page: Any, model: str) -> dict[str, float]:
    """The page rectangle of the view of the Bokeh model named `model`."""
    return page.evaluate("""(name) => {
        const model = Bokeh.documents[0].get_model_by_name(name);
        const stack = [...Bokeh.index];
        while (stack.length) {
            const v = stack.pop();
            if (v.model === model) { const r = v.el.getBoundingClientRect();
                                     return {x: r.left, y: r.top, width: r.width, height: r.height}; }
            for (const c of (v.child_views ?? [])) stack.push(c);
        }
        return null;
    }""", model)


def shoot(page: Any, name: str, model: str | None = None) -> Path:
    """A screenshot of the page (or of the named model's view) among the test artefacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if model is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        box = box_of(page, model)
        assert box and box["width"] > 0 and box["height"] > 0, f"{model} is not shown"
        page.screenshot(path=str(path), clip=box)
    return path
