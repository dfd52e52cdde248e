"""The arithmetic peak a device reaches: a large matrix product timed on one CPU thread (times the cores, the
machine's physical limit for float32) or on a GPU (bfloat16 and float32).

    python benchmarks/peak_flops.py [--size 2048] [--repeat 7]         # one CPU thread, and all threads
    python benchmarks/peak_flops.py --device cuda                        # a GPU

Medians of `--repeat` timed products after a warm-up; the machine is shared, so the median is the figure. On
the CPU each product is also timed by the process's CPU time: on a machine whose cores other processes share,
that is the rate of a core while it runs this thread, which wall time cannot show.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable


def matmul_gflops(size: int, repeat: int, device: str = "cpu", dtype: str = "float32",
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Median GFLOP/s of `size` x `size` matrix products (2 size^3 operations each) on the current threads, timed
    by `clock` (wall time; `time.process_time` for CPU time)."""
    import torch

    kind = getattr(torch, dtype)
    a = torch.randn(size, size, device=device, dtype=kind)
    b = torch.randn(size, size, device=device, dtype=kind)
    out = torch.empty(size, size, device=device, dtype=kind)
    torch.mm(a, b, out=out)  # warm-up: the library picks its kernel, pages are touched
    rates = []
    for _ in range(repeat):
        if device != "cpu":
            torch.cuda.synchronize(device)
        start = clock()
        torch.mm(a, b, out=out)
        if device != "cpu":
            torch.cuda.synchronize(device)
        rates.append(2 * size**3 / max(clock() - start, 1e-9) / 1e9)
    return statistics.median(rates)


def cpu_peak(size: int = 2048, repeat: int = 7) -> dict[str, float]:
    """float32 GFLOP/s on one thread (by wall time, and by CPU time: the core's own rate), those times the usable
    cores (the physical limit), and on all threads by wall time."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = matmul_gflops(size, repeat)
        one_cpu = matmul_gflops(size, repeat, clock=time.process_time)
        torch.set_num_threads(cores)
        every = matmul_gflops(size, repeat)
    finally:
        torch.set_num_threads(threads)
    return {"cores": cores, "one_thread_gflops": one, "limit_gflops": one * cores, "all_threads_gflops": every,
            "one_thread_cpu_time_gflops": one_cpu, "limit_cpu_time_gflops": one_cpu * cores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        peak = cpu_peak(args.size, args.repeat)
        print(f"float32 matmul {args.size}: one thread {peak['one_thread_gflops']:.1f} GFLOP/s; x {peak['cores']:.0f} "
              f"cores = {peak['limit_gflops']:.1f} GFLOP/s; all threads together {peak['all_threads_gflops']:.1f} "
              f"GFLOP/s (medians of {args.repeat}, wall time)")
        print(f"by CPU time: one thread {peak['one_thread_cpu_time_gflops']:.1f} GFLOP/s; x {peak['cores']:.0f} "
              f"cores = {peak['limit_cpu_time_gflops']:.1f} GFLOP/s")
        return 0
    for dtype in ("bfloat16", "float32"):
        rate = matmul_gflops(args.size, args.repeat, args.device, dtype)
        print(f"{args.device} {dtype} matmul {args.size}: {rate:.0f} GFLOP/s (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
