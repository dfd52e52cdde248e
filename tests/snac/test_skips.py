"""SNAC chips of models with residual blocks: an arc from the block's input to the addition, in every size and
in text, and diffs that mark a block added or removed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from remapdsl.language.analysis import ModelInfo, analyze_model
from remapdsl.snac.diff import diff_models
from remapdsl.snac.skips import ADDED_BLOCK, REMOVED_BLOCK, SAME_BLOCK, levels
from remapdsl.snac.svg import SIZE_NAMES, SIZES, render_diff_svg, render_svg
from remapdsl.snac.text import render_diff_text, render_text
from tests.samples import DIGITS, model

SVG = "{http://www.w3.org/2000/svg}"
BODY = "model body:\n    conv2d 16\n    relu\n    conv2d 16\n    batchnorm\n    relu\n    maxpool 2\n    flatten\n" \
       "    dense 10\n"
WRAPPED = BODY.replace("model body:", "model wrapped:").replace(
    "    conv2d 16\n    batchnorm\n    relu\n", "    residual:\n        conv2d 16\n        batchnorm\n        relu\n")
NESTED = """\
model nested:
    conv2d 16
    residual shortcut=conv:
        conv2d 32 stride=2
        residual:
            conv2d 32
            relu
    flatten
    dense 10
"""


def info(text: str) -> ModelInfo:
    result = analyze_model(model(text), DIGITS)
    assert result.valid, result.diagnostics
    return result


def skips(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "skip"]


def layer_xs(root: ET.Element) -> list[float]:
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "layer":
            rect = g.find(f"{SVG}rect")
            assert rect is not None
            out.append(float(rect.get("x")) + float(rect.get("width")) / 2)
    return out


def path_xs(group: ET.Element) -> tuple[float, float]:
    path = group.find(f"{SVG}path")
    assert path is not None
    numbers = [float(n) for n in path.get("d").replace("M", " ").replace("L", " ").replace("Q", " ").split()]
    xs = numbers[0::2]
    return min(xs), max(xs)


@pytest.mark.parametrize("size", SIZE_NAMES)
def test_every_size_draws_one_arc_per_block_from_its_input_to_the_addition(size):
    root = ET.fromstring(render_svg(info(WRAPPED), size))
    (arc,) = skips(root)
    assert (arc.get("data-start"), arc.get("data-stop"), arc.get("data-shortcut")) == ("2", "5", "identity")
    xs = layer_xs(root)
    column = SIZES[size].column
    start, end = path_xs(arc)
    assert start == pytest.approx(xs[2] - column / 2, abs=0.1)  # the gap before the block's first layer
    assert end == pytest.approx(xs[4] + column / 2, abs=0.1)  # the gap after its last, where the ⊕ is
    circle = arc.find(f"{SVG}circle[last()]")
    assert circle is not None and float(circle.get("cx")) == pytest.approx(end, abs=0.1)
    # the arc stands over the chip: above every block
    tops = [float(g.find(f"{SVG}rect").get("y")) for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]
    apex = min(float(n) for n in arc.find(f"{SVG}path").get("d").replace("M", " ").replace("L", " ")
               .replace("Q", " ").split()[1::2])
    assert apex < min(tops)


def test_nested_arcs_stack_and_a_projection_is_coloured_and_marked():
    root = ET.fromstring(render_svg(info(NESTED), "full"))
    outer, inner = skips(root)
    assert (outer.get("data-shortcut"), inner.get("data-shortcut")) == ("conv", "identity")
    outer_path, inner_path = (g.find(f"{SVG}path") for g in (outer, inner))
    assert outer_path.get("stroke") == "#0072B2" and inner_path.get("stroke") != "#0072B2"
    assert outer.find(f"{SVG}rect") is not None and inner.find(f"{SVG}rect") is None  # the 1x1 square
    assert "conv shortcut" in outer.find(f"{SVG}title").text and "16x8x8 → 32x4x4" in outer.find(f"{SVG}title").text


def test_levels_put_outer_blocks_above_inner_ones():
    m = model(NESTED)
    assert levels(m.blocks) == [2, 1]


def test_the_text_chip_draws_the_arc_and_the_addition_over_the_gaps():
    text = render_text(info(WRAPPED), rows=1, header=False)
    lines = text.splitlines()
    assert lines[-1].split() == ["C", "R", "C", "B", "R", "M", "F", "D"]
    arc, legs = lines[0], lines[1]
    letters = lines[-1]
    assert arc.index("╭") == letters.index("C", 2) - 1  # before the second conv
    assert legs.index("⊕") == arc.index("╮") == letters.index("M") - 1  # after the relu that ends the block
    nested = render_text(info(NESTED), rows=1, header=False).splitlines()
    # the blocks end together: both arcs come down to one ⊕
    assert "═" in nested[0] and "─" in nested[1] and nested[2].count("⊕") == 1


@pytest.mark.parametrize("size", SIZE_NAMES)
def test_a_diff_marks_a_block_added_or_removed(size):
    body, wrapped = info(BODY), info(WRAPPED)
    added = diff_models(body, wrapped)
    assert [s.status for s in added.child_skips] == [ADDED_BLOCK] and added.parent_skips == ()
    assert added.summary() == "1 block added"
    root = ET.fromstring(render_diff_svg(added, size))
    assert [g.get("data-status") for g in skips(root)] == [ADDED_BLOCK]
    removed = diff_models(wrapped, body)
    assert [s.status for s in removed.parent_skips] == [REMOVED_BLOCK] and removed.summary() == "1 block removed"
    root = ET.fromstring(render_diff_svg(removed, size))
    assert [g.get("data-status") for g in skips(root)] == [REMOVED_BLOCK]


def test_a_block_keeps_its_identity_when_layers_inside_it_change():
    wrapped = info(WRAPPED)
    ablated = info(WRAPPED.replace("        batchnorm\n", ""))
    d = diff_models(wrapped, ablated)
    assert [s.status for s in d.parent_skips] == [SAME_BLOCK] == [s.status for s in d.child_skips]
    assert d.summary() == "1 removed"
    text = render_diff_text(d)
    assert text.count("╭") == 2 and "block" not in text.split("\n", 1)[1]


def test_the_text_diff_lists_block_changes():
    text = render_diff_text(diff_models(info(BODY), info(WRAPPED)))
    assert "━" in text and text.rstrip().endswith("+ residual block over child layers 2–4")
