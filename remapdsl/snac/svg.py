"""SNAC chips as SVG: one model and a parent–child diff, each with a legend on request.

Each layer is a block, in order. Its type is shown twice, by colour (the catalog's colour-blind-safe
palette) and by the letter under it; activations carry a small curve of their function, dropout a dotted
border. Block height follows the global log scale of `remapdsl.snac.geometry`, so chips of different models compare
side by side. The output is self-contained (no fonts or files are referenced, only generic font
families), deterministic (no ids, no clocks, fixed number formatting) and valid XML.

Sizes: `full` (header, parameters, output shapes and counts under each block, tooltips), `compact` (for
tooltips, drawers and tables), `mini` (editor hovers) and `micro` (a sparkline: colour and height only).

A residual block is an arc over the chip from its input to a ⊕, the addition, after its last layer
(`remapdsl.snac.skips`); a projection shortcut colours its arc like the layer that projects (conv, dense) and
carries a small square of that colour. Chips of models with blocks do not fold plates.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax import saxutils

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.catalog import LAYER_TYPES, Shape, SnacStyle, describe_shape
from remapdsl.snac.diff import ADDED, CHANGED, MARKS, REMOVED, SAME, SnacDiff
from remapdsl.snac.geometry import (
    HEIGHT_CEILING_ELEMENTS,
    UNKNOWN_STYLE,
    Run,
    SnacBlock,
    blocks_of,
    group_runs,
    model_summary,
    plain_runs,
    scaled_height,
    si_number,
)
from remapdsl.snac.skips import ADDED_BLOCK, REMOVED_BLOCK, Skip, skips_of

FONT_FAMILY = "Helvetica, Arial, sans-serif"
INK = "#222222"
MUTED = "#666666"
BAND = "#EEEEEE"


@dataclass(frozen=True)
class ChipSize:
    """The geometry of one chip resolution (SVG user units, one unit a CSS pixel)."""

    name: str
    column: float  # horizontal pitch of one block
    block: float  # block width
    low: float  # height of a block for a 1-element output
    high: float  # height at the ceiling of the scale
    pad: float
    letter_font: float  # 0: no letter row
    glyph_stroke: float  # 0: no activation glyphs
    border: float  # stroke of dotted, unknown and diff outlines
    header_font: float = 0  # 0: no header
    labels: bool = False  # parameters, output shape and count under each block
    titles: bool = False  # a tooltip per block
    input_block: bool = False  # an outlined block for the model's input
    label_font: float = 8
    arc: float = 4  # the height of one level of residual arcs above the chip


SIZES: dict[str, ChipSize] = {
    s.name: s
    for s in (
        ChipSize("full", column=58, block=30, low=6, high=96, pad=8, letter_font=11, glyph_stroke=1.6, border=1.2,
                 header_font=12, labels=True, titles=True, input_block=True, arc=12),
        ChipSize("compact", column=20, block=14, low=3, high=44, pad=4, letter_font=9, glyph_stroke=1.1, border=1,
                 titles=True, input_block=True, arc=7),
        ChipSize("mini", column=10, block=8, low=2, high=24, pad=2, letter_font=7, glyph_stroke=0.8, border=0.7,
                 arc=4.5),
        ChipSize("micro", column=4, block=3, low=1, high=12, pad=1, letter_font=0, glyph_stroke=0, border=0.5,
                 arc=3),
    )
}
SIZE_NAMES = tuple(SIZES)

# Activation curves in a unit box, y upwards: relu bends once, tanh spans -1..1 steeply, sigmoid 0..1 gently.
GLYPHS: dict[str, str] = {
    "relu": "M 0 .2 L .5 .2 L 1 .9",
    "tanh": "M 0 .1 C .55 .1 .45 .9 1 .9",
    "sigmoid": "M 0 .25 C .35 .25 .65 .75 1 .75",
}


def size_of(name: str) -> ChipSize:
    try:
        return SIZES[name]
    except KeyError:
        raise ValueError(f"unknown chip size '{name}'; expected one of {', '.join(SIZE_NAMES)}") from None


def data_uri(svg: str) -> str:
    """The chip as a `data:` URI, for Markdown hovers and HTML tooltips that take an image address."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


# --- drawing primitives ----------------------------------------------------------------------------


def num(x: float) -> str:
    """Coordinates with at most one decimal: short, and identical on every platform."""
    r = round(x, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


# Characters XML 1.0 does not allow at all, even escaped: C0 controls other than tab and line breaks, lone
# surrogates, U+FFFE and U+FFFF. A string value in a model (`note="\x01"`) may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """`text` as XML character data: markup escaped, characters XML cannot hold shown as U+FFFD."""
    return saxutils.escape(_NOT_XML.sub("\ufffd", text))


def quoteattr(text: str) -> str:
    return saxutils.quoteattr(_NOT_XML.sub("\ufffd", text))


def _attrs(**attrs: object) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        if isinstance(value, float | int) and not isinstance(value, bool):
            # a number needs no escaping (the hot path: every coordinate of every block)
            parts.append(f'{name}="{num(value)}"')
        else:
            parts.append(f"{name}={quoteattr(str(value))}")
    return " ".join(parts)


def _el(tag: str, body: str = "", **attrs: object) -> str:
    a = _attrs(**attrs)
    open_tag = f"<{tag} {a}" if a else f"<{tag}"
    return f"{open_tag}>{body}</{tag}>" if body else f"{open_tag}/>"


def _text(x: float, y: float, content: str, size: float, **attrs: object) -> str:
    return _el("text", escape(content), x=x, y=y, font_size=size, **attrs)


def _svg(width: float, height: float, label: str, body: Sequence[str]) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
            f'viewBox="0 0 {num(width)} {num(height)}" role="img" aria-label={quoteattr(label)} '
            f'font-family="{FONT_FAMILY}">')
    return "".join([head, f"<title>{escape(label)}</title>", *body, "</svg>"]) + "\n"


def _hatch(x: float, y: float, w: float, h: float, step: float, stroke: float) -> list[str]:
    """45° lines clipped to the rectangle by hand (no clip path, so no ids to collide between chips)."""
    segments = []
    t = -h + step / 2
    while t < w:
        s0, s1 = max(0.0, -t), min(h, w - t)
        if s1 > s0:
            segments.append(f"M{num(x + t + s0)} {num(y + h - s0)}L{num(x + t + s1)} {num(y + h - s1)}")
        t += step
    return [_el("path", d="".join(segments), stroke=MUTED, stroke_width=stroke, fill="none")] if segments else []


def _glyph(name: str, cx: float, cy: float, side: float, stroke: float) -> str | None:
    path = GLYPHS.get(name)
    if path is None:
        return None
    x0, y0 = cx - side / 2, cy - side / 2
    out, is_x = [], True
    for token in path.split():
        if token.isalpha():
            out.append(token)
            is_x = True
            continue
        v = float(token)
        out.append(num(x0 + v * side) if is_x else num(y0 + (1 - v) * side))
        is_x = not is_x
    return _el("path", d=" ".join(out), fill="none", stroke="#000000", stroke_width=stroke,
               stroke_linecap="round", stroke_linejoin="round")


def draw_block(kind: str | None, style: SnacStyle, shape: Shape | None, cx: float, axis: float, size: ChipSize,
               title: str | None, css: str = "layer", extra: Iterable[str] = (), **attrs: object) -> str:
    """One block centred on the axis; unknown shapes get the neutral height, a hatch and a question mark."""
    h = scaled_height(shape, size.low, size.high)
    w = size.block
    x, y = cx - w / 2, axis - h / 2
    parts: list[str] = []
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    if shape is None:
        parts.append(_el("rect", x=x, y=y, width=w, height=h, fill=style.colour, fill_opacity=".35",
                         stroke=MUTED, stroke_width=size.border))
        parts += _hatch(x, y, w, h, max(2.0, w / 4), size.border / 2)
        if size.letter_font:
            parts.append(_text(cx, axis + size.letter_font * 0.35, "?", size.letter_font, text_anchor="middle",
                               font_weight="bold", fill=INK))
    elif style.dotted:
        parts.append(_el("rect", x=x, y=y, width=w, height=h, fill=style.colour, stroke="#000000",
                         stroke_width=size.border, stroke_dasharray=f"{num(size.border * 1.5)} {num(size.border)}"))
    else:
        parts.append(_el("rect", x=x, y=y, width=w, height=h, fill=style.colour))
    if size.glyph_stroke and style.glyph and shape is not None:
        side = min(0.8 * w, max(h - 2 * size.border, 0.45 * w))
        glyph = _glyph(style.glyph, cx, axis, side, size.glyph_stroke)
        if glyph:
            parts.append(glyph)
    parts.extend(extra)
    return _el("g", "".join(parts), class_=css, data_kind=kind, **attrs)


def _letter(style: SnacStyle, cx: float, baseline: float, size: ChipSize) -> str:
    return _text(cx, baseline, style.symbol, size.letter_font, text_anchor="middle", fill=INK)


def _text_width(text: str, font: float) -> float:
    # A generous average glyph width, so that headers never spill over the edge.
    return len(text) * font * 0.6


# --- one model -------------------------------------------------------------------------------------


def render_svg(model: ModelInfo, size: str = "full", plates: bool = False, legend: bool = False) -> str:
    """The SNAC chip of one model; `plates` folds repeated runs of layers, `legend` explains the encoding."""
    geo = size_of(size)
    blocks = blocks_of(model)
    skips = skips_of(model)
    runs = group_runs(blocks) if plates and not skips else plain_runs(blocks)
    has_plates = any(r.is_plate for r in runs)
    body: list[str] = []
    x = geo.pad
    y = geo.pad
    header = ""
    if geo.header_font:
        header = f"{model.model.name}  {model_summary(model)}"
        body.append(_el("text", f'<tspan font-weight="bold">{escape(model.model.name)}</tspan>  '
                        f"{escape(model_summary(model))}", x=x, y=y + geo.header_font, font_size=geo.header_font,
                        fill=INK))
        y += geo.header_font + 6
    plate_font = max(geo.letter_font, 5.0)
    if has_plates:
        y += plate_font + 2
    y += arcs_height(skips, geo)
    top = y
    axis = top + geo.high / 2
    letters_y = top + geo.high + geo.letter_font + 1
    bottom = letters_y + (2 if geo.letter_font else 0)
    label_lines = 3 if geo.labels else 0
    cx = x + geo.column / 2
    if geo.input_block and model.input_shape is not None:
        body.append(_input_block(model.input_shape, cx, axis, letters_y, bottom, geo))
        cx += geo.column
    ends = {s.stop for s in skips}
    body += [draw_skip(skip, cx + skip.start * geo.column, top, geo, tap=skip.start not in ends) for skip in skips]
    for run in runs:
        first = cx
        for position, block in enumerate(run.pattern):
            title = _block_title(run, position) if geo.titles else None
            body.append(draw_block(block.kind, block.style, block.output_shape, cx, axis, geo, title))
            if geo.letter_font:
                body.append(_letter(block.style, cx, letters_y, geo))
            if geo.labels:
                body.extend(_labels(run, position, cx, bottom, geo))
            cx += geo.column
        if run.is_plate:
            body.append(_plate(run, first, cx - geo.column, top, bottom, plate_font, geo))
    width = cx - geo.column / 2 + geo.pad
    height = bottom + label_lines * (geo.label_font + 2) + geo.pad
    if header:
        width = max(width, geo.pad * 2 + _text_width(header, geo.header_font))
    if legend:
        kinds = [b.kind for b in blocks]
        unknown = any(not b.known for b in blocks)
        items, lw, lh = _legend(kinds, unknown, geo.pad, height, max(width, 360), geo)
        body += items
        width, height = max(width, lw), height + lh
    return _svg(width, height, f"SNAC of model {model.model.name}: {model_summary(model)}", body)


def arcs_height(skips: Sequence[Skip], geo: ChipSize) -> float:
    """The room residual arcs take above a chip: their levels and the addition's circle."""
    if not skips:
        return 0.0
    return max(s.level for s in skips) * geo.arc + 1


def draw_skip(skip: Skip, first_cx: float, top: float, geo: ChipSize, axis: float | None = None,
              tap: bool = True) -> str:
    """The arc of one block, from the gap before the column at `first_cx` (its first layer) to the gap after
    its last layer, over `top` (the top of the chip's tallest block). Where the gaps between blocks are wide
    enough, the arc reaches down to the chip's axis, and the ⊕ sits there, in line with the layers; else both
    stay on top of the chip. `axis` is the chip's axis when the arcs stand higher than the chip's top (over
    a row of letters). Without `tap` no dot marks where the input leaves the chain: a block that starts where
    another ends takes that one's ⊕ as its input."""
    xs = first_cx - geo.column / 2
    xe = first_cx + (skip.stop - skip.start - 1) * geo.column + geo.column / 2
    yt = top - skip.level * geo.arc
    r = min(geo.arc / 2, (xe - xs) / 4)
    stroke = geo.border * 1.3
    colour = _shortcut_colour(skip.shortcut)
    style: dict[str, str] = {}
    if skip.status == REMOVED_BLOCK:
        style["opacity"] = ".4"
        style["stroke_dasharray"] = f"{num(stroke * 2)} {num(stroke * 1.5)}"
    elif skip.status == ADDED_BLOCK:
        stroke *= 1.8
    radius = max(min(geo.arc * 0.4, 5.0), 1.0)
    in_line = geo.column - geo.block >= 2 * radius + stroke
    # where the arc meets the chain: the axis, or the chip's top
    foot = (top + geo.high / 2 if axis is None else axis) if in_line else top
    cy = foot if in_line else top - radius
    path = (f"M{num(xs)} {num(foot)}L{num(xs)} {num(yt + r)}Q{num(xs)} {num(yt)} {num(xs + r)} {num(yt)}"
            f"L{num(xe - r)} {num(yt)}Q{num(xe)} {num(yt)} {num(xe)} {num(yt + r)}L{num(xe)} {num(cy - radius)}")
    parts = [f"<title>{escape(skip.title)}</title>"] if geo.titles else []
    parts.append(_el("path", d=path, fill="none", stroke=colour, stroke_width=stroke, **style))
    if skip.projected:
        side = max(geo.arc * 0.6, 1.5)
        parts.append(_el("rect", x=(xs + xe) / 2 - side / 2, y=yt - side / 2, width=side, height=side, fill=colour))
    if in_line and tap:  # where the input leaves the chain
        parts.append(_el("circle", cx=xs, cy=foot, r=stroke * 1.2, fill=colour))
    # the addition: a circle with a plus on the arc's end, a plain circle in the smallest sizes
    parts.append(_el("circle", cx=xe, cy=cy, r=radius, fill="#FFFFFF", stroke=colour, stroke_width=stroke))
    if radius >= 2.5:
        arm = radius * 0.6
        parts.append(_el("path", d=f"M{num(xe - arm)} {num(cy)}L{num(xe + arm)} {num(cy)}M{num(xe)} {num(cy - arm)}"
                         f"L{num(xe)} {num(cy + arm)}", stroke=colour, stroke_width=stroke * 0.8))
    return _el("g", "".join(parts), class_="skip", data_start=skip.start, data_stop=skip.stop,
               data_shortcut=skip.shortcut, data_status=skip.status)


def _shortcut_colour(kind: str) -> str:
    ltype = LAYER_TYPES.get({"conv": "conv2d", "dense": "dense"}.get(kind, ""))
    return ltype.snac.colour if ltype is not None else INK


def _input_block(shape: Shape, cx: float, axis: float, letters_y: float, bottom: float, geo: ChipSize) -> str:
    h = scaled_height(shape, geo.low, geo.high)
    parts = [_el("rect", x=cx - geo.block / 2, y=axis - h / 2, width=geo.block, height=h, fill="none",
                 stroke=MUTED, stroke_width=geo.border)]
    if geo.titles:
        parts.insert(0, f"<title>input → {escape(describe_shape(shape))}</title>")
    if geo.letter_font:
        parts.append(_text(cx, letters_y, "in", geo.letter_font * 0.85, text_anchor="middle", fill=MUTED))
    if geo.labels:
        parts.append(_text(cx, bottom + 2 * (geo.label_font + 2), describe_shape(shape), geo.label_font,
                           text_anchor="middle", fill=MUTED))
    return _el("g", "".join(parts), class_="input")


def _block_title(run: Run, position: int) -> str:
    """The tooltip of a block; a plate's block speaks for every copy, and counts them all."""
    block = run.pattern[position]
    if not run.is_plate:
        return block.describe()
    indices = ", ".join(str(b.index) for b in run.copies_of(position))
    return f"{block.describe()}; ×{run.repeat} in the plate (layers {indices}): {run.param_count(position):,} " \
           "parameters in all"


def _labels(run: Run, position: int, cx: float, bottom: float, geo: ChipSize) -> list[str]:
    """Parameters, output shape and count under a block. Under a plate the count is that of all its copies
    (Σ), which need not be the first copy's times the repeat: the first copy's input may be narrower."""
    f = geo.label_font
    block = run.pattern[position]
    count = run.param_count(position)
    shown = "" if not count else f"Σ{count:,}" if run.is_plate else f"{count:,}"
    lines = [(block.short_params(), INK), (block.shape_text(), MUTED), (shown, MUTED)]
    return [_text(cx, bottom + (i + 1) * (f + 2), text, f, text_anchor="middle", fill=colour)
            for i, (text, colour) in enumerate(lines) if text]


def _plate(run: Run, first_cx: float, last_cx: float, top: float, bottom: float, font: float, geo: ChipSize) -> str:
    margin = (geo.column - geo.block) / 4
    x0 = first_cx - geo.block / 2 - margin
    x1 = last_cx + geo.block / 2 + margin
    frame = _el("rect", x=x0, y=top - 1, width=x1 - x0, height=bottom - top + 1, rx=min(3, margin + 1),
                fill="none", stroke=MUTED, stroke_width=geo.border)
    label = _text(x1, top - 3, f"×{run.repeat}", font, text_anchor="end", fill=INK)
    return _el("g", frame + label, class_="plate", data_repeat=run.repeat)


# --- parent and child ------------------------------------------------------------------------------


def render_diff_svg(diff: SnacDiff, size: str = "full", legend: bool = False) -> str:
    """Parent above, child below, aligned layer by layer; removed, added and changed layers marked."""
    geo = size_of(size)
    parent, child = diff.parent.model.name, diff.child.model.name
    title = f"{parent} → {child}: {diff.summary()}"
    body: list[str] = []
    y = geo.pad
    if geo.header_font or geo.titles:
        font = geo.header_font or geo.letter_font
        body.append(_text(geo.pad, y + font, title, font, fill=INK))
        y += font + 4
    names = geo.letter_font > 0 and (geo.titles or geo.labels)
    name_font = geo.letter_font
    gutter = max(_text_width(parent, name_font), _text_width(child, name_font)) + geo.pad if names else 0
    mark_font = max(geo.letter_font, 4.0)
    y += arcs_height(diff.parent_skips, geo)
    p_arcs = y  # the parent's arcs stand over its letters
    p_letters = y + geo.letter_font
    p_top = p_letters + (3 if geo.letter_font else 0)
    p_axis = p_top + geo.high / 2
    marks_y = p_top + geo.high + mark_font + 1
    c_top = marks_y + 3 + arcs_height(diff.child_skips, geo)
    c_axis = c_top + geo.high / 2
    c_letters = c_top + geo.high + geo.letter_font + 1
    bottom = c_letters + 3
    if names:
        body.append(_text(geo.pad, p_axis + name_font * 0.35, parent, name_font, fill=INK, class_="name"))
        body.append(_text(geo.pad, c_axis + name_font * 0.35, child, name_font, fill=INK, class_="name"))
    cx = geo.pad + gutter + geo.column / 2
    bands = len(body)
    for row in diff.rows:
        if row.status != SAME:
            body.append(_el("rect", x=cx - geo.column / 2 + 0.5, y=y, width=geo.column - 1, height=bottom - y,
                            fill=BAND, class_="band", data_status=row.status))
        if row.parent is not None:
            body.append(_diff_block(row.parent, cx, p_axis, geo, row.status, is_child=False))
            if geo.letter_font:
                body.append(_letter(row.parent.style, cx, p_letters, geo))
        if row.child is not None:
            body.append(_diff_block(row.child, cx, c_axis, geo, row.status, is_child=True))
            if geo.letter_font:
                body.append(_letter(row.child.style, cx, c_letters, geo))
        if row.status != SAME:
            body.append(_mark(row.status, row.mark, cx, marks_y, mark_font, geo))
        cx += geo.column
    first = geo.pad + gutter + geo.column / 2
    # the parent's arcs under its blocks (the bands are drawn first); the child's after everything
    ends = {s.stop for s in diff.parent_skips}
    body[bands:bands] = [draw_skip(skip, first + skip.start * geo.column, p_arcs, geo, p_axis,
                                   tap=skip.start not in ends) for skip in diff.parent_skips]
    ends = {s.stop for s in diff.child_skips}
    body += [draw_skip(skip, first + skip.start * geo.column, c_top, geo, tap=skip.start not in ends)
             for skip in diff.child_skips]
    width = max(cx - geo.column / 2 + geo.pad, geo.pad * 2 + _text_width(title, geo.header_font or geo.letter_font))
    height = bottom + geo.pad
    if geo.labels:
        changed = [r.describe() for r in diff.rows if r.status != SAME] + diff.block_changes()
        for i, line in enumerate(changed):
            body.append(_text(geo.pad, height + i * (geo.label_font + 4) + geo.label_font, line,
                              geo.label_font + 1, fill=INK, class_="change"))
            width = max(width, geo.pad * 2 + _text_width(line, geo.label_font + 1))
        height += len(changed) * (geo.label_font + 4) + (geo.pad if changed else 0)
    if legend:
        blocks = [b for r in diff.rows for b in (r.parent, r.child) if b is not None]
        items, lw, lh = _legend([b.kind for b in blocks], any(not b.known for b in blocks), geo.pad, height,
                                max(width, 360), geo, statuses=True)
        body += items
        width, height = max(width, lw), height + lh
    return _svg(width, height, f"SNAC diff {title}", body)


def _diff_block(block: SnacBlock, cx: float, axis: float, geo: ChipSize, status: str, is_child: bool) -> str:
    extra: list[str] = []
    attrs: dict[str, str] = {}
    h = scaled_height(block.output_shape, geo.low, geo.high)
    x0, y0 = cx - geo.block / 2, axis - h / 2
    if status == REMOVED:
        attrs["opacity"] = ".4"
        extra.append(_el("path", d=f"M{num(x0)} {num(y0 + h)}L{num(x0 + geo.block)} {num(y0)}", stroke="#000000",
                         stroke_width=geo.border * 1.5))
    elif is_child and status in (ADDED, CHANGED):
        o = geo.border * 1.5
        extra.append(_el("rect", x=x0 - o, y=y0 - o, width=geo.block + 2 * o, height=h + 2 * o, fill="none",
                         stroke="#000000", stroke_width=geo.border * 1.5))
    title = f"{status}: {block.describe()}" if geo.titles else None
    return draw_block(block.kind, block.style, block.output_shape, cx, axis, geo, title, extra=extra,
                      data_status=status, data_side="child" if is_child else "parent", **attrs)


def _mark(status: str, mark: str, cx: float, baseline: float, font: float, geo: ChipSize) -> str:
    if geo.letter_font:
        return _text(cx, baseline, mark, font, text_anchor="middle", font_weight="bold", fill="#000000",
                     class_="mark", data_status=status)
    # micro: no room for a character; a tick says "something happened here", the band and outline say what
    return _el("rect", x=cx - geo.block / 2, y=baseline - 2, width=geo.block, height=1.5, fill="#000000",
               class_="mark", data_status=status)


# --- legend ----------------------------------------------------------------------------------------

LEGEND_FONT = 10
# The legend draws its keys at one size, whatever the chip's size.
_KEY = ChipSize("legend", column=18, block=12, low=3, high=16, pad=0, letter_font=0, glyph_stroke=1.2, border=1)


def _legend(kinds: Sequence[str], unknown: bool, left: float, top: float, max_width: float, geo: ChipSize,
            statuses: bool = False) -> tuple[list[str], float, float]:
    """Legend entries flowed into rows from (left, top), then the height scale of `geo`.

    Returns the elements, the width they need (with `left` on both sides) and the height below `top`.
    """
    f = LEGEND_FONT
    row_h = _KEY.high + 6
    mid = row_h / 2
    entries: list[tuple[float, list[str]]] = []  # (width, elements drawn from x=0, y=0)
    present = set(kinds)
    ordered = [k for k in LAYER_TYPES if k in present] + sorted(present - set(LAYER_TYPES))
    for kind in ordered:
        ltype = LAYER_TYPES.get(kind)
        style = ltype.snac if ltype else UNKNOWN_STYLE
        label = f"{style.symbol} {kind}" + (" (dotted border)" if style.dotted else "")
        key = draw_block(kind, style, (HEIGHT_CEILING_ELEMENTS,), _KEY.block / 2, mid, _KEY, None, css="legend-key")
        entries.append((_KEY.block + 6 + _text_width(label, f), [key, _text(_KEY.block + 6, mid + f * 0.35, label, f,
                                                                           fill=INK)]))
    if unknown:
        key = draw_block(None, UNKNOWN_STYLE, None, _KEY.block / 2, mid, _KEY, None, css="legend-key")
        entries.append((_KEY.block + 6 + _text_width("shape unknown", f),
                        [key, _text(_KEY.block + 6, mid + f * 0.35, "shape unknown", f, fill=INK)]))
    if statuses:
        for status in (CHANGED, REMOVED, ADDED):
            label = f"{MARKS[status]} {status}"
            entries.append((_text_width(label, f), [_text(0, mid + f * 0.35, label, f, fill=INK, font_weight="bold")]))
    items: list[str] = []
    x = y = used = 0.0
    for w, elements in entries:
        if x > 0 and left + x + w > max_width - left:
            x, y = 0.0, y + row_h
        items.append(_el("g", "".join(elements), transform=f"translate({num(left + x)} {num(top + y)})"))
        used = max(used, x + w)
        x += w + 14
    y += row_h + 4
    scale, scale_w, scale_h = _scale(left, top + y, geo)
    items += scale
    return [_el("g", "".join(items), class_="legend")], max(used, scale_w) + 2 * left, y + scale_h


def _scale(left: float, top: float, geo: ChipSize) -> tuple[list[str], float, float]:
    """Sample blocks at 1, 100, 10k elements and the ceiling, on the chip's own scale."""
    f = LEGEND_FONT
    samples = (1, 100, 10_000, HEIGHT_CEILING_ELEMENTS)
    axis = top + geo.high / 2
    pitch = max(geo.column, 30)
    items: list[str] = []
    x = left + pitch / 2
    for n in samples:
        h = scaled_height((n,), geo.low, geo.high)
        items.append(_el("rect", x=x - geo.block / 2, y=axis - h / 2, width=geo.block, height=h, fill="#BBBBBB"))
        items.append(_text(x, top + geo.high + f + 2, si_number(n), f * 0.9, text_anchor="middle", fill=MUTED))
        x += pitch
    note = (f"height: elements leaving the layer, log scale 1 to {si_number(HEIGHT_CEILING_ELEMENTS)}, "
            "same in every chip")
    items.append(_text(x - pitch / 2 + 8, axis + f * 0.35, note, f, fill=INK))
    width = x - pitch / 2 + 8 - left + _text_width(note, f)
    return [_el("g", "".join(items), class_="legend-scale")], width, geo.high + f + 6
