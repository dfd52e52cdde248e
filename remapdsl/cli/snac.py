"""`remap snac FILE MODEL`: draw a model's SNAC chip (SVG, PNG or text), or its diff against a parent."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from remapdsl.cli.options import UsageError, use_colour
from remapdsl.cli.workspace import Loaded, pick_model, print_errors, read_analysis
from remapdsl.language.analysis import Analysis
from remapdsl.snac.diff import diff_models
from remapdsl.snac.svg import SIZE_NAMES, render_diff_svg, render_svg
from remapdsl.snac.text import render_diff_text, render_text

FORMATS = ("svg", "png", "text")
SUFFIXES = {".svg": "svg", ".png": "png", ".txt": "text"}
# PNGs are drawn at twice the SVG's size, so that they stay sharp on high-density screens.
PNG_SCALE = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "snac", help="draw a model's SNAC chip as SVG, PNG or text, or its diff against a parent",
        description=__doc__ + " The chip is drawn even when the model has errors (blocks of unknown size are "
        "hatched); the errors are printed and the exit status is 1.")
    p.add_argument("file", type=Path, metavar="FILE", help="the .remap file")
    p.add_argument("model", metavar="MODEL", help="name of the model in FILE")
    p.add_argument("-o", "--output", type=Path,
                   help="where to write (.svg, .png or .txt; default: SVG or text on standard output)")
    p.add_argument("--size", choices=SIZE_NAMES, default="full",
                   help="full (labels), compact, mini (hovers) or micro (sparkline); default full")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from the suffix of -o, else svg)")
    p.add_argument("--diff", nargs="?", const="", metavar="PARENT",
                   help="align with PARENT and mark removed, added and changed layers "
                        "(without a name: the model's `from` parent)")
    p.add_argument("--plates", action="store_true", help="fold repeated runs of layers into plates")
    p.add_argument("--legend", action="store_true", help="explain colours, letters and heights under the chip")
    p.add_argument("--rows", type=int, default=2, help="text format: height of the bars in lines (default 2)")
    p.add_argument("--colour", "--color", choices=("auto", "always", "never"), default="auto",
                   help="text format on standard output: colour the chip (default auto)")
    p.set_defaults(run=run)


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output is None:
        return "svg"
    if args.output.is_dir():
        raise UsageError(f"cannot write {args.output}: it is a folder; give a file name such as "
                         f"{args.output / 'model.svg'}")
    fmt = SUFFIXES.get(args.output.suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the format of {args.output} from its suffix; "
                         f"use .svg, .png or .txt, or give --format")
    return fmt


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args)
    if args.rows < 1:
        raise UsageError(f"--rows must be at least 1; found {args.rows}")
    if fmt == "png" and args.output is None:
        raise UsageError("PNG output needs a file: add -o NAME.png")
    analysis = read_analysis(args.file)
    child = pick_model(args.file, analysis, args.model)
    parent = _parent(args, analysis, child)
    to_terminal = args.output is None
    if fmt == "text":
        ansi = to_terminal and use_colour(args.colour)
        if parent is None:
            content = render_text(child.info, rows=args.rows, plates=args.plates, ansi=ansi)
        else:
            content = render_diff_text(diff_models(parent.info, child.info), rows=args.rows, ansi=ansi)
    elif parent is None:
        content = render_svg(child.info, args.size, plates=args.plates, legend=args.legend)
    else:
        content = render_diff_svg(diff_models(parent.info, child.info), args.size, legend=args.legend)
    if to_terminal:
        print(content, end="")
    else:
        data = svg_to_png(content) if fmt == "png" else content.encode("utf-8")
        _write(args.output, data)
        print(f"wrote {args.output} ({len(data):,} bytes)", file=sys.stderr)
    broken = [m for m in (parent, child) if m is not None and m.errors]
    for m in broken:
        print_errors(m)
    if broken:
        names = " and ".join(f"'{m.info.model.name}'" for m in broken)
        print(f"model {names} {'has' if len(broken) == 1 else 'have'} errors (above); "
              "blocks whose size is unknown are hatched", file=sys.stderr)
        return 1
    return 0


def _parent(args: argparse.Namespace, analysis: Analysis, child: Loaded) -> Loaded | None:
    if args.diff is None:
        return None
    model = child.info.model
    name = args.diff or (None if model.parent_space else model.parent)
    if not name:
        raise UsageError(f"model '{child.info.model.name}' has no parent (no `from` in {args.file}); "
                         "name the model to compare with: --diff PARENT")
    return pick_model(args.file, analysis, name)


def svg_to_png(svg: str) -> bytes:
    """The SVG rasterised by cairosvg (optional: `pip install cairosvg`, which needs the cairo library)."""
    try:
        import cairosvg
    except (ImportError, OSError) as e:
        raise UsageError(f"PNG output needs cairosvg and the cairo library ({e}); install it with "
                         "`pip install cairosvg`, or write .svg instead") from None
    png: bytes = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=PNG_SCALE)
    return png


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
