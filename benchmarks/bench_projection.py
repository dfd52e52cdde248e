"""Benchmark of the model-space computations for REMAP-sized populations.

For n = 100 and 1,000 random sequential models (drawn like the reference sampler: conv blocks with
activations, pooling and dropout, then dense layers and the head): the full OTMANN matrix, the
incremental add of one model (n distances and its out-of-sample placement), classical MDS and
optional SMACOF refinement; then the same add through `ModelSpace` and a store holding the n-model layout
and its distances, as `remap layout` does it in a process of its own (stored positions read, the row means
of the squared distances summed by SQLite, n distances, placement, one position written) and as a
long-lived process does it (the reference layout still in memory). `--residual` puts a 16-filter convolution
first and wraps the next one in a residual block (a projection shortcut when it widens the tensor), so that
the profiles are DAGs. Run:
`python benchmarks/bench_projection.py [--sizes 100 1000] [--workers 2] [--residual]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.model import Arg, Block, Layer, ModelSpec
from remapdsl.space import otmann
from remapdsl.space.distance_cache import PairValue
from remapdsl.space.model_space import ModelSpace
from remapdsl.space.projection import embed, place
from remapdsl.store.db import Store

BASELINE_PAIRS = 2000
ADDS = 3  # models added one at a time in each of the store timings
CONV_BLOCK = ("relu", "tanh", "sigmoid", "maxpool", "avgpool", "dropout", None)


def _layer(kind: str, value: int | float | None = None, **named: int) -> Layer:
    args = []
    if value is not None:
        args.append(Arg(LAYER_TYPES[kind].positional.name, value, positional=True))
    args += [Arg(k, v) for k, v in named.items()]
    return Layer(kind, tuple(args))


def random_model(rng: np.random.Generator, name: str, residual: bool = False) -> ModelSpec:
    layers = []
    if residual:
        layers.append(_layer("conv2d", 16, kernel=3))
    for _ in range(rng.integers(1, 6)):
        layers.append(_layer("conv2d", int(rng.choice([16, 32, 64, 128])), kernel=int(rng.choice([1, 3, 5]))))
        follow = CONV_BLOCK[rng.integers(len(CONV_BLOCK))]
        if follow in ("maxpool", "avgpool"):
            layers.append(_layer(follow, int(rng.choice([2, 3]))))
        elif follow == "dropout":
            layers.append(_layer("dropout", float(rng.choice([0.25, 0.5]))))
        elif follow is not None:
            layers.append(_layer(follow))
    layers.append(_layer("flatten"))
    for _ in range(rng.integers(0, 3)):
        layers.append(_layer("dense", int(rng.choice([16, 64, 128, 256]))))
        layers.append(_layer(str(rng.choice(["relu", "tanh", "sigmoid"]))))
    layers.append(_layer("dense", 10))
    if not residual:
        return ModelSpec(name, tuple(layers))
    widens = layers[1].written()["filters"] != 16
    block = Block("residual", 1, 2, (Arg("shortcut", "conv"),) if widens else ())
    return ModelSpec(name, tuple(layers), blocks=(block,))


def timed(label: str, fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    """The result of `fn` and the median of `repeat` timings (these machines are noisy)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print(f"  {label:<44} {seconds * 1000:10.1f} ms")
    return result, seconds


def run(n: int, workers: int, seed: int = 0, residual: bool = False) -> None:
    rng = np.random.default_rng(seed)
    models = [random_model(rng, f"m{i}", residual) for i in range(n + 1 + 2 * ADDS)]
    print(f"n = {n} (mean {np.mean([len(m.layers) for m in models]):.1f} layers per model, "
          f"{otmann.pair_count(n):,} pairs)")
    profiles, _ = timed("profiles", lambda: [otmann.profile(m) for m in models])
    existing, new = profiles[:n], profiles[n]
    otmann.distance(existing[0], existing[1])  # loads POT (a one-off, seconds) outside the timings
    matrices, seconds = timed(f"full OTMANN matrix, {workers} worker(s)",
                              lambda: otmann.distance_matrix(existing, workers=workers), repeat=3 if n <= 100 else 1)
    print(f"  {'':<44} {seconds / otmann.pair_count(n) * 1e6:10.1f} us per pair")
    # Baseline: one pair at a time in this process (cost matrix and transport per pair), on a sample of
    # pairs, scaled to the whole matrix.
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    sample = [pairs[k] for k in rng.choice(len(pairs), size=min(BASELINE_PAIRS, len(pairs)), replace=False)]
    _, loop = timed(f"baseline: pair loop, {len(sample):,} pairs",
                    lambda: [otmann.distance(existing[i], existing[j]) for i, j in sample])
    per_pair = loop / len(sample)
    print(f"  {'':<44} {per_pair * 1e6:10.1f} us per pair; whole matrix ~{per_pair * len(pairs):.1f} s, "
          f"{per_pair * len(pairs) / seconds:.1f}x the batched matrix")
    layout, _ = timed("classical MDS", lambda: embed([m.name for m in models[:n]], matrices.emd), repeat=5)
    timed("classical MDS + SMACOF (up to 100 iterations)",
          lambda: embed([m.name for m in models[:n]], matrices.emd, refine=100))

    def add_one() -> np.ndarray:
        row = otmann.distances_to(new, existing)
        return place(layout, row.emd)

    timed("add one model: n distances + placement", add_one, repeat=5)
    row, _ = timed("  of which the n distances", lambda: otmann.distances_to(new, existing), repeat=5)
    timed("  of which the placement", lambda: place(layout, row.emd), repeat=5)
    through_the_store(models, n, matrices, workers)


def through_the_store(models: list[ModelSpec], n: int, matrices: otmann.DistanceMatrices, workers: int) -> None:
    """Adding models to a stored n-model layout through `ModelSpace`, in a long-lived process and in a new one."""
    named = {m.name: m for m in models}
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "remap.db") as store:
        space = ModelSpace(store, workers=workers)
        members = space.structural({m.name: m for m in models[:n]})
        keys = [members.keys[m.name] for m in models[:n]]
        # the matrix timed above, as the store would hold it after the first `remap layout`
        space.cache.store("structural", {(keys[i], keys[j]): PairValue(float(matrices.emd[i, j]),
                                                                       float(matrices.lp[i, j]))
                                         for i in range(n) for j in range(i + 1, n)})
        timed("store: first layout (MDS, n positions written)", lambda: space.layout(members))
        long_lived, fresh = [], []
        for extra in range(1, 2 * ADDS + 1):
            # the first adds in the process that laid out (the overview), then each in a new one (`remap layout`)
            other = space if extra <= ADDS else ModelSpace(store, workers=workers)
            grown = other.structural({m.name: named[m.name] for m in models[:n + extra]})
            start = time.perf_counter()
            result = other.layout(grown)
            (long_lived if extra <= ADDS else fresh).append(time.perf_counter() - start)
            assert len(result.placed) == 1, result.placed
        for label, times in (("long-lived process", long_lived), ("new process (`remap layout`)", fresh)):
            print(f"  {'store: add one model, ' + label:<44} {statistics.median(times) * 1000:10.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--residual", action="store_true", help="models with a residual block each")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    for n in args.sizes:
        run(n, args.workers, residual=args.residual)


if __name__ == "__main__":
    main()
