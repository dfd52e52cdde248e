"""How many training processes share each GPU, and how the share shrinks when one of them runs out of memory.

A small model cannot keep a GPU busy, so several processes train on each GPU at once. Each GPU (`cuda:N`) has a
share of its own: as many processes as asked for (`--jobs`, per GPU), or, when not asked, as many as its free
memory holds for the largest job (`remapdsl.train.memory`), and at most one per CPU core that drives it. When a
job fails for lack of memory, the process that ran it leaves the share (unless it is the last), so the others
get the memory; the job's failure says why, and the pool goes on.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from remapdsl.train.memory import CONTEXT_BYTES

# Memory of each GPU left out of the sizing: other users' allocations come and go, and allocators fragment.
RESERVE_SHARE = 0.1


@dataclass(frozen=True)
class GpuShare:
    gpu: int
    processes: int
    reason: str  # how the count was chosen, in words


def share_size(free_bytes: int, largest_job: int, *, jobs: int, asked: int | None, cores: int,
               reserve: float = RESERVE_SHARE) -> tuple[int, str]:
    """Processes for one GPU with `free_bytes` free, to train `jobs` jobs of which the largest needs an estimated
    `largest_job` bytes: `asked` when given, else as many of the largest job as fit in the free memory less the
    reserve, at most one per core; never more than the jobs, never fewer than 1. With the reason, in words."""
    if asked is not None and asked < 1:
        raise ValueError(f"processes per GPU must be 1 or more; got {asked}")
    if free_bytes < 0 or largest_job <= 0 or jobs < 0 or not 0 <= reserve < 1:
        raise ValueError("free memory and jobs must not be negative, the job's estimate positive, the reserve in "
                         "[0, 1)")
    jobs = max(1, jobs)
    if asked is not None:
        count = min(asked, jobs)
        return count, f"{asked} asked for" + (f", {count} for {jobs} job(s)" if count < asked else "")
    usable = int(free_bytes * (1 - reserve))
    fit = usable // largest_job
    count = max(1, min(fit, max(1, cores), jobs))
    why = f"{_gib(usable)} free for jobs of up to {_gib(largest_job)}: {fit} fit"
    if count < fit:
        why += f", {count} for {jobs} job(s) and {max(1, cores)} core(s)"
    elif fit < 1:
        why += "; one process tries, and a job that does not fit fails with out-of-memory"
    return count, why


def plan_gpu_pool(free: Sequence[tuple[int, int]], job_bytes: Sequence[int], *, jobs: int, asked: int | None,
                  cores: int) -> list[GpuShare]:
    """One share per GPU of `free` ((index, free bytes) each), for `jobs` jobs whose estimated sizes are
    `job_bytes` (the smallest estimate, a process's context, when none is given); the cores and the jobs are
    split between the GPUs."""
    gpus = max(1, len(free))
    largest = max(job_bytes, default=CONTEXT_BYTES)
    shares = []
    for gpu, free_bytes in free:
        count, why = share_size(free_bytes, largest, jobs=-(-jobs // gpus), asked=asked, cores=max(1, cores // gpus))
        shares.append(GpuShare(gpu, count, why))
    return shares


def gpu_free_memory(device: str) -> list[tuple[int, int]]:
    """(index, free bytes) of the GPU `device` names, or of every GPU for "cuda"."""
    import torch

    index = device.partition(":")[2]
    gpus = [int(index)] if index else list(range(torch.cuda.device_count()))
    return [(i, int(torch.cuda.mem_get_info(torch.device("cuda", i))[0])) for i in gpus]


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


class ShareCounter:
    """The live processes of one GPU's share, counted across processes: one that ran out of memory leaves,
    unless it is the last."""

    def __init__(self, processes: int, context: Any = None) -> None:
        ctx = context or multiprocessing.get_context("spawn")
        self._live = ctx.Value("i", processes)

    @property
    def live(self) -> int:
        return int(self._live.value)

    def leave(self) -> bool:
        """Whether this process may stop (and the share is one smaller): False for the last one."""
        with self._live.get_lock():
            if self._live.value <= 1:
                return False
            self._live.value -= 1
            return True
