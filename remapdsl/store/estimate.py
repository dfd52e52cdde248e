"""Estimated training time of an untrained model (the paper's "Est. Training" column), from past runs.

FLOPs alone predict badly: a small model on a CPU spends most of a step dispatching its few operations, so
seconds per FLOP fall steeply with size, and a large model trained after small ones was estimated several
times too slow. Each past run on a device is one observation of

    seconds per epoch  ≈  per_op · steps · (layers + 1)  +  per_flop · flops · examples

(steps: optimizer steps per epoch; the `+ 1` is the loss and the optimizer step; examples: training
examples per epoch; flops: forward FLOPs per example, as the language core counts them). The two
coefficients are fitted by least squares on relative errors, so a one-second run counts as much as a
one-minute one, and both are kept non-negative. With a single past run, or runs that cannot separate the
two terms, the estimate falls back to that run's seconds per FLOP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from remapdsl.language.header import TRAIN_OPTIONS
from remapdsl.language.model import as_int
from remapdsl.store.db import FINISHED, Store

# The newest runs of a device that the fit reads: recent enough to describe the machine as it is.
RECENT_RUNS = 200
DEFAULT_BATCH = as_int(TRAIN_OPTIONS["batch"].default)


@dataclass(frozen=True)
class Work:
    """What an epoch of one model's training asks of the device."""

    flops: int  # forward FLOPs per example
    examples: int  # training examples per epoch
    batch: int
    layers: int

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.examples / max(1, self.batch)))

    @property
    def ops(self) -> float:
        return float(self.steps * (self.layers + 1))

    @property
    def arithmetic(self) -> float:
        return float(self.flops) * self.examples


@dataclass(frozen=True)
class Timing:
    work: Work
    epoch_seconds: float


@dataclass(frozen=True)
class TimeModel:
    """Seconds per epoch on one device as `per_op · ops + per_flop · arithmetic` (see the module's doc)."""

    per_op: float
    per_flop: float
    runs: int  # the past runs it was fitted on

    def epoch_seconds(self, work: Work) -> float:
        return self.per_op * work.ops + self.per_flop * work.arithmetic

    def seconds(self, work: Work, epochs: int) -> float:
        return self.epoch_seconds(work) * max(0, epochs)


def fit(timings: Sequence[Timing]) -> TimeModel | None:
    """The model that fits `timings` best in relative terms; None without any usable timing."""
    usable = [t for t in timings if t.epoch_seconds > 0 and math.isfinite(t.epoch_seconds)
              and (t.work.ops > 0 or t.work.arithmetic > 0)]
    if not usable:
        return None
    # rows divided by their own seconds: minimise the sum of squared relative errors
    a = np.array([[t.work.ops / t.epoch_seconds, t.work.arithmetic / t.epoch_seconds] for t in usable])
    b = np.ones(len(usable))
    scale = np.maximum(a.max(axis=0), 1e-300)  # columns differ by many orders of magnitude
    candidates = []
    if len(usable) >= 2:
        both, *_ = np.linalg.lstsq(a / scale, b, rcond=None)
        if np.all(both >= 0):
            candidates.append(both / scale)
    for column in (0, 1):  # one term alone: the best non-negative fit on a boundary
        x = a[:, column]
        if x.any():
            coefficients = np.zeros(2)
            coefficients[column] = float(x @ b / (x @ x))
            candidates.append(coefficients)
    best = min(candidates, key=lambda c: float(((a @ c - b) ** 2).sum()))
    return TimeModel(float(best[0]), float(best[1]), len(usable))


def time_model(store: Store, device: str) -> TimeModel | None:
    """The model fitted to the finished runs on `device` (newest first, at most RECENT_RUNS)."""
    return fit(past_timings(store, device))


def past_timings(store: Store, device: str) -> list[Timing]:
    statuses = ",".join("?" * len(FINISHED))
    rows = store.conn.execute(
        "SELECT r.flops, r.n_train, r.settings, m.text, SUM(e.seconds) / COUNT(e.epoch) "
        "FROM runs r JOIN models m ON m.hash = r.model_hash JOIN epochs e ON e.run_id = r.id "
        f"WHERE r.used_device = ? AND r.status IN ({statuses}) AND r.flops > 0 AND r.n_train > 0 "
        "GROUP BY r.id HAVING SUM(e.seconds) > 0 ORDER BY r.id DESC LIMIT ?",
        (device, *FINISHED, RECENT_RUNS)).fetchall()
    out = []
    for flops, n_train, settings, text, seconds in rows:
        batch = _batch_of(settings)
        out.append(Timing(Work(int(flops), int(n_train), batch, layer_count(text)), float(seconds)))
    return out


def layer_count(canonical_text: str) -> int:
    """Layers of a model from its canonical text: one line each below the model line."""
    return sum(1 for line in canonical_text.splitlines()[1:] if line.strip() and not line.lstrip().startswith("#"))


def _batch_of(settings: str) -> int:
    try:
        batch = json.loads(settings).get("batch", DEFAULT_BATCH)
    except (ValueError, AttributeError):
        batch = DEFAULT_BATCH
    return batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else DEFAULT_BATCH
