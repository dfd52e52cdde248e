"""`remap results FILE`: the results table of a file's models (the REMAP paper's Fig. 7)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from remapdsl.cli.options import add_store_option, device_of, positive_int
from remapdsl.cli.workspace import read_models, read_store, report_skipped, store_path
from remapdsl.jobs.enqueue import load_document_data, settings_of
from remapdsl.store.queue import describe_models
from remapdsl.store.results import format_table, pareto_rows, result_rows, rows_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("results", help="results table of a file's models",
                              description="Per model: origin, changes, parameters and their change against the "
                                          "parent, validation accuracy and its change, estimated and actual "
                                          "training time. Models with errors are left out and listed.")
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("--model", "-m", action="append", metavar="M", help="only this model (repeat for more)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="the epochs the models were trained with, "
                                                                    "if not the file's")
    p.add_argument("--device", default="auto", metavar="D", help="device the time estimates are for")
    p.add_argument("--pareto", action="store_true", help="only the models on the Pareto front")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    checked = read_models(args.file, args.model)
    report_skipped(checked, sys.stderr)
    device = device_of(args.device)
    settings = settings_of(checked.document, args.epochs)
    data = load_document_data(checked.document, checked.path.resolve().parent)
    with read_store(store_path(args, args.file)) as store:
        models = [m for m, _ in describe_models(checked.document, checked.names,
                                                   base_dir=checked.path.resolve().parent)]
        rows = result_rows(store, models, data_key=data.key, settings_key=settings.key(), epochs=settings.epochs,
                           n_train=len(data.y_train), device=device, batch=settings.batch)
    if args.pareto:
        rows = pareto_rows(rows)
    if args.json:
        json.dump(rows_json(rows), sys.stdout, indent=2)
        print()
    else:
        print(format_table(rows))
    return 0
