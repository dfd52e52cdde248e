"""Training jobs: from a document to the queue, the worker that trains a queued job and records each epoch,
the local executor that runs workers in processes and reports through a callback, and the Ray executor that
trains claimed jobs on a Ray cluster.

Names are loaded on first use: the worker trains with torch (the `train` extra), and `import remapdsl.jobs`
must not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remapdsl.faces import lazy_names

if TYPE_CHECKING:
    from remapdsl.jobs.enqueue import (
        Checked,
        EnqueueError,
        Plan,
        check_models,
        enqueue_models,
        load_document_data,
        queue_document,
        settings_of,
    )
    from remapdsl.jobs.local import default_workers, train_jobs
    from remapdsl.jobs.ray_executor import ExecutorError, RayOptions, RayWorker
    from remapdsl.jobs.worker import Worker, WorkerEvent, WorkerOptions

# Each public name and the module that defines it.
_HOMES = {
    "Checked": "enqueue",
    "EnqueueError": "enqueue",
    "Plan": "enqueue",
    "check_models": "enqueue",
    "enqueue_models": "enqueue",
    "load_document_data": "enqueue",
    "queue_document": "enqueue",
    "settings_of": "enqueue",
    "Worker": "worker",
    "WorkerEvent": "worker",
    "WorkerOptions": "worker",
    "default_workers": "local",
    "train_jobs": "local",
    "ExecutorError": "ray_executor",
    "RayOptions": "ray_executor",
    "RayWorker": "ray_executor",
}

__all__ = [
    "Checked",
    "EnqueueError",
    "ExecutorError",
    "Plan",
    "RayOptions",
    "RayWorker",
    "Worker",
    "WorkerEvent",
    "WorkerOptions",
    "check_models",
    "default_workers",
    "enqueue_models",
    "load_document_data",
    "queue_document",
    "settings_of",
    "train_jobs",
]

__getattr__ = lazy_names(__name__, _HOMES)
