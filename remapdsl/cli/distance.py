"""`remap distance FILE MODEL_A MODEL_B`: how far apart two models are (OTMANN: raw 'lp' and normalised 'emd').

Also holds what `remap neighbours` and `remap layout` share: reading a file's models into OTMANN
profiles, and the spaces they accept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

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
    parser.add_argument("--store", metavar="PATH",
                        help="the store with trained runs, for --space predictions (default: .remap/remap.db "
                             "beside FILE)")


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


def trained_predictions(path: Path, names: list[str], store_arg: str | None) -> dict[str, np.ndarray]:
    """Validation predictions of each named model's finished run on the file's data set.

    All runs must share the data set and its split, so that example i is the same image for every model;
    runs with the file's training settings are preferred, other finished runs on the same data are used
    otherwise. A model without such a run is a usage error naming it.
    """
    from remapdsl.cli.train import dataset_of, open_store, settings_of, store_path
    from remapdsl.queue import describe_models
    from remapdsl.results import pick_run
    from remapdsl.store import FINISHED

    document, _ = read_document(path)
    folder = path.resolve().parent
    data = dataset_of(document, folder)
    settings_key = settings_of(document, None).key()
    described = {m.name: m for m, _ in describe_models(document, names, base_dir=folder)}
    location = store_path(argparse.Namespace(store=store_arg), path)
    out: dict[str, np.ndarray] = {}
    missing: list[str] = []
    with open_store(location, must_exist=True) as store:
        for name in names:
            run = pick_run(store, described[name].hash, data.key, settings_key)
            if run is None or run.status not in FINISHED:
                run = next((r for r in store.runs(described[name].hash)
                            if r.data_key == data.key and r.status in FINISHED), None)
            predictions = store.predictions(run.id) if run is not None else None
            if predictions is None:
                missing.append(name)
            else:
                out[name] = predictions
    if missing:
        raise UsageError(f"no finished run on this data for {', '.join(missing)} in {location}: the predictions "
                         "space compares validation predictions of trained models; train them first "
                         f"(`remap train {path}`), or use --space structural")
    return out


def prediction_row(target: str, others: list[str], predictions: dict[str, np.ndarray]) -> np.ndarray:
    from remapdsl.prediction_distance import PredictionError, prediction_distances_to

    try:
        return prediction_distances_to(predictions[target], [predictions[o] for o in others])
    except PredictionError as e:
        raise UsageError(str(e)) from None


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
    profiles, problems = file_profiles(args.file)
    for name in (args.model_a, args.model_b):
        require_model(args.file, name, profiles, problems)
    if args.space == "predictions":
        predictions = trained_predictions(args.file, [args.model_a, args.model_b], args.store)
        distance = float(prediction_row(args.model_a, [args.model_b], predictions)[0])
        if args.json:
            print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "distance": distance}))
        else:
            print(f"{args.model_a} - {args.model_b}: predictions differ on {distance:.2%} of the validation set")
        return 0
    d = otmann.distance(profiles[args.model_a], profiles[args.model_b])
    if args.json:
        print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "lp": d.lp, "emd": d.emd}))
    else:
        print(f"{args.model_a} - {args.model_b}: OTMANN lp {d.lp:.6g}, emd {d.emd:.6g}")
    return 0
