"""Editor texts for search spaces: the hover of a space line and of a choice. Pure."""

from __future__ import annotations

from remapdsl.language.model import Choice, Document, SpaceSpec
from remapdsl.language.printer import layer_text
from remapdsl.language.spaces import SpaceInfo, show_count

# A choice's hover lists this many alternatives, then says how many more there are.
SHOWN_OPTIONS = 12


def space_hover(info: SpaceInfo) -> str:
    """The size of the space, how many of its paths are valid, their parameter range, the budget's cut."""
    space = info.space
    choices = sum(1 for p in space.positions if isinstance(p, Choice))
    lines = [f"**space {space.name}** — {len(space.positions)} positions, {choices} of them choices",
             f"{show_count(info.size)} paths"]
    if info.valid is None:
        lines.append("which paths are valid models is known once the data line names a data set and every option "
                     "reads (see the problems list)")
    else:
        lines.append(f"{show_count(info.valid)} valid models" + (
            f" ({show_count(info.size - info.valid)} invalid)" if info.valid != info.size else ""))
    if info.min_params is not None and info.max_params is not None:
        lines.append(f"{info.min_params:,} to {info.max_params:,} parameters")
    if info.within_budget is not None and info.valid is not None:
        if info.budget_exact:
            lines.append(f"{show_count(info.within_budget)} within the parameter budget, "
                         f"{show_count(info.valid - info.within_budget)} over it and left out")
        else:
            assert info.within_budget_high is not None
            lines.append(f"{show_count(info.within_budget)} to {show_count(info.within_budget_high)} within the "
                         "parameter budget (too many distinct sizes to count exactly)")
    return "\n\n".join(lines)


def choice_hover(space: SpaceSpec, index: int) -> str:
    """A choice's alternatives and the share of the space's paths each takes."""
    options = space.options(index)
    shown = [f"`{layer_text(o)}`" for o in options[:SHOWN_OPTIONS]]
    more = f" and {len(options) - SHOWN_OPTIONS:,} more" if len(options) > SHOWN_OPTIONS else ""
    return (f"**choice** — position {index + 1} of `{space.name}`, {len(options)} alternatives, each on "
            f"1/{len(options)} of the paths\n\n" + " · ".join(shown) + more)


def space_folding_ranges(document: Document) -> list[tuple[int, int]]:
    """(first line, last line) of every space and every `choice:` that spans more than its own line."""
    out = []
    for space in document.spaces:
        if space.range.end.line > space.range.start.line:
            out.append((space.range.start.line, space.range.end.line))
        out += [(p.range.start.line, p.range.end.line) for p in space.positions
                if isinstance(p, Choice) and p.range.end.line > p.range.start.line]
    return out


def position_label(space: SpaceSpec, index: int) -> str:
    """A position as the outline lists it: its layer, or its alternatives."""
    position = space.positions[index]
    if not isinstance(position, Choice):
        return f"{index} {layer_text(position)}"
    options = space.options(index)
    shown = " | ".join(layer_text(o) for o in options[:4]) + (" | …" if len(options) > 4 else "")
    return f"{index} choice of {len(options)}: {shown}"


def in_space(document: Document, line: int) -> bool:
    """Whether `line` is read as part of a space: the last space or model line at or above it is a space's."""
    starts = [(s.range.start.line, True) for s in document.spaces]
    starts += [(m.range.start.line, False) for m in document.models]
    above = [start for start in starts if start[0] <= line]
    return max(above)[1] if above else False
