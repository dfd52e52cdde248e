"""The Generate tab in headless Chromium against a real `remap serve` with its training worker: ablate two
chosen layers, see the children in the children table and the queue, let the worker train them and see
their accuracy and Δ fill in; handcraft one child by inserting a dropout through a handle, and one by typing
its text with an error first (shown, queueing refused) and then fixed. Screenshots of the Generate tab and
the children table are saved under tests/artifacts/ (or $REMAP_ARTIFACTS)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("chromium") is None,
                                                    reason="Debian's chromium is not installed")]

ARTIFACTS = Path(os.environ.get("REMAP_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))
TEXT = """data digits
train epochs=1 batch=128 seed=0
budget params <= 100k

model base:
    conv2d 16
    relu
    maxpool 2
    flatten
    dense 64
    relu
    dense 10
"""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "w.remap"
    path.write_text(TEXT)
    remap = [sys.executable, "-m", "remapdsl"]
    subprocess.run([*remap, "train", str(path), "--no-onnx", "--jobs", "1"], check=True, capture_output=True,
                   timeout=300)
    server = subprocess.Popen([*remap, "serve", str(path), "--port", "0", "--no-browser"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"http://\S+/", line)
        assert found, line
        yield found.group(0), path
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_for(page: Any, check: Any, timeout: float, what: str) -> None:
    """Poll `check` while the page keeps running (a plain sleep would stall Playwright's event loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        page.wait_for_timeout(500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "generate-timed-out.png"), full_page=True)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_ablate_train_and_handcraft_in_the_browser(served: tuple[str, Path]) -> None:
    url, path = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = architecture_hash(parse(TEXT).document.models[0])
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1150})
        with page.expect_console_message(lambda m: "Websocket connection 0 is now open" in m.text, timeout=60_000):
            page.goto(f"{url}?model={base}")
        button = page.get_by_role("button")
        page.get_by_text("Generate", exact=True).click()
        page.get_by_text("Generate from base").wait_for()

        # ablate layers 0 and 2: all but those toggled off
        for label in ("1 relu", "3 flatten", "4 dense 64", "5 relu"):
            button.filter(has_text=re.compile(f"^{label}$")).first.click()
        page.get_by_role("button", name="Ablate the chosen layers").click()
        page.get_by_text("added 2 children of 'base': base_abl0, base_abl2").wait_for(timeout=20_000)
        models = [m.name for m in parse(path.read_text()).document.models]
        assert models == ["base", "base_abl0", "base_abl2"]

        # in the queue, and in the children table, where the worker's training fills in accuracy and Δ
        page.get_by_text("Queue", exact=True).click()
        page.locator(".slick-cell:visible", has_text="base_abl2").first.wait_for(timeout=10_000)
        page.get_by_text("Children", exact=True).click()
        page.get_by_text("Children of base").wait_for()
        with Store.open_read_only(path.parent / ".remap" / "remap.db") as store:
            wait_for(page, lambda: all(j.status == "done" for j in Queue(store).jobs()), 240,
                     "the worker to train the children")
        cells = page.locator(".slick-cell")
        wait_for(page, lambda: len([t for t in cells.all_inner_texts() if t == "done"]) >= 3, 20, "done in the table")
        texts = cells.all_inner_texts()
        assert "base_abl0" in texts and "base_abl2" in texts
        assert [t for t in texts if re.fullmatch(r"[+-]\d+\.\d%", t)], texts  # Δacc filled in
        assert page.locator("svg.sparkline").count() >= 3
        page.screenshot(path=str(ARTIFACTS / "generate-children-table.png"), full_page=True)
        page.get_by_text(re.compile(r"^3 models")).first.wait_for(timeout=10_000)  # their glyphs in the overview

        # handcraft: a dropout inserted through the handle before layer 3
        page.get_by_text("Generate", exact=True).click()
        button.filter(has_text=re.compile(r"^\+$")).nth(3).click()
        page.get_by_role("button", name="Insert", exact=True).click()
        text = page.locator("textarea").first  # the Generate tab comes before the DSL tab
        wait_for(page, lambda: "dropout 0.25" in text.input_value(), 10, "the dropout in the text")
        page.get_by_text("no errors: ready to queue").wait_for()
        page.get_by_role("button", name="Queue this child").click()
        page.get_by_text("added 1 child of 'base': base_edit").wait_for(timeout=20_000)

        # handcraft by typing: an error first, then fixed
        wait_for(page, lambda: "model base_edit_2 from base:" in text.input_value(), 10, "a fresh draft")
        text.fill(text.input_value().replace("dense 64", "dense 64 units=3"))
        page.get_by_text(re.compile(r"^line 7, column \d+: units is given twice")).wait_for(timeout=10_000)
        page.get_by_text("cannot be queued").wait_for()
        assert page.get_by_role("button", name="Queue this child").is_disabled()
        page.screenshot(path=str(ARTIFACTS / "generate-tab-error.png"), full_page=True)
        text.fill(text.input_value().replace("dense 64 units=3", "dense 32"))
        page.get_by_text("no errors: ready to queue").wait_for(timeout=10_000)
        page.get_by_role("button", name="Queue this child").click()
        page.get_by_text("added 1 child of 'base': base_edit_2").wait_for(timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "generate-tab.png"), full_page=True)
        browser.close()
    after = parse(path.read_text())
    assert after.diagnostics == ()
    assert [m.name for m in after.document.models] == ["base", "base_abl0", "base_abl2", "base_edit", "base_edit_2"]
    assert "# handcrafted: Added dropout 0.25 at index 3\nmodel base_edit from base:" in path.read_text()
