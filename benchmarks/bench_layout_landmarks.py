"""Benchmark of the first structural layout of a large population, from nothing: landmark MDS against full MDS.

For n digits models drawn by the reference sampler (`remap sample`): a fresh store, the models keyed and
profiled (`ModelSpace.structural`), and their first layout (`ModelSpace.layout`), which above 500 models is
landmark MDS (L landmarks by maxmin, the rest placed from their distances to them; n x L OTMANN distances) and
below it MDS of the whole matrix (n²/2 distances). Baseline, in the same process: the first layout by full MDS
(the landmark threshold raised above n), measured up to `--full-max` models and otherwise estimated from the
time per pair of the largest full layout measured. Drawing the models is not timed.

Run: `python benchmarks/bench_layout_landmarks.py [--sizes 1000 10000] [--landmarks 100] [--workers 2]`.
`first_layout_seconds` is what `benchmarks/bench_overview.py` calls for its row of the same name.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from remapdsl.language.datasets import describe
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import ModelSpec
from remapdsl.search.sampler import sample_models
from remapdsl.space import otmann
from remapdsl.space.landmarks import DEFAULT_LANDMARKS, LANDMARK_THRESHOLD
from remapdsl.space.model_space import ModelSpace
from remapdsl.store.db import Store


def digits_population(n: int, seed: int = 0) -> dict[str, ModelSpec]:
    """n sampled digits models of distinct architectures, by name."""
    seen: dict[str, ModelSpec] = {}
    for model in sample_models(n, describe(None), seed):
        seen.setdefault(architecture_hash(model), model)
    return {m.name: m for m in seen.values()}


def first_layout_seconds(models: dict[str, ModelSpec], *, landmarks: int = DEFAULT_LANDMARKS, workers: int = 2,
                         full: bool = False) -> tuple[float, float | None]:
    """Seconds for the first structural layout of `models` in a fresh store (keys, profiles, distances, MDS,
    positions written), and the layout's stress. With `full`, MDS of the whole matrix whatever n."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "remap.db")
        threshold = len(models) + 1 if full else LANDMARK_THRESHOLD
        space = ModelSpace(store, workers=workers, landmarks=landmarks, landmark_threshold=threshold)
        start = time.perf_counter()
        laid = space.layout(space.structural(models))
        seconds = time.perf_counter() - start
        store.close()
    assert len(laid.positions) == len(models)
    return seconds, laid.stress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--landmarks", type=int, default=DEFAULT_LANDMARKS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full-max", type=int, default=1000, help="largest n laid out by full MDS (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is shown")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}; {args.workers} worker processes, "
          f"L = {args.landmarks}")
    otmann.warm_up()
    per_pair: float | None = None
    for n in args.sizes:
        models = digits_population(n)
        runs = sorted(first_layout_seconds(models, landmarks=args.landmarks, workers=args.workers)
                      for _ in range(args.repeat))
        seconds, stress = runs[len(runs) // 2]
        kind = "landmark MDS" if n > 500 else "full MDS (below the threshold)"
        print(f"n = {len(models)}: first layout {seconds:.2f} s ({kind}), stress {stress:.3f}")
        if n <= args.full_max:
            full_runs = sorted(first_layout_seconds(models, workers=args.workers, full=True)
                               for _ in range(args.repeat))
            full_seconds, full_stress = full_runs[len(full_runs) // 2]
            per_pair = full_seconds / otmann.pair_count(len(models))
            print(f"  baseline, full MDS: {full_seconds:.2f} s, stress {full_stress:.3f}; "
                  f"ratio {full_seconds / seconds:.1f}x")
        elif per_pair is not None:
            estimate = per_pair * otmann.pair_count(len(models))
            print(f"  baseline, full MDS, estimated from {per_pair * 1e6:.1f} us a pair: {estimate:.0f} s; "
                  f"ratio {estimate / seconds:.1f}x")


if __name__ == "__main__":
    main()
