"""`remap distance FILE MODEL_A MODEL_B`: how far apart two models are (OTMANN: raw 'lp' and normalised 'emd').

Also holds what `remap neighbours` and `remap layout` share: reading a file's models into OTMANN
profiles, and the spaces they accept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from remapdsl import otmann
from remapdsl.analysis import did_you_mean
from remapdsl.cli import UsageError
from remapdsl.diagnostics import Diagnostic, Severity
from remapdsl.model import Document

SPACES = ("structural", "predictions")
MEASURES = ("emd", "lp")


def add_space_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", choices=SPACES, default="structural",
                        help="structural: OTMANN between architectures (no training needed); "
                             "predictions: disagreement of trained models on the validation set")


def read_document(path: Path) -> tuple[Document, list[Diagnostic]]:
    from remapdsl.parser import parse

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"cannot read {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    result = parse(text)
    return result.document, list(result.diagnostics)


def _broken_models(document: Document, diagnostics: list[Diagnostic]) -> dict[str, Diagnostic]:
    """Models with a syntax error among their lines: the parser dropped the broken layer, so their
    structure as parsed is not the one written."""
    starts = sorted((m.range.start.line, m.name) for m in document.models)
    broken: dict[str, Diagnostic] = {}
    for d in diagnostics:
        if d.severity != Severity.ERROR:
            continue
        owner = d.model
        if owner is None:
            before = [name for line, name in starts if line <= d.range.start.line]
            owner = before[-1] if before else None
        if owner is not None:
            broken.setdefault(owner, d)
    return broken


def file_profiles(path: Path) -> tuple[dict[str, otmann.OtmannProfile], dict[str, str]]:
    """OTMANN profiles of the models of FILE, and why each model left out could not be profiled."""
    document, diagnostics = read_document(path)
    broken = _broken_models(document, diagnostics)
    profiles: dict[str, otmann.OtmannProfile] = {}
    problems: dict[str, str] = {}
    for model in document.models:
        if model.name in profiles or model.name in problems:
            problems.setdefault(model.name, f"model '{model.name}' is defined more than once")
            continue
        if model.name in broken:
            d = broken[model.name]
            problems[model.name] = f"{path}:{d.range}: {d.message}"
            continue
        try:
            profiles[model.name] = otmann.profile(model)
        except otmann.OtmannError as e:
            problems[model.name] = str(e)
    return profiles, problems


def require_model(path: Path, name: str, profiles: dict[str, otmann.OtmannProfile], problems: dict[str, str]) -> None:
    if name in problems:
        raise UsageError(f"cannot compare '{name}': {problems[name]}")
    if name not in profiles:
        names = [*profiles, *problems]
        listing = f"; models: {', '.join(names)}" if names else "; it defines no models"
        raise UsageError(f"{path} has no model '{name}'{did_you_mean(name, names)}{listing}")


def warn_skipped(problems: dict[str, str]) -> None:
    for name, reason in problems.items():
        print(f"note: left out '{name}': {reason}", file=sys.stderr)


def require_trained_runs(path: Path, names: list[str]) -> None:
    """The predictions space compares validation predictions of trained runs, kept in the store."""
    store = path.resolve().parent / ".remap"
    raise UsageError(f"no trained runs found for {', '.join(names)}: the predictions space compares the "
                     f"validation predictions of trained models, and {store} holds none that this command "
                     "can read; train the models first, or use --space structural")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("distance", help="distance between two models of a file",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    add_space_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.space == "predictions":
        require_trained_runs(args.file, [args.model_a, args.model_b])
    profiles, problems = file_profiles(args.file)
    for name in (args.model_a, args.model_b):
        require_model(args.file, name, profiles, problems)
    d = otmann.distance(profiles[args.model_a], profiles[args.model_b])
    if args.json:
        print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "lp": d.lp, "emd": d.emd}))
    else:
        print(f"{args.model_a} - {args.model_b}: OTMANN lp {d.lp:.6g}, emd {d.emd:.6g}")
    return 0
