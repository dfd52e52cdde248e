"""Train many models at once: a pool of processes, each with one torch thread.

Small models on a CPU are bound by per-operation dispatch, not arithmetic, so one torch thread gains
nothing from a second core while a second process doubles the work done. Each process receives the data
set once, when it starts, and then trains one model per task. Processes are spawned (not forked), so a
parent that has already used torch's thread pools cannot leave a child deadlocked.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

from remapdsl.language.analysis import analyze_model
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import ModelSpec
from remapdsl.train.data import Dataset
from remapdsl.train.trainer import TrainResult, resolve_device, train

# Set in each worker process by `_start_worker`.
_worker: dict[str, Any] = {}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(device: str) -> int:
    """One process per core on the CPU; on a GPU a few processes keep it busy with small models."""
    cores = usable_cores()
    return cores if device == "cpu" else max(1, min(4, cores))


class TrainingPool:
    """Worker processes that train models on one data set; use as a context manager."""

    def __init__(self, data: Dataset, workers: int | None = None, device: str = "auto", threads: int = 1,
                 keep_checkpoints: bool = True) -> None:
        self.device = resolve_device(device)
        self.workers = workers or default_workers(self.device)
        self.keep_checkpoints = keep_checkpoints
        self.data = data
        context = multiprocessing.get_context("spawn")
        self._cancel = context.Event()
        self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                             initializer=_start_worker,
                                             initargs=(data, self.device, threads, self._cancel))

    def submit(self, model: ModelSpec, settings: TrainSettings) -> Future[TrainResult]:
        return self._executor.submit(_train_one, model, settings, self.keep_checkpoints)

    def train_all(self, models: Sequence[ModelSpec], settings: TrainSettings,
                  on_result: Callable[[int, TrainResult], None] | None = None) -> list[TrainResult]:
        """Results in the order of `models`; `on_result(index, result)` as each one finishes.

        The most expensive models start first, so no process is left with a long one at the end.
        """
        info = self.data.info()
        cost = [analyze_model(m, info).flops for m in models]
        futures = {self.submit(models[i], settings): i for i in sorted(range(len(models)), key=lambda i: -cost[i])}
        results: list[TrainResult | None] = [None] * len(models)
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if on_result is not None:
                on_result(i, results[i])  # type: ignore[arg-type]
        return [r for r in results if r is not None]

    def cancel(self) -> None:
        """Ends every running training as "cancelled"; tasks not yet started are dropped."""
        self._cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrainingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.cancel()
        self.close()


def train_many(models: Sequence[ModelSpec], data: Dataset, settings: TrainSettings, *, workers: int | None = None,
               device: str = "auto", keep_checkpoints: bool = True,
               on_result: Callable[[int, TrainResult], None] | None = None) -> list[TrainResult]:
    """Train every model in a pool of processes; results in the order of `models`."""
    with TrainingPool(data, workers, device, keep_checkpoints=keep_checkpoints) as pool:
        return pool.train_all(models, settings, on_result)


def _start_worker(data: Dataset, device: str, threads: int, cancel: Any) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    _worker.update(data=data, device=device, cancel=cancel)


def _train_one(model: ModelSpec, settings: TrainSettings, keep_checkpoint: bool) -> TrainResult:
    cancel = _worker["cancel"]
    try:
        result = train(model, _worker["data"], settings, _worker["device"], should_stop=cancel.is_set)
    except Exception as e:  # one broken training must not stop the others
        return TrainResult("failed", f"{type(e).__name__}: {e}", (), None, None, None, 0, 0, _worker["device"], 0.0,
                           None)
    return result if keep_checkpoint else replace(result, checkpoint=None)

