"""SNAC, the chips that draw an architecture: the geometry of its blocks, parent–child diffs, SVG and terminal
text."""

from __future__ import annotations

from remapdsl.snac.diff import diff_models
from remapdsl.snac.geometry import si_number
from remapdsl.snac.svg import SIZE_NAMES, data_uri, render_diff_svg, render_svg
from remapdsl.snac.text import render_diff_text, render_text

__all__ = [
    "SIZE_NAMES",
    "data_uri",
    "diff_models",
    "render_diff_svg",
    "render_diff_text",
    "render_svg",
    "render_text",
    "si_number",
]
