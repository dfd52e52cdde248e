"""`remap show FILE MODEL`: a model's layers, output shapes and parameters under its text SNAC chip."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from remapdsl.cli.options import MAX_ROWS, check_count, use_colour
from remapdsl.cli.workspace import Loaded, pick_model, print_errors, read_analysis
from remapdsl.language.analysis import ModelInfo
from remapdsl.language.catalog import describe_shape
from remapdsl.language.printer import layer_text
from remapdsl.snac.geometry import si_number
from remapdsl.snac.text import render_text


def load_model(path: Path, name: str) -> Loaded:
    """Parse and analyse FILE and pick MODEL; a missing file or an unknown model is a usage error."""
    return pick_model(path, read_analysis(path), name)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("show", help="a model's layers, shapes and parameters, with its SNAC chip",
                              description=__doc__ + " Exit status 1 when the model has errors (printed).")
    p.add_argument("file", type=Path, metavar="FILE", help="the .remap file")
    p.add_argument("model", metavar="MODEL", help="name of the model in FILE")
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.add_argument("--rows", type=int, default=2,
                   help=f"height of the chip's bars in lines, 1 to {MAX_ROWS} (default 2)")
    p.add_argument("--colour", "--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the chip (default auto: on a terminal, unless NO_COLOR is set)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_count("--rows", args.rows, 1, MAX_ROWS)
    loaded = load_model(args.file, args.model)
    if loaded.errors:
        print_errors(loaded)
        print(f"model '{args.model}' has errors (above); fix them to see its shapes and parameters", file=sys.stderr)
        return 1
    info = loaded.info
    if args.json:
        print(json.dumps(summary_json(info, render_text(info, rows=args.rows, header=False)), indent=1))
        return 0
    print(render_text(info, rows=args.rows, ansi=use_colour(args.colour)), end="")
    print()
    print(summary_table(info), end="")
    return 0


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def summary_json(info: ModelInfo, snac: str) -> dict[str, object]:
    total = info.param_count
    return {
        "model": info.model.name,
        "parent": info.model.parent,
        "input_shape": list(info.input_shape or ()),
        "output_shape": list(info.output_shape or ()),
        "param_count": total,
        "flops": info.flops,
        "layers": [
            {
                "index": i,
                "layer": layer_text(replace(li.layer, annotations=())),
                "kind": li.layer.kind,
                "params": dict(li.params),
                "output_shape": list(li.output_shape or ()),
                "param_count": li.param_count,
                "share": round(_share(li.param_count, total), 6),
                "flops": li.flops,
            }
            for i, li in enumerate(info.layers)
        ],
        "blocks": [
            {
                "kind": bi.block.kind,
                "start": bi.block.start,
                "stop": bi.block.stop,
                "shortcut": bi.shortcut.kind if bi.shortcut else None,
                "input_shape": list(bi.input_shape or ()),
                "output_shape": list(bi.output_shape or ()),
                "param_count": bi.param_count,
                "flops": bi.flops,
            }
            for bi in info.blocks
        ],
        "snac": snac,
    }


def summary_table(info: ModelInfo) -> str:
    """A Keras-like table: index, layer, output shape, parameters and their share, then the totals."""
    total = info.param_count
    header = ("#", "layer", "output shape", "parameters", "share")
    rows: list[tuple[str, ...]] = []
    blocks = info.model.blocks
    for i, li in enumerate(info.layers):
        # a layer inside blocks indented as in the text; after a block's last layer, a row for its addition
        rows.append((str(i), "  " * info.model.depth(i) + layer_text(replace(li.layer, annotations=())),
                     describe_shape(li.output_shape) if li.output_shape else "?",
                     f"{li.param_count:,}", f"{100 * _share(li.param_count, total):.1f}%"))
        for b in range(len(blocks) - 1, -1, -1):
            if blocks[b].stop == i + 1 and b < len(info.blocks):
                bi = info.blocks[b]
                kind = bi.shortcut.kind if bi.shortcut else "?"
                outer = sum(1 for c in range(b)
                            if blocks[c].start <= blocks[b].start and blocks[b].stop <= blocks[c].stop)
                label = f"{'  ' * outer}⊕ {bi.block.kind} ({kind} shortcut)"
                rows.append(("", label, describe_shape(bi.output_shape) if bi.output_shape else "?",
                             f"{bi.param_count:,}", f"{100 * _share(bi.param_count, total):.1f}%"))
    input_row = ("", "input", describe_shape(info.input_shape) if info.input_shape else "?", "", "")
    widths = [max(len(r[c]) for r in [header, input_row, *rows]) for c in range(5)]
    right = (True, False, False, True, True)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    rule = "─" * len(line(header))
    out = [line(header), rule, line(input_row), *(line(r) for r in rows), rule]
    out.append(f"total: {total:,} parameters, {info.flops:,} FLOPs ({si_number(info.flops)}) per example")
    return "\n".join(out) + "\n"
