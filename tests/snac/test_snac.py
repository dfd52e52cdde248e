"""SNAC chips: the global height scale, plates, diffs, and the SVG and text renderers."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import xml.etree.ElementTree as ET

import pytest

from remapdsl.language.analysis import ModelInfo, analyze_model
from remapdsl.language.catalog import LAYER_TYPES, SnacStyle
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.model import Arg, Layer, ModelSpec
from remapdsl.snac.diff import ADDED, CHANGED, REMOVED, SAME, diff_models
from remapdsl.snac.geometry import (
    HEIGHT_CEILING_ELEMENTS,
    NEUTRAL_FRACTION,
    blocks_of,
    group_runs,
    height_fraction,
    scaled_height,
)
from remapdsl.snac.svg import SIZE_NAMES, SIZES, data_uri, render_diff_svg, render_svg
from remapdsl.snac.text import render_diff_text, render_text
from tests.samples import DIGITS

SVG = "{http://www.w3.org/2000/svg}"
CIFAR = DatasetInfo("cifar10", (3, 32, 32), 10, tuple(str(i) for i in range(10)))


def layer(kind: str, *positional: object, **named: object) -> Layer:
    ltype = LAYER_TYPES.get(kind)
    args = []
    if positional:
        assert ltype is not None and ltype.positional is not None
        args.append(Arg(ltype.positional.name, positional[0], positional=True))  # type: ignore[arg-type]
    args += [Arg(k, v) for k, v in named.items()]  # type: ignore[arg-type]
    return Layer(kind, tuple(args))


def model(name: str, *layers: Layer, parent: str | None = None, data: DatasetInfo | None = DIGITS) -> ModelInfo:
    return analyze_model(ModelSpec(name, tuple(layers), parent), data)


SMALL = (layer("conv2d", 16, kernel=3), layer("relu"), layer("maxpool", 2), layer("flatten"), layer("dense", 10))
EVERY_KIND = (
    layer("conv2d", 16), layer("batchnorm"), layer("relu"), layer("conv2d", 16), layer("tanh"), layer("avgpool", 2),
    layer("dropout", 0.25), layer("flatten"), layer("dense", 64), layer("sigmoid"), layer("dense", 10),
)


def fifteen_layers() -> ModelInfo:
    info = model(
        "fifteen",
        layer("conv2d", 32, kernel=3), layer("relu"), layer("dropout", 0.125),
        layer("conv2d", 64, kernel=5), layer("batchnorm"), layer("tanh"), layer("maxpool", 2),
        layer("conv2d", 64, kernel=1), layer("avgpool", 2), layer("flatten"),
        layer("dense", 128), layer("sigmoid"), layer("dropout", 0.5), layer("dense", 64), layer("dense", 10),
    )
    assert len(info.layers) == 15 and info.valid
    return info


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def layer_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]


def block_rect(group: ET.Element) -> ET.Element:
    return group.find(f"{SVG}rect")  # type: ignore[return-value]


# --- the height scale ---------------------------------------------------------------------------------


def test_height_scale_is_a_bounded_log_scale_shared_by_every_model():
    assert height_fraction((1,)) == 0.0
    assert height_fraction((HEIGHT_CEILING_ELEMENTS,)) == 1.0
    assert height_fraction((3, 224, 224)) == 1.0
    assert height_fraction((4 * HEIGHT_CEILING_ELEMENTS,)) == 1.0  # clamped
    assert height_fraction(None) is None
    # log scale: each doubling adds the same height
    steps = [height_fraction((2**k,)) for k in range(1, 6)]
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(steps)}
    assert len(gaps) == 1
    # the scale depends on the element count only, not on how the tensor is laid out
    assert height_fraction((16, 8, 8)) == height_fraction((1024,)) == height_fraction((4, 16, 16))
    assert scaled_height(None, 10, 30) == 10 + NEUTRAL_FRACTION * 20


def test_equal_data_sizes_get_equal_heights_across_models_and_data_sets():
    # 16x8x8 on digits, 1024 dense units, and 4x16x16 from cifar's 3x32x32 all leave 1,024 elements
    conv = model("conv", layer("conv2d", 16), layer("flatten"), layer("dense", 10))
    dense = model("dense", layer("flatten"), layer("dense", 1024), layer("dense", 10))
    pooled = model("pooled", layer("conv2d", 4), layer("maxpool", 2), layer("flatten"), layer("dense", 10), data=CIFAR)
    assert [li.output_shape for li in (conv.layers[0], dense.layers[1], pooled.layers[1])] == [
        (16, 8, 8), (1024,), (4, 16, 16)]
    for size in SIZE_NAMES:
        heights = []
        for info, index in ((conv, 0), (dense, 1), (pooled, 1)):
            groups = layer_groups(parse_svg(render_svg(info, size)))
            heights.append(block_rect(groups[index]).get("height"))
        assert len(set(heights)) == 1, (size, heights)
        # and the last block (10 elements) is as tall in all three
        tails = {block_rect(layer_groups(parse_svg(render_svg(m, size)))[-1]).get("height")
                 for m in (conv, dense, pooled)}
        assert len(tails) == 1


def test_bigger_outputs_are_taller():
    info = model("m", layer("flatten"), layer("dense", 4096), layer("dense", 32), layer("dense", 10))
    heights = [float(block_rect(g).get("height")) for g in layer_groups(parse_svg(render_svg(info, "compact")))]
    assert heights[1] > heights[0] > heights[2] > heights[3]


# --- the SVG chip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZE_NAMES)
def test_chip_is_valid_xml_with_one_block_per_layer_in_order(size):
    info = model("every", *EVERY_KIND)
    text = render_svg(info, size)
    root = parse_svg(text)
    groups = layer_groups(root)
    assert [g.get("data-kind") for g in groups] == [layer.kind for layer in info.model.layers]
    assert float(root.get("width")) > 0 and root.get("viewBox").startswith("0 0 ")
    # self-contained: no external references, no fonts to fetch, no ids that could collide between chips
    for forbidden in ("href", "url(", "@import", "@font-face", " id="):
        assert forbidden not in text


@pytest.mark.parametrize("size", SIZE_NAMES)
def test_chip_is_deterministic(size):
    first = render_svg(model("every", *EVERY_KIND), size, plates=True, legend=True)
    again = render_svg(model("every", *EVERY_KIND), size, plates=True, legend=True)
    assert first == again


def test_colour_and_letter_encode_the_type_twice_with_catalog_styles():
    info = model("every", *EVERY_KIND)
    for size in ("full", "compact", "mini"):
        root = parse_svg(render_svg(info, size))
        for g in layer_groups(root):
            assert block_rect(g).get("fill") == LAYER_TYPES[g.get("data-kind")].snac.colour
        letters = [t.text for t in root.iter(f"{SVG}text") if t.get("font-size") == str(SIZES[size].letter_font)]
        assert letters == [LAYER_TYPES[layer.kind].snac.symbol for layer in info.model.layers], size
    # the palette keeps colour and letter unique per type, so neither is ambiguous on its own
    styles = [t.snac for t in LAYER_TYPES.values()]
    assert len({s.symbol for s in styles}) == len(styles)
    assert len({s.colour for s in styles if s.glyph is None}) == len([s for s in styles if s.glyph is None])


def test_style_comes_from_the_layer_catalog(monkeypatch):
    restyled = dataclasses.replace(LAYER_TYPES["maxpool"], snac=SnacStyle("#123456", "Q", dotted=True))
    monkeypatch.setitem(LAYER_TYPES, "maxpool", restyled)
    root = parse_svg(render_svg(model("small", *SMALL), "full"))
    pool = layer_groups(root)[2]
    assert block_rect(pool).get("fill") == "#123456"
    assert block_rect(pool).get("stroke-dasharray")
    assert "Q" in [t.text for t in root.iter(f"{SVG}text")]
    assert render_text(model("small", *SMALL), header=False).splitlines()[-1] == "C R Q F D"


def test_dropout_has_a_dotted_border_and_activations_carry_their_curve():
    info = model("every", *EVERY_KIND)
    for size in ("full", "compact", "mini"):
        groups = layer_groups(parse_svg(render_svg(info, size)))
        curves = {}
        for g in groups:
            kind = g.get("data-kind")
            dashed = block_rect(g).get("stroke-dasharray") is not None
            assert dashed == (kind == "dropout"), (size, kind)
            paths = [p.get("d") for p in g.iter(f"{SVG}path")]
            if kind in ("relu", "tanh", "sigmoid"):
                assert len(paths) == 1, (size, kind)
                curves[kind] = paths[0]
            else:
                assert paths == [], (size, kind)
        assert set(curves) == {"relu", "tanh", "sigmoid"}
        assert "C" not in curves["relu"] and "C" in curves["tanh"] and "C" in curves["sigmoid"]
        assert curves["tanh"] != curves["sigmoid"]


def test_full_chip_labels_parameters_shapes_and_counts():
    root = parse_svg(render_svg(model("small", layer("conv2d", 16, kernel=5), layer("relu"), layer("maxpool", 2),
                                      layer("flatten"), layer("dense", 10)), "full"))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for expected in ("16 k5", "16x8x8", "416", "16x4x4", "256", "10", "2,570", "1x8x8"):
        assert expected in texts, expected
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "0: conv2d filters=16 kernel=5 stride=1 padding=same → 16x8x8, 416 parameters" in titles
    header = "".join(root.find(f"{SVG}text").itertext())  # type: ignore[union-attr]
    assert header.startswith("small") and "2,986 parameters" in header


def test_smaller_sizes_drop_labels_and_micro_drops_letters():
    info = model("small", *SMALL)
    texts = {size: [t.text for t in parse_svg(render_svg(info, size)).iter(f"{SVG}text")] for size in SIZE_NAMES}
    assert "16x8x8" in texts["full"] and "16x8x8" not in texts["compact"]
    assert texts["mini"] == ["C", "R", "M", "F", "D"]
    assert texts["micro"] == []


def test_mini_chip_of_fifteen_layers_is_small_enough_to_embed_many_times():
    info = fifteen_layers()
    sizes = {size: len(render_svg(info, size).encode("utf-8")) for size in SIZE_NAMES}
    assert sizes["mini"] < 8 * 1024
    assert sizes["micro"] < sizes["mini"] < sizes["compact"] < sizes["full"]
    root = parse_svg(render_svg(info, "micro"))
    assert float(root.get("height")) <= 16
    uri = data_uri(render_svg(info, "mini"))
    assert uri.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).decode("utf-8") == render_svg(info, "mini")


def test_unknown_shapes_are_hatched_at_the_neutral_height():
    # the pool does not fit the 8x8 input: its shape and everything after it are unknown
    info = model("broken", layer("conv2d", 16), layer("maxpool", 9), layer("dense", 10),
                 Layer("conv3d", (Arg("filters", 3),)))
    assert not info.valid
    for size in SIZE_NAMES:
        root = parse_svg(render_svg(info, size, legend=size == "full"))
        groups = layer_groups(root)
        assert [g.get("data-kind") for g in groups] == ["conv2d", "maxpool", "dense", "conv3d"]
        geo = SIZES[size]
        neutral = scaled_height(None, geo.low, geo.high)
        for g in groups[1:]:
            assert float(block_rect(g).get("height")) == pytest.approx(neutral, abs=0.06)
            assert g.find(f"{SVG}path") is not None  # the hatch
            if geo.letter_font:
                assert "?" in [t.text for t in g.iter(f"{SVG}text")]
    assert "shapes unknown" in render_svg(info, "full")
    # no data set at all: every shape is unknown, and the chip still draws
    nodata = model("nodata", *SMALL, data=None)
    assert len(layer_groups(parse_svg(render_svg(nodata, "compact")))) == 5


def test_text_is_escaped():
    info = model("m", Layer('conv<3d & "x"'), layer("dense", 10))
    for size in SIZE_NAMES:
        parse_svg(render_svg(info, size, legend=True))
    assert 'conv<3d & "x"' in [g.get("data-kind") for g in layer_groups(parse_svg(render_svg(info, "full")))]


def test_legend_lists_every_layer_type_and_the_scale():
    # without data no shape is known, so the legend also explains the unknown block
    every = model("every", *EVERY_KIND, layer("maxpool", 2), data=None)
    root = parse_svg(render_svg(every, "full", legend=True))
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for name, ltype in LAYER_TYPES.items():
        assert f"{ltype.snac.symbol} {name}" in texts
    assert "shape unknown" in texts and "log scale" in texts
    keys = [g.get("data-kind") for g in root.iter(f"{SVG}g") if g.get("class") == "legend-key"]
    assert [k for k in keys if k] == list(LAYER_TYPES)
    # a chip's own legend names only the types it uses
    chip = parse_svg(render_svg(model("small", *SMALL), "full", legend=True))
    legend_kinds = [g.get("data-kind") for g in chip.iter(f"{SVG}g") if g.get("class") == "legend-key"]
    assert legend_kinds == ["conv2d", "maxpool", "dense", "relu", "flatten"]


# --- plates -------------------------------------------------------------------------------------------


def test_repeated_runs_fold_into_plates():
    stack = (layer("conv2d", 16), layer("relu")) * 3
    info = model("stack", *stack, layer("maxpool", 2), layer("maxpool", 2), layer("flatten"), layer("dense", 10))
    runs = group_runs(blocks_of(info))
    assert [(r.start, [b.kind for b in r.pattern], r.repeat) for r in runs] == [
        (0, ["conv2d", "relu"], 3),
        # two pools with the same parameters but different output shapes stay apart: a plate draws one copy
        (6, ["maxpool"], 1), (7, ["maxpool"], 1), (8, ["flatten"], 1), (9, ["dense"], 1),
    ]
    assert sum(r.length for r in runs) == len(info.layers)
    root = parse_svg(render_svg(info, "compact", plates=True))
    plates = [g for g in root.iter(f"{SVG}g") if g.get("class") == "plate"]
    assert [p.get("data-repeat") for p in plates] == ["3"]
    assert "×3" in [t.text for t in root.iter(f"{SVG}text")]
    assert len(layer_groups(root)) == 2 + 4
    assert len(layer_groups(parse_svg(render_svg(info, "compact")))) == 10
    assert render_text(info, plates=True, header=False).splitlines()[-1] == "[ C R ]×3 M M F D"


def test_a_plate_counts_the_parameters_of_all_its_copies():
    # the first conv sees 1 channel (160 parameters), the others 16 (2,320 each): the copies look alike, but
    # the plate must not say the first copy's count
    info = model("stack", *(layer("conv2d", 16), layer("relu")) * 3, layer("flatten"), layer("dense", 10))
    assert [li.param_count for li in info.layers[:6:2]] == [160, 2320, 2320]
    [plate, *_] = group_runs(blocks_of(info))
    assert plate.repeat == 3 and plate.param_count(0) == 4800 and plate.param_count(1) == 0
    assert [b.index for b in plate.copies_of(0)] == [0, 2, 4]
    full = parse_svg(render_svg(info, "full", plates=True))
    texts = [t.text for t in full.iter(f"{SVG}text")]
    assert "Σ4,800" in texts and "160" not in texts and "2,320" not in texts
    titles = [t.text or "" for t in full.iter(f"{SVG}title")]
    assert any(t.endswith("×3 in the plate (layers 0, 2, 4): 4,800 parameters in all") for t in titles)
    # without plates every layer says its own count
    texts = [t.text for t in parse_svg(render_svg(info, "full")).iter(f"{SVG}text")]
    assert texts.count("160") == 1 and texts.count("2,320") == 2 and "Σ4,800" not in texts
    assert sum(li.param_count for li in info.layers[:6]) == 4800


def test_an_unknown_layer_with_a_value_is_labelled_and_described():
    info = model("odd", Layer("conv3d", (Arg("", 16, True), Arg("depth", 3))), layer("flatten"), layer("dense", 10))
    [block, *_] = blocks_of(info)
    assert block.short_params() == "16 d3"
    assert block.describe() == "0: conv3d 16 depth=3 → shape unknown"
    for size in SIZE_NAMES:
        parse_svg(render_svg(info, size, plates=True, legend=True))
    assert render_text(info, header=False).splitlines()[-1] == "? F D"
    wider = model("odd2", Layer("conv3d", (Arg("", 32, True), Arg("depth", 3))), layer("flatten"), layer("dense", 10))
    rows = diff_models(info, wider).rows
    assert [r.describe() for r in rows if r.status != SAME] == ["Δ 0 conv3d: value 16 → 32"]


def test_text_that_xml_cannot_hold_is_replaced_not_emitted():
    info = model("odd", Layer("conv3d", (Arg("note", "a\x00b\x01<&>\"'"),)), layer("flatten"), layer("dense", 10))
    for size in SIZE_NAMES:
        root = parse_svg(render_svg(info, size))
        if size == "full":
            assert "0: conv3d note=a\ufffdb\ufffd<&>\"' → shape unknown" in [t.text for t in root.iter(f"{SVG}title")]


def test_plates_prefer_the_pattern_covering_most_layers():
    a, b = layer("conv2d", 16), layer("relu")
    tail = (layer("flatten"), layer("dense", 10))

    def shape(*layers: Layer) -> list[tuple[int, int]]:
        return [(len(r.pattern), r.repeat) for r in group_runs(blocks_of(model("m", *layers, *tail)))]

    # a a b twice covers six layers; a twice only two
    assert shape(a, a, b, a, a, b) == [(3, 2), (1, 1), (1, 1)]
    # greedy from the left: a a a is taken first, the b a b after it does not repeat
    assert shape(a, a, a, b, a, b) == [(1, 3), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1)]
    # on a tie the shorter pattern wins: a a a a is a x4, not (a a) x2
    assert shape(a, a, a, a) == [(1, 4), (1, 1), (1, 1)]


# --- diffs --------------------------------------------------------------------------------------------


def test_ablation_marks_the_removed_layer_and_keeps_the_rest_aligned():
    parent = model("p", *EVERY_KIND)
    child = model("c", *(lay for i, lay in enumerate(EVERY_KIND) if i != 6), parent="p")  # dropout ablated
    diff = diff_models(parent, child)
    assert [r.status for r in diff.rows] == [SAME] * 6 + [REMOVED] + [SAME] * 4
    assert diff.rows[6].parent is not None and diff.rows[6].parent.kind == "dropout" and diff.rows[6].child is None
    assert diff.summary() == "1 removed"
    root = parse_svg(render_diff_svg(diff, "full"))
    marks = [t for t in root.iter(f"{SVG}text") if t.get("class") == "mark"]
    assert [(m.get("data-status"), m.text) for m in marks] == [(REMOVED, "−")]
    removed = [g for g in layer_groups(root) if g.get("data-status") == REMOVED]
    assert [(g.get("data-kind"), g.get("data-side"), g.get("opacity")) for g in removed] == [
        ("dropout", "parent", ".4")]
    assert len([g for g in layer_groups(root) if g.get("data-side") == "parent"]) == 11
    assert len([g for g in layer_groups(root) if g.get("data-side") == "child"]) == 10
    assert "− 6 dropout rate=0.25" in render_diff_text(diff)


def test_variation_marks_changed_and_added_layers():
    parent = model("p", *SMALL)
    child = model("c", layer("conv2d", 32, kernel=3), layer("tanh"), layer("dropout", 0.5), layer("avgpool", 2),
                  layer("flatten"), layer("dense", 10), parent="p")
    diff = diff_models(parent, child)
    assert [r.status for r in diff.rows] == [CHANGED, CHANGED, ADDED, CHANGED, SAME, SAME]
    assert [r.changes for r in diff.rows[:2]] == [("filters 16 → 32",), ("relu → tanh",)]
    assert diff.rows[3].changes == ("maxpool → avgpool",)
    assert diff.rows[2].child is not None and diff.rows[2].child.kind == "dropout"
    assert diff.summary() == "3 changed, 1 added"
    for size in SIZE_NAMES:
        root = parse_svg(render_diff_svg(diff, size, legend=size == "full"))
        marks = [m.get("data-status") for m in root.iter() if m.get("class") == "mark"]
        assert marks == [CHANGED, CHANGED, ADDED, CHANGED], size
        bands = [b.get("data-status") for b in root.iter(f"{SVG}rect") if b.get("class") == "band"]
        assert bands == marks
        assert render_diff_svg(diff, size) == render_diff_svg(diff_models(parent, child), size)
    full = parse_svg(render_diff_svg(diff, "full"))
    changes = [t.text for t in full.iter(f"{SVG}text") if t.get("class") == "change"]
    # the parent's layers by the parent's index (its maxpool was layer 2), the new dropout by the child's
    assert changes == ["Δ 0 conv2d: filters 16 → 32", "Δ 1 tanh: relu → tanh", "+ 2 dropout rate=0.5",
                       "Δ 2 avgpool: maxpool → avgpool"]
    text = render_diff_text(diff)
    lines = text.splitlines()
    assert lines[0] == "p → c: 3 changed, 1 added"
    assert "Δ Δ + Δ" in text
    symbol_lines = [line for line in lines if line.rstrip().endswith("F D")]
    assert symbol_lines == ["   C R   M F D", "   C T O A F D"]


def test_identical_models_diff_to_no_change():
    diff = diff_models(model("a", *SMALL), model("b", *SMALL))
    assert all(r.status == SAME for r in diff.rows) and diff.summary() == "no change"
    root = parse_svg(render_diff_svg(diff, "compact"))
    assert not [m for m in root.iter() if m.get("class") == "mark"]


# --- text ---------------------------------------------------------------------------------------------


def test_text_chip_has_one_column_per_layer():
    info = model("every", *EVERY_KIND)
    lines = render_text(info).splitlines()
    assert lines[0].startswith("every  1x8x8 → 10, ")
    assert lines[-1] == "C B R C T A O F D S D"
    assert len(lines) == 1 + 2 + 1
    dropout_column = [line.ljust(len(lines[-1]))[12] for line in lines[1:3]]
    assert lines[-1][12] == "O" and dropout_column[-1] == "░"  # dropout is shaded
    assert "░" not in "".join(line[:12] + line[13:] for line in lines[1:3])
    assert len(render_text(info, rows=4).splitlines()) == 1 + 4 + 1


def test_text_bars_follow_the_global_scale():
    conv = render_text(model("a", layer("conv2d", 16), layer("flatten"), layer("dense", 10)), rows=3, header=False)
    dense = render_text(model("b", layer("flatten"), layer("dense", 1024), layer("dense", 10)), rows=3, header=False)
    conv_lines = [line.ljust(5) for line in conv.splitlines()]
    dense_lines = [line.ljust(5) for line in dense.splitlines()]
    # 16x8x8 and 1024 units: the same bar; the 10-unit heads alike
    assert [line[0] for line in conv_lines] == [line[2] for line in dense_lines[:-1]] + ["C"]
    assert [line[4] for line in conv_lines[:-1]] == [line[4] for line in dense_lines[:-1]]
    assert conv_lines[0][0] == " " and conv_lines[2][0] == "█"


def test_text_chip_marks_unknown_shapes_and_colours_on_request():
    info = model("broken", layer("conv2d", 16), layer("maxpool", 9), layer("dense", 10))
    text = render_text(info, header=False)
    assert text.splitlines()[-2] == "█ ? ?"
    coloured = render_text(model("small", *SMALL), ansi=True)
    assert "\x1b[38;2;0;114;178mC\x1b[0m" in coloured
    assert "\x1b" not in render_text(model("small", *SMALL))
    with pytest.raises(ValueError):
        render_text(info, rows=0)
