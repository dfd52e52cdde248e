"""`remap distance FILE MODEL_A MODEL_B`: how far apart two models are (OTMANN: raw 'lp' and normalised 'emd').

Also holds what `remap neighbours` and `remap layout` share: the space and store options, reading a file's
models into the members of a space, and opening the model space over the store, whose cached distances
are used when it exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from remapdsl.cli import UsageError
from remapdsl.language.analysis import did_you_mean
from remapdsl.language.diagnostics import Diagnostic, Severity
from remapdsl.language.model import Document, ModelSpec
from remapdsl.space.model_space import Members, ModelSpace, RunPredictions, check_measure
from remapdsl.store.db import Store

SPACES = ("structural", "predictions")
MEASURES = ("emd", "lp")
READ_STORE_HELP = ("the store whose cached distances are used and, for --space predictions, whose trained runs "
                   "are compared (default: .remap/remap.db beside FILE); never created")


def add_space_option(parser: argparse.ArgumentParser, store_help: str = READ_STORE_HELP) -> None:
    parser.add_argument("--space", choices=SPACES, default="structural",
                        help="structural: OTMANN between architectures (no training needed); "
                             "predictions: disagreement of trained models on the validation set")
    parser.add_argument("--store", metavar="PATH", help=store_help)


def add_measure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measure", choices=MEASURES,
                        help="structural distance: normalised 'emd' (default) or raw transport cost 'lp' "
                             "(REMAP's); the predictions space has one distance, the share of predictions that differ")


def measure_of(args: argparse.Namespace) -> str:
    """The measure asked for, or the space's own ('emd' for structural, 'hamming' for predictions)."""
    try:
        return check_measure(args.space, args.measure)
    except ValueError:
        raise UsageError(f"--measure {args.measure} is a structural distance; the predictions space compares "
                         "predictions, with one distance") from None


def number(x: float) -> float:
    """A float for JSON: -0.0 (a layout's coordinate, a solver's zero) becomes 0.0."""
    return float(x) + 0.0


def read_document(path: Path) -> tuple[Document, list[Diagnostic]]:
    from remapdsl.language.parser import parse

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


def file_models(path: Path) -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """The models of FILE by name, and why each model left out cannot be compared as written."""
    document, diagnostics = read_document(path)
    broken = _broken_models(document, diagnostics)
    models: dict[str, ModelSpec] = {}
    problems: dict[str, str] = {}
    for model in document.models:
        if model.name in models or model.name in problems:
            models.pop(model.name, None)
            problems.setdefault(model.name, f"model '{model.name}' is defined more than once")
        elif model.name in broken:
            d = broken[model.name]
            problems[model.name] = f"{path}:{d.range}: {d.message}"
        else:
            models[model.name] = model
    return models, problems


def require_model(path: Path, name: str, known: Mapping[str, object], problems: Mapping[str, str]) -> None:
    if name in problems:
        raise UsageError(f"cannot compare '{name}': {problems[name]}")
    if name not in known:
        names = [*known, *problems]
        listing = f"; models: {', '.join(names)}" if names else "; it defines no models"
        raise UsageError(f"{path} has no model '{name}'{did_you_mean(name, names)}{listing}")


def warn_skipped(problems: Mapping[str, str]) -> None:
    for name, reason in problems.items():
        print(f"note: left out '{name}': {reason}", file=sys.stderr)


@contextmanager
def open_space(args: argparse.Namespace, *, create: bool = False) -> Iterator[tuple[ModelSpace, Store | None]]:
    """The model space over FILE's store (--store, or .remap/remap.db beside FILE) and the store itself.

    With `create` (a layout is something recorded) the store is made if missing. Otherwise an existing one
    is used for its cached distances, and without one the distances live in memory; the predictions space
    needs the store's runs, so there a missing store is an error.
    """
    from remapdsl.cli.train import open_store, store_path

    location = store_path(args, args.file)
    if create or args.space == "predictions":
        store: Store | None = open_store(location, must_exist=not create)
    else:
        store = open_store(location) if location.is_file() else None
    try:
        yield ModelSpace(store, workers=getattr(args, "workers", 2)), store
    finally:
        if store is not None:
            store.close()


def file_members(args: argparse.Namespace, space: ModelSpace, store: Store | None, models: Mapping[str, ModelSpec],
                 problems: Mapping[str, str], names: Sequence[str] | None = None) -> Members:
    """FILE's models (or those of `names`) as members of the space asked for; those left out say why."""
    chosen = {n: models[n] for n in names} if names is not None else dict(models)
    if args.space == "predictions":
        assert store is not None  # open_space insists on one for this space
        members = space.predictions(trained_predictions(args.file, list(chosen), store))
    else:
        members = space.structural(chosen)
    return Members(members.space, members.keys, {**problems, **members.problems})


def trained_predictions(path: Path, names: list[str], store: Store) -> dict[str, RunPredictions]:
    """The run standing for each named model in the predictions space: its finished run on the file's data.

    All runs must share the data set and its split, so that example i is the same image for every model;
    runs with the file's training settings are preferred, other finished runs on the same data are used
    otherwise. A model without such a run is a usage error naming it. Distances between runs are cached
    by run id.
    """
    from remapdsl.cli.train import dataset_of, settings_of
    from remapdsl.store.db import FINISHED
    from remapdsl.store.queue import describe_models
    from remapdsl.store.results import pick_run

    document, _ = read_document(path)
    folder = path.resolve().parent
    data = dataset_of(document, folder)
    settings_key = settings_of(document, None).key()
    described = {m.name: m for m, _ in describe_models(document, names, base_dir=folder)}
    out: dict[str, RunPredictions] = {}
    missing: list[str] = []
    for name in names:
        run = pick_run(store, described[name].hash, data.key, settings_key)
        if run is None or run.status not in FINISHED:
            run = next((r for r in store.runs(described[name].hash)
                        if r.data_key == data.key and r.status in FINISHED), None)
        predictions = store.predictions(run.id) if run is not None else None
        if run is None or predictions is None:
            missing.append(name)
        else:
            out[name] = RunPredictions(run.id, predictions)
    if missing:
        raise UsageError(f"no finished run on this data for {', '.join(missing)} in {store.path}: the predictions "
                         "space compares validation predictions of trained models; train them first "
                         f"(`remap train {path}`), or use --space structural")
    return out


@contextmanager
def comparable() -> Iterator[None]:
    """Predictions that cannot be compared (other lengths) are bad input, said as such."""
    from remapdsl.space.prediction_distance import PredictionError

    try:
        yield
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
    models, problems = file_models(args.file)
    pair = [args.model_a, args.model_b]
    for name in pair:
        require_model(args.file, name, models, problems)
    with open_space(args) as (space, store):
        members = file_members(args, space, store, models, problems, names=list(dict.fromkeys(pair)))
        for name in pair:
            require_model(args.file, name, members.keys, members.problems)
        with comparable():
            d = space.pair(members, args.model_a, args.model_b)
    if args.space == "predictions":
        if args.json:
            print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "distance": number(d.value)}))
        else:
            print(f"{args.model_a} - {args.model_b}: predictions differ on {d.value:.2%} of the validation set")
        return 0
    assert d.lp is not None  # a structural distance always carries the raw transport cost
    lp = d.lp
    if args.json:
        print(json.dumps({"space": args.space, "a": args.model_a, "b": args.model_b, "lp": number(lp),
                          "emd": number(d.value)}))
    else:
        print(f"{args.model_a} - {args.model_b}: OTMANN lp {number(lp):.6g}, emd {number(d.value):.6g}")
    return 0
