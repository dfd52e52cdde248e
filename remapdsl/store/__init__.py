"""The store: one SQLite file per workspace holding the models, their runs and epochs, the training queue,
the distances and layouts of the model space, and what is read back from them (statuses, results, estimates).

All of the toolkit's SQL lives here; everything above asks the store in these names.
"""

from __future__ import annotations

from remapdsl.store.changes import Change, ChangeBatch, change_cursor, changes_since
from remapdsl.store.db import (
    ACTIVE,
    CHANGES_KEPT,
    ENDED,
    FINISHED,
    ORIGINS,
    ArtifactRow,
    EpochRow,
    MissingCheckpoint,
    ModelRow,
    RunRow,
    RunStatus,
    Store,
    StoreError,
    default_store_path,
)
from remapdsl.store.distances import DistanceRow, DistanceTable
from remapdsl.store.estimate import TimeModel, Timing, Work, fit, time_model
from remapdsl.store.layouts import LayoutTable, Position
from remapdsl.store.pareto import ModelScore, ParetoError, pareto_front
from remapdsl.store.poller import JobCursor, JobUpdate, StorePoller, job_updates
from remapdsl.store.population import (
    UNTRAINED,
    ModelDetail,
    OnnxFigures,
    Population,
    model_detail,
    per_class_accuracy,
    read_population,
)
from remapdsl.store.queue import (
    DEFAULT_LEASE_SECONDS,
    MOVES,
    Enqueued,
    Job,
    Queue,
    QueueError,
    Registered,
    data_line,
    describe_models,
    register_models,
)
from remapdsl.store.results import ResultRow, format_table, pareto_rows, result_rows, rows_json
from remapdsl.store.status import NOT_TRAINED, ModelStatus, QueueProgress, Training, model_statuses, queue_progress

__all__ = [
    "ACTIVE",
    "CHANGES_KEPT",
    "DEFAULT_LEASE_SECONDS",
    "ENDED",
    "FINISHED",
    "MOVES",
    "NOT_TRAINED",
    "ORIGINS",
    "UNTRAINED",
    "ArtifactRow",
    "Change",
    "ChangeBatch",
    "DistanceRow",
    "DistanceTable",
    "Enqueued",
    "EpochRow",
    "Job",
    "JobCursor",
    "JobUpdate",
    "LayoutTable",
    "MissingCheckpoint",
    "ModelDetail",
    "ModelRow",
    "ModelScore",
    "ModelStatus",
    "OnnxFigures",
    "ParetoError",
    "Population",
    "Position",
    "Queue",
    "QueueError",
    "QueueProgress",
    "Registered",
    "ResultRow",
    "RunRow",
    "RunStatus",
    "Store",
    "StoreError",
    "StorePoller",
    "TimeModel",
    "Timing",
    "Training",
    "Work",
    "change_cursor",
    "changes_since",
    "data_line",
    "default_store_path",
    "describe_models",
    "fit",
    "format_table",
    "job_updates",
    "model_detail",
    "model_statuses",
    "pareto_front",
    "pareto_rows",
    "per_class_accuracy",
    "queue_progress",
    "read_population",
    "register_models",
    "result_rows",
    "rows_json",
    "time_model",
]
