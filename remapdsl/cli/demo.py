"""`remap demo`: the main job on the bundled digits data, end to end.

Samples a population of models with the Markov chain, writes them to `demo.remap` in a work folder,
trains them with a progress bar per model and epoch, prints the Pareto front (accuracy against
parameters) and the results table, and serves the model overview on the population (`remap serve`)
until stopped; `--no-serve` ends after the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from remapdsl.cli.options import (
    DEFAULT_JOBS,
    MAX_DEMO_MODELS,
    MAX_EPOCHS,
    MAX_PROCESSES,
    UsageError,
    add_no_onnx_option,
    add_serve_options,
    check_count,
    executor_options,
    positive_int,
    runs_on,
    worker_options,
)
from remapdsl.cli.workspace import (
    check_serving,
    open_store,
    print_results,
    read_models,
    report_plan,
    serve_file,
    train_jobs,
)
from remapdsl.jobs.enqueue import Plan, queue_document
from remapdsl.store.db import Store

DEFAULT_MODELS = 20
# small enough that the demo ends in about a minute on two cores
DEFAULT_EPOCHS = 5
DEMO_FILE = "demo.remap"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("demo", help="sample, train and compare models on the bundled digits data",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--dir", type=Path, default=Path("remap-demo"), metavar="DIR",
                   help="work folder for demo.remap and its store (default ./remap-demo)")
    p.add_argument("--models", type=positive_int, default=DEFAULT_MODELS, metavar="N",
                   help=f"models to sample, 1 to {MAX_DEMO_MODELS:,} (default {DEFAULT_MODELS})")
    p.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS, metavar="N",
                   help=f"epochs per model, 1 to {MAX_EPOCHS:,} (default {DEFAULT_EPOCHS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--jobs", "-j", type=positive_int, default=DEFAULT_JOBS, metavar="N",
                   help=f"worker processes, 1 to {MAX_PROCESSES} (default {DEFAULT_JOBS})")
    p.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda or cuda:N")
    add_no_onnx_option(p)
    p.add_argument("--no-serve", dest="serve", action="store_false",
                   help="end after the results table instead of serving the overview (for scripts and CI)")
    add_serve_options(p)
    p.set_defaults(run=run)


def demo_text(models: int, epochs: int, seed: int) -> str:
    """The text of demo.remap: the digits header and `models` sampled architectures."""
    from dataclasses import replace

    from remapdsl.language.datasets import describe
    from remapdsl.language.model import Arg, DataSpec, Document, TrainSpec
    from remapdsl.language.printer import format_document
    from remapdsl.search.sampler import sample_models

    data = DataSpec("digits")
    document = Document(data=data,
                        train=TrainSpec((Arg("epochs", epochs), Arg("batch", 64), Arg("lr", 0.002),
                                         Arg("optimizer", "adam"), Arg("seed", seed))))
    sampled = sample_models(models, describe(data), seed)
    return format_document(replace(document, models=tuple(sampled)))


def run(args: argparse.Namespace) -> int:
    check_count("--models", args.models, 1, MAX_DEMO_MODELS)
    check_count("--epochs", args.epochs, 1, MAX_EPOCHS)
    check_count("--jobs", args.jobs, 1, MAX_PROCESSES)
    executor = executor_options(args)
    if args.serve:  # before an hour of training, not after
        check_serving(None, args)
    folder: Path = args.dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / DEMO_FILE
        path.write_text(demo_text(args.models, args.epochs, args.seed), encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the demo into {folder}: {e.strerror or e}") from None
    print(f"sampled {args.models} models into {path}", flush=True)
    checked = read_models(path, None)
    with open_store(folder / ".remap" / "remap.db") as store:
        plan = queue_document(store, checked, epochs=None, device=args.device, force=False, origin="sampled",
                              runs_on=runs_on(executor))
        todo = report_plan(plan, sys.stdout)
        if todo:
            train_jobs(store.path, todo, jobs=args.jobs, out=sys.stdout,
                       options=worker_options(args.device, args.onnx), executor=executor)
        _print_front(store, plan)
        print("\nresults:")
        print_results(store, plan, sys.stdout)
    if not args.serve:
        print(f"\nnext: open {path}, or `remap serve {path}`; the store is {store.path}")
        return 0
    print(f"\nthe store is {store.path}; serving the overview (Ctrl-C stops it)", flush=True)
    return serve_file(path, store.path, args)


def _print_front(store: Store, plan: Plan) -> None:
    from remapdsl.store.results import pareto_rows, result_rows

    rows = result_rows(store, plan.registered, data_key=plan.data.key, settings_key=plan.settings.key(),
                       epochs=plan.settings.epochs, n_train=len(plan.data.y_train), device=plan.device,
                       batch=plan.settings.batch)
    front = pareto_rows(rows)
    print("\nPareto front (validation accuracy against parameters):")
    for r in front:
        print(f"  {r.model:<24} {r.params:>9,} params  {100 * (r.val_acc or 0):5.1f}%")
