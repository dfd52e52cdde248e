"""`remap train FILE`: queue a file's models and train them here, with a progress bar per model and epoch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from remapdsl.cli.options import (
    DEFAULT_JOBS,
    MAX_PROCESSES,
    add_cuda_graphs_option,
    add_executor_options,
    add_no_onnx_option,
    add_store_option,
    check_count,
    executor_options,
    positive_int,
    runs_on,
    worker_options,
)
from remapdsl.cli.workspace import (
    job_estimates,
    open_store,
    print_results,
    read_models,
    report_plan,
    report_skipped,
    store_path,
    train_jobs,
)
from remapdsl.jobs.enqueue import Checked, queue_document


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("train", help="queue a file's models and train them here",
                              description="Queue the models of FILE (all, or those named with --model) and train "
                                          "them in this process or a pool of worker processes, with a progress bar "
                                          "per model and epoch; then print the results table. A model already "
                                          "trained with the same data and settings is not trained again. Models "
                                          "with errors are skipped and listed with their first error; the others "
                                          "train and the exit status is 0. It is 2 when nothing can be trained: "
                                          "every model asked for has errors, or the header (data, train, budget "
                                          "lines) has one.")
    p.add_argument("file", type=Path, metavar="FILE", help="a .remap file")
    p.add_argument("--model", "-m", action="append", metavar="M", help="train this model (repeat for more)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="override the file's epochs")
    p.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--jobs", "-j", type=positive_int, metavar="N",
                   help=f"worker processes training at once (default {DEFAULT_JOBS}; 1 trains in this process); "
                        "on a GPU, processes per GPU (default: as many as its free memory holds for the largest "
                        "model); with --executor ray, see --max-in-flight")
    p.add_argument("--force", action="store_true", help="train again even if already trained")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_cuda_graphs_option(p)
    add_no_onnx_option(p)
    add_store_option(p)
    add_executor_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    executor = executor_options(args)
    if args.jobs is not None:
        check_count("--jobs", args.jobs, 1, MAX_PROCESSES)
    checked = read_models(args.file, args.model)
    progress_out = sys.stderr if args.json else sys.stdout
    report_skipped(checked, sys.stderr)
    with open_store(store_path(args, args.file)) as store:
        plan = queue_document(store, checked, epochs=args.epochs, device=args.device, force=args.force,
                              runs_on=runs_on(executor))
        todo = report_plan(plan, progress_out)
        if todo:
            cuda = plan.device.startswith("cuda")
            train_jobs(store.path, todo, jobs=args.jobs or (None if cuda else DEFAULT_JOBS), out=progress_out,
                       options=worker_options(args.device, args.onnx, args.cuda_graphs),
                       job_bytes=job_estimates(checked, plan), executor=executor)
        print_results(store, plan, sys.stdout, args.json)
    note_skipped(checked, sys.stderr)
    return 0


def note_skipped(checked: Checked, out: TextIO) -> None:
    """A last line, below the results, so that the skipped models are not lost in a long training's output."""
    if checked.skipped:
        print(f"note: skipped {len(checked.skipped)} model(s) with errors: {', '.join(checked.skipped)}; "
              f"`remap check {checked.path}` lists every error", file=out)
