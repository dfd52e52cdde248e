"""The README's picture of the overview: `remap demo` trains its population (without serving), `remap serve` shows
it, and headless Chromium takes the screen with the most accurate model in the inspector, through the same code as
the end-to-end tests.

Run: `python -m tests.server.overview.screenshot_demo [--models 20] [--epochs 5] [-o docs/overview.png]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.server.overview.browser import ARGS, ROOT, VIEWPORT, chromium, data, open_page, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "overview.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "remapdsl", "demo", "--dir", str(folder), "--models", str(args.models),
                        "--epochs", str(args.epochs), "--no-serve"], check=True)
        with served(folder / "demo.remap", "--no-worker") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
            page = open_page(browser, url)
            models = data(page, "model_source")
            best = max(range(len(models["acc"])), key=lambda i: models["acc"][i] or 0)
            page.close()
            page = open_page(browser, f"{url}?model={models['hash'][best]}")
            page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('confusion').get_length() > 0")
            page.wait_for_timeout(1500)  # the chips load
            page.set_viewport_size(VIEWPORT)
            page.screenshot(path=str(args.output), full_page=False)
            browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
