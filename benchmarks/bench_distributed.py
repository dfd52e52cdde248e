"""The Ray executor's overhead: the same population trained by the local executor and on a local Ray cluster.

    python benchmarks/bench_distributed.py [--models 40] [--epochs 5] [--batch 128] [--cpus 2] [--seed 0]
                                           [--first ray|local] [--repeat 1] [--json out.json]

The population is the sampler's (`remapdsl.search.sampler.sample_models`) on the bundled digits data, queued in
two new stores the most expensive first, as `remap train` queues it. Local: the local executor's pool, one
process per CPU (`remap train -j N`). Ray: a Ray instance started here for each run with N CPUs (its start-up
timed apart), and a `RayWorker` keeping N jobs in flight, one CPU each (`remap worker --executor ray`): every
epoch and its checkpoint travel back to the worker, which writes the store. Both without the ONNX measurement.
With --repeat, pairs of runs alternate their order and each figure is a median.

Reported: each side's wall time from the first claim to the last job's end; the overhead (Ray's wall time minus
the local one) per job and per model-epoch, and as a share of the local wall time; the median seconds of an
epoch as each side's trainer timed it (the training itself, the same work on both sides); the median of a
job's wall time (claim to end, from the store) and of its bookkeeping (that wall time less its epochs' own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from remapdsl.jobs.enqueue import Checked, enqueue_models
from remapdsl.jobs.local import train_jobs
from remapdsl.jobs.ray_executor import RayOptions, RayWorker
from remapdsl.jobs.worker import WorkerOptions
from remapdsl.language.analysis import analyze_model
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Document, ModelSpec
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from remapdsl.train.data import Dataset, load_dataset


@dataclass(frozen=True)
class Side:
    seconds: float  # first claim to last end
    epochs: int  # model-epochs recorded
    failed: int
    epoch_median: float  # seconds of one epoch, as the trainer timed it
    job_median: float  # seconds from a job's claim to its end
    # per job: its claim-to-end time less its epochs' own time (training and validation, as the trainer timed
    # them): claiming, data, building the model, checkpoints, recording, and for Ray the task's round trips
    bookkeeping_median: float


def queue_population(folder: Path, models: list[ModelSpec], data: Dataset, settings: TrainSettings) -> tuple[Path,
                                                                                                               list[int]]:
    info = data.info()
    cost = {m.name: analyze_model(m, info).flops for m in models}
    db = folder / "remap.db"
    checked = Checked(folder / "population.remap", Document(models=tuple(models)),
                      sorted(cost, key=lambda n: -cost[n]))
    with Store(db) as store:
        _, enqueued = enqueue_models(store, checked, settings, data.key, device="cpu")
    return db, [e.job.id for e in enqueued]


def measure(db: Path, ids: list[int], seconds: float) -> Side:
    with Store(db) as store:
        queue = Queue(store)
        jobs = [queue.require(i) for i in ids]
        runs = [store.run(j.run_id) for j in jobs]
        per_job = [[e.seconds for e in store.epochs(j.run_id)] for j in jobs]
    epochs = [s for job in per_job for s in job]
    walls = [(j.finished or 0.0) - (j.started or 0.0) for j in jobs]
    bookkeeping = [wall - sum(job) for wall, job in zip(walls, per_job, strict=True)]
    return Side(seconds, len(epochs), sum(r is None or r.status != "done" for r in runs),
                statistics.median(epochs) if epochs else float("nan"), statistics.median(walls),
                statistics.median(bookkeeping))


def run_local(folder: Path, models: list[ModelSpec], data: Dataset, settings: TrainSettings, cpus: int) -> Side:
    db, ids = queue_population(folder, models, data, settings)
    started = time.perf_counter()
    train_jobs(db, ids, processes=cpus, options=WorkerOptions(device="cpu", onnx=False))
    return measure(db, ids, time.perf_counter() - started)


def run_ray(folder: Path, models: list[ModelSpec], data: Dataset, settings: TrainSettings, cpus: int) -> Side:
    """On a Ray instance started for this run, so that its task processes start cold as the local pool's do (a
    warm instance keeps processes that imported torch already); its start-up is timed apart."""
    import ray

    db, ids = queue_population(folder, models, data, settings)
    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    _start_ups.append(time.perf_counter() - t0)
    try:
        return _run_ray(db, ids, cpus)
    finally:
        ray.shutdown()


_start_ups: list[float] = []


def _run_ray(db: Path, ids: list[int], cpus: int) -> Side:
    with RayWorker(db, RayOptions(max_in_flight=cpus), options=WorkerOptions(onnx=False, poll_seconds=0.1),
                   only=ids) as worker:
        worker.connect()
        started = time.perf_counter()
        worker.run(until_empty=True)
        seconds = time.perf_counter() - started
    return measure(db, ids, seconds)


def median_side(sides: list[Side]) -> Side:
    """Each figure's median over the runs of one side."""
    return Side(
        seconds=statistics.median(x.seconds for x in sides), epochs=min(x.epochs for x in sides),
        failed=max(x.failed for x in sides), epoch_median=statistics.median(x.epoch_median for x in sides),
        job_median=statistics.median(x.job_median for x in sides),
        bookkeeping_median=statistics.median(x.bookkeeping_median for x in sides))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--cpus", type=int, default=2, help="local processes, and the Ray instance's CPUs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", choices=("ray", "local"), default="local", help="which side runs first")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pairs of runs, the order alternating from pair to pair; medians reported")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    from remapdsl.search.sampler import sample_models

    data = load_dataset(None)
    models = list(sample_models(args.models, data.info(), args.seed))
    settings = TrainSettings(epochs=args.epochs, batch=args.batch, seed=args.seed)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runs: dict[str, list[Side]] = {"local": [], "ray": []}
    for pair in range(args.repeat):
        order = ["local", "ray"] if args.first == "local" else ["ray", "local"]
        for name in order if pair % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory(prefix=f"bench-distributed-{name}-") as folder:
                run = run_local if name == "local" else run_ray
                runs[name].append(run(Path(folder), models, data, settings, args.cpus))
                print(f"{name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    start_up = statistics.median(_start_ups)
    local, remote = median_side(runs["local"]), median_side(runs["ray"])
    ratios = [r.seconds / loc.seconds for loc, r in zip(runs["local"], runs["ray"], strict=True)]
    overhead = remote.seconds - local.seconds
    model_epochs = args.models * args.epochs
    figures = {
        "models": args.models, "epochs": args.epochs, "cpus": args.cpus, "first": args.first, "pairs": args.repeat,
        "ray_start_up_seconds": start_up,
        "local": asdict(local), "ray": asdict(remote),
        "local_runs": [asdict(x) for x in runs["local"]], "ray_runs": [asdict(x) for x in runs["ray"]],
        "overhead_seconds": overhead,
        "overhead_per_job_seconds": overhead / args.models,
        "overhead_per_epoch_seconds": overhead / model_epochs,
        "overhead_share_of_local_wall": overhead / local.seconds,
        "ray_over_local_per_pair": ratios,
        "ray_over_local_median": statistics.median(ratios),
        "bookkeeping_difference_per_job_seconds": remote.bookkeeping_median - local.bookkeeping_median,
    }
    print(f"{args.models} models x {args.epochs} epochs on {args.cpus} CPUs (digits); medians of {args.repeat} "
          "pair(s)")
    print(f"  Ray start-up (not in the wall times): {start_up:.1f} s")
    for name, side in (("local executor", local), ("Ray executor", remote)):
        print(f"  {name:<15} {side.seconds:7.1f} s wall, {side.epochs} epochs, {side.failed} failed; median epoch "
              f"{side.epoch_median * 1000:.0f} ms, median job {side.job_median:.2f} s, of which bookkeeping "
              f"{side.bookkeeping_median * 1000:.0f} ms")
    print(f"  overhead: {overhead:+.1f} s = {overhead / args.models * 1000:+.0f} ms a job, "
          f"{overhead / model_epochs * 1000:+.1f} ms a model-epoch, {100 * overhead / local.seconds:+.1f}% of the "
          f"local wall time; Ray/local per pair {', '.join(f'{r:.3f}' for r in ratios)} "
          f"(median {statistics.median(ratios):.3f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
