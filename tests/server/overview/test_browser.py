"""The overview in a real browser: `remap serve` on a workspace of trained digits models, driven through
headless Chromium. Every panel is saved as a screenshot among the test artefacts (tests/artifacts/overview/)."""

from __future__ import annotations

import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remapdsl.store.db import Store
from remapdsl.store.drawer import Drawer
from remapdsl.store.queue import Queue
from tests.server.overview.browser import chromium, data, glyph_points, open_page, served, shoot, wait_for
from tests.server.overview.test_overview import queue_extra
from tests.server.overview.trained import MODELS, trained_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_copy(tmp_path_factory.getbasetemp() / "overview-base", tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def url(workspace: Path) -> Iterator[str]:
    with served(workspace, "--no-worker") as address:
        yield address


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.server.overview.browser import ARGS

    executable = chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, url: str) -> Iterator[Any]:
    opened = open_page(browser, url)
    yield opened
    opened.close()


def store_of(workspace: Path) -> Store:
    return Store(workspace.parent / ".remap" / "remap.db")


def tab(page: Any, title: str) -> None:
    page.locator(".bk-tab", has_text=title).first.click()
    page.wait_for_timeout(400)


def row_of(page: Any, name: str) -> int:
    return data(page, "model_source")["name"].index(name)


def test_every_model_is_drawn_once_and_the_screen_is_complete(page: Any) -> None:
    models = data(page, "model_source")
    assert sorted(models["name"]) == sorted(MODELS)
    points = glyph_points(page)
    assert len(points) == len(MODELS) and all(math.isfinite(x) and math.isfinite(y) for x, y in points)
    # the hover's chip and the drawer's diff chip come from the server
    hashes = models["hash"]
    with urllib.request.urlopen(f"{page.url.split('?')[0]}chip/{hashes[0]}/mini.svg") as reply:
        assert reply.headers["Content-Type"] == "image/svg+xml" and reply.read().startswith(b"<svg")
    with urllib.request.urlopen(f"{page.url.split('?')[0]}diff/{hashes[0]}/{hashes[1]}.svg") as reply:
        assert b"<svg" in reply.read()
    shoot(page, "screen")
    shoot(page, "model-overview", "overview_panel")
    shoot(page, "data-selection", "classes_panel")


def test_switching_projections_moves_the_glyphs(page: Any) -> None:
    before = glyph_points(page)
    page.get_by_text("Structure (OTMANN)").click()
    wait_for(page, """() => { const s = Bokeh.documents[0].get_model_by_name('model_source');
                              const sx = s.data instanceof Map ? s.data.get('sx') : s.data.sx;
                              return Array.from(sx).every(Number.isFinite); }""", timeout=120)
    page.wait_for_timeout(500)
    after = glyph_points(page)
    moved = sum(abs(a[0] - b[0]) + abs(a[1] - b[1]) > 2 for a, b in zip(before, after, strict=True))
    assert moved >= len(MODELS) - 1
    shoot(page, "structural-projection", "overview_panel")
    page.get_by_text("Predictions").click()
    wait_for(page, """() => { const s = Bokeh.documents[0].get_model_by_name('model_source');
                              const px = s.data instanceof Map ? s.data.get('px') : s.data.px;
                              return Array.from(px).every(Number.isFinite); }""", timeout=120)
    page.wait_for_timeout(500)
    assert glyph_points(page) != after
    shoot(page, "prediction-projection", "overview_panel")


def test_choosing_a_class_changes_the_colours(page: Any) -> None:
    before = data(page, "model_source")["score"]
    page.get_by_role("button", name="3", exact=True).click()
    wait_for(page, """(before) => { const s = Bokeh.documents[0].get_model_by_name('model_source');
                                    const d = s.data instanceof Map ? s.data.get('score') : s.data.score;
                                    return Array.from(d).some((v, i) => Math.abs(v - before[i]) > 1e-9); }""",
             before)
    page.wait_for_timeout(300)
    shoot(page, "class-3-colours", "overview_panel")


def test_tapping_a_model_opens_the_inspector_with_its_confusion_matrix(page: Any, workspace: Path) -> None:
    x, y = glyph_points(page)[row_of(page, "conv")]
    page.mouse.click(x, y)
    wait_for(page, """() => Bokeh.documents[0].get_model_by_name('inspector_title').text.includes('conv')""")
    wait_for(page, """() => { const c = Bokeh.documents[0].get_model_by_name('confusion');
                              return (c.data instanceof Map ? c.data.get('count') : c.data.count).length === 100; }""")
    page.wait_for_timeout(600)
    shoot(page, "inspector", "inspector_panel")
    with store_of(workspace) as store:
        assert data(page, "model_source")["hash"][row_of(page, "conv")] in Drawer(store).hashes()


def test_the_drawer_compares_two_kept_models(page: Any) -> None:
    for name in ("mlp", "mlp_tanh"):
        x, y = glyph_points(page)[row_of(page, name)]
        page.mouse.click(x, y)
        page.wait_for_timeout(400)
    tab(page, "Drawer")
    wait_for(page, """() => Bokeh.documents[0].get_model_by_name('drawer_list').text.includes('mlp_tanh')""")
    hashes = data(page, "model_source")["hash"]
    page.evaluate("""([a, b]) => { const d = Bokeh.documents[0];
                                   d.get_model_by_name('compare_a').value = a;
                                   d.get_model_by_name('compare_b').value = b; }""",
                  [hashes[row_of(page, "mlp")], hashes[row_of(page, "mlp_tanh")]])
    page.locator(".bk-btn", has_text="compare").first.click()
    wait_for(page, """() => Bokeh.documents[0].get_model_by_name('drawer_diff').text.includes('tanh')""")
    page.wait_for_timeout(800)  # the chips load
    shoot(page, "drawer", "drawer_panel")


def test_queue_moves_and_cancels_and_a_separate_worker_trains_live(page: Any, workspace: Path) -> None:
    a, b, c = queue_extra(workspace)
    wait_for(page, """() => Bokeh.documents[0].get_model_by_name('model_source').get_length() === 8""")
    tab(page, "Queue")
    wait_for(page, """(n) => { const j = Bokeh.documents[0].get_model_by_name('jobs');
                               return (j.data instanceof Map ? j.data.get('id') : j.data.id).length === n; }""", 3)
    page.locator(".slick-cell", has_text="extra_c").first.click()
    page.locator(".bk-btn", has_text="top").first.click()
    wait_for(page, """(order) => { const j = Bokeh.documents[0].get_model_by_name('jobs');
                                   const ids = Array.from(j.data instanceof Map ? j.data.get('id') : j.data.id);
                                   return JSON.stringify(ids) === JSON.stringify(order); }""", [c, a, b])
    page.wait_for_timeout(500)  # the grid draws the new order
    page.locator(".slick-cell", has_text="extra_b").first.click()
    wait_for(page, """(row) => Bokeh.documents[0].get_model_by_name('jobs').selected.indices[0] === row""", 2)
    page.get_by_role("button", name="cancel", exact=True).click()
    wait_for(page, """() => Bokeh.documents[0].get_model_by_name('queue_message').text.includes('cancel')""")
    with store_of(workspace) as store:
        queue = Queue(store)
        assert [j.id for j in queue.queued()] == [c, a]
        assert queue.require(b).status == "cancelled"
    shoot(page, "queue", "queue_panel")
    # a worker of its own trains the first queued job; the page shows it without a reload
    worker = subprocess.run([sys.executable, "-m", "remapdsl", "worker", "--store",
                             str(workspace.parent / ".remap" / "remap.db"), "--max-jobs", "1", "--no-onnx",
                             "--poll", "0.2"], capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    wait_for(page, """(row) => { const s = Bokeh.documents[0].get_model_by_name('model_source');
                                 const st = s.data instanceof Map ? s.data.get('status') : s.data.status;
                                 return st[row] === 'done'; }""", row_of(page, "extra_c"), timeout=30)
    models = data(page, "model_source")
    assert models["acc"][row_of(page, "extra_c")] > 0.1
    shoot(page, "after-worker", "overview_panel")


def test_an_unknown_model_link_is_said_in_the_page(browser: Any, url: str) -> None:
    linked = open_page(browser, url + "?model=0000dead")
    try:
        wait_for(linked, """() => Bokeh.documents[0].get_model_by_name('errors').text.includes('names no model')""")
        assert data(linked, "model_source")["name"]  # the overview is shown all the same
        shoot(linked, "unknown-link")
    finally:
        linked.close()
