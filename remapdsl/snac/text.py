"""SNAC chips as Unicode text, for terminals and for editors that show no images.

One column per layer: a bar whose height follows the global log scale of `remapdsl.snac.geometry` (eighth blocks,
`rows` lines tall), and under it the layer type's letter. Dropout bars are shaded (the SVG's dotted
border), bars of unknown size are hatched and topped with a question mark. With `ansi`, bars and letters
take the layer type's colour (24-bit escape codes).

    deeper  1x8x8 → 10, 85,066 parameters, 2.54M FLOPs
    ▂ ▂ ▃ ▃ ▁ ░ ▁
    █ █ █ █ █ ░ █ ▆ ▆ ▃
    C R C R M O F D R D

A residual block is an arc in the lines above the bars, from the gap before its first layer (╭) to the
addition (⊕) in the gap after its last; a projection shortcut draws it double (═), and outer arcs of nested
blocks stand higher:

    res_small  1x8x8 → 10, 7,402 parameters, 620k FLOPs
       ╭───────╮
       │       ⊕
    ▁ ▁ ▁ ▁ ▁ ▁ ▁
    █ █ █ █ █ █ █ ▇ ▇ ▃
    C R C B R C R M F D
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from remapdsl.language.analysis import ModelInfo
from remapdsl.snac.diff import SAME, SnacDiff
from remapdsl.snac.geometry import (
    NEUTRAL_FRACTION,
    SnacBlock,
    blocks_of,
    group_runs,
    height_fraction,
    model_summary,
    plain_runs,
)
from remapdsl.snac.skips import ADDED_BLOCK, REMOVED_BLOCK, Skip, skips_of

EIGHTHS = " ▁▂▃▄▅▆▇█"
SHADE = "░"
HATCH = "▒"
RESET = "\x1b[0m"


@dataclass(frozen=True)
class _Cell:
    """One column of the chip: a string per line, all of one display width."""

    lines: tuple[str, ...]
    width: int = 1


def bar(block: SnacBlock, rows: int) -> list[str]:
    """The bar of one block, top line first."""
    fraction = height_fraction(block.output_shape)
    level = max(1, round((NEUTRAL_FRACTION if fraction is None else fraction) * rows * 8))
    cells = []
    for r in range(rows - 1, -1, -1):
        fill = min(8, max(0, level - 8 * r))
        if fill == 0:
            cells.append(" ")
        elif fraction is None:
            cells.append(HATCH)
        elif block.style.dotted:
            cells.append(SHADE)
        else:
            cells.append(EIGHTHS[fill])
    if fraction is None:
        top = next(i for i, c in enumerate(cells) if c != " ")
        cells[top] = "?"
    return cells


def _paint(text: str, colour: str | None, ansi: bool) -> str:
    if not ansi or colour is None or text.strip() == "":
        return text
    r, g, b = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    return f"\x1b[38;2;{r};{g};{b}m{text}{RESET}"


def _block_cell(block: SnacBlock | None, rows: int, ansi: bool) -> _Cell:
    if block is None:
        return _Cell((" ",) * (rows + 1))
    colour = block.style.colour
    return _Cell(tuple(_paint(c, colour, ansi) for c in [*bar(block, rows), block.style.symbol]))


def _join(cells: Sequence[_Cell], indent: str = "") -> list[str]:
    height = max((len(c.lines) for c in cells), default=0)
    out = []
    for i in range(height):
        out.append((indent + " ".join(c.lines[i] if i < len(c.lines) else " " * c.width for c in cells)).rstrip())
    return out


def render_text(model: ModelInfo, rows: int = 2, plates: bool = False, ansi: bool = False,
                header: bool = True) -> str:
    """The chip of one model as lines of text; `plates` folds repeats into `[C R]×3`."""
    if rows < 1:
        raise ValueError("a text chip needs at least one row of bars")
    blocks = blocks_of(model)
    skips = skips_of(model)
    cells: list[_Cell] = []
    for run in group_runs(blocks) if plates and not skips else plain_runs(blocks):
        if run.is_plate:
            cells.append(_Cell((" ",) * rows + ("[",)))
        cells += [_block_cell(b, rows, ansi) for b in run.pattern]
        if run.is_plate:
            label = f"]×{run.repeat}"
            cells.append(_Cell((" " * len(label),) * rows + (label,), len(label)))
    lines = _join(cells)
    if skips:
        arcs, shift = arc_lines(skips, len(blocks))
        lines = [line.rstrip() for line in arcs] + [shift + line for line in lines]
    if header:
        lines.insert(0, f"{model.model.name}  {model_summary(model)}")
    return "\n".join(lines) + "\n"


def arc_lines(skips: Sequence[Skip], columns: int) -> tuple[list[str], str]:
    """The lines above the bars that draw the skips, highest level first, and the indent the chip's own
    lines take (one space when a block starts at the first layer, whose gap lies left of the chip).

    Layer i's column is character 2i of a chip line; the gap before it 2i - 1. An added block's arc is drawn
    bold (━), a removed one's dotted (┈)."""
    shift = 1 if any(s.start == 0 for s in skips) else 0
    width = 2 * columns + 1 + shift
    top = max(s.level for s in skips)
    out = []
    for level in range(top, 0, -1):
        row = [" "] * width
        for s in skips:
            xs, xe = 2 * s.start - 1 + shift, 2 * s.stop - 1 + shift
            if s.level > level:  # an outer arc's legs pass this line
                for x in (xs, xe):
                    if row[x] == " ":
                        row[x] = "│"
            elif s.level == level:
                line = "━" if s.status == ADDED_BLOCK else "┈" if s.status == REMOVED_BLOCK else \
                    "═" if s.projected else "─"
                # a block that starts where the one before it ends takes its ⊕ as its input: one junction
                row[xs] = "┬" if row[xs] in "╮┬" else "╭"
                for x in range(xs + 1, xe):
                    row[x] = line
                row[xe] = "┬" if row[xe] in "╭┬" else "╮"
        out.append("".join(row))
    # the addition, under the arc's end, on the line that the inner arcs leave free
    row = [" "] * width
    for s in skips:
        xs, xe = 2 * s.start - 1 + shift, 2 * s.stop - 1 + shift
        row[xs] = "│" if row[xs] == " " else row[xs]
        row[xe] = "⊕"
    out.append("".join(row))
    return out, " " * shift


def render_diff_text(diff: SnacDiff, rows: int = 1, ansi: bool = False) -> str:
    """Parent and child chips aligned column by column, a line of marks between them, then the changes."""
    parent, child = diff.parent.model.name, diff.child.model.name
    width = max(len(parent), len(child)) + 2
    p_cells = [_block_cell(r.parent, rows, ansi) for r in diff.rows]
    c_cells = [_block_cell(r.child, rows, ansi) for r in diff.rows]
    marks = [_Cell((r.mark or " ",)) for r in diff.rows]
    lines = [f"{parent} → {child}: {diff.summary()}"]
    for name, cells, skips in ((parent, p_cells, diff.parent_skips), (child, c_cells, diff.child_skips)):
        if skips:
            arcs, shift = arc_lines(skips, len(diff.rows))
            lines += [" " * (width - len(shift)) + arc for arc in arcs]
        block_lines = _join(cells)
        lines += [(name if i == 0 else "").ljust(width) + line for i, line in enumerate(block_lines)]
        if cells is p_cells:
            lines.append(" " * width + _join(marks)[0] if any(r.mark for r in diff.rows) else "")
    lines = [line.rstrip() for line in lines]
    lines += [r.describe() for r in diff.rows if r.status != SAME]
    lines += diff.block_changes()
    return "\n".join(lines) + "\n"
