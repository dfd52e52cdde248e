"""A training worker: claims queued jobs, trains them and writes every finished epoch to the store.

One job at a time: claim it under a lease, load its data (kept per data key for the next job), resume
from its last checkpoint, and commit each finished epoch together with its checkpoint, so a worker killed
at any moment loses at most the epoch in progress. A heartbeat thread extends the lease while the job
trains; the cancel flag is read at most every half second from the batch-boundary poll. A job that fails
(an exception, or a training that ends as failed) is marked failed with its reason, and the worker goes on
to the next one. A job that asks for a device this worker does not have (CUDA, on a CPU-only machine) is
left in the queue for a worker that has it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remapdsl.store.db import (
    ACTIVE,
    ENDED,
    FINISHED,
    DatabaseFailure,
    EpochRow,
    MissingCheckpoint,
    RunStatus,
    Store,
    StoreError,
    describe_database_error,
)
from remapdsl.store.queue import DEFAULT_LEASE_SECONDS, Job, Queue

if TYPE_CHECKING:
    from remapdsl.language.analysis import ModelInfo
    from remapdsl.language.header import TrainSettings
    from remapdsl.language.model import ModelSpec
    from remapdsl.train.data import Dataset
    from remapdsl.train.trainer import EpochResult, TrainResult

CANCEL_CHECK_SECONDS = 0.5
# The artifact that records how a run executed (precision, CUDA graphs or why not), its meta an Execution.
EXECUTION_KIND = "execution"


class LeaseLost(Exception):
    """The worker no longer holds its job: its lease ran out and the job went to another worker."""


@dataclass(frozen=True)
class WorkerEvent:
    """What a worker reports as it goes: a job started, an epoch finished, a job ended, a job left for another
    worker."""

    kind: str  # "start" | "epoch" | "end" | "skipped"
    job: Job
    epoch: EpochRow | None = None
    # at "end": the run's status (done, stopped, failed, cancelled), "released" or "lost"
    status: str = ""
    reason: str = ""  # at "skipped": why this worker cannot train the job
    resumed_from: int = 0  # at "start": the last epoch finished before this attempt


@dataclass(frozen=True)
class WorkerOptions:
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    heartbeat_seconds: float = DEFAULT_LEASE_SECONDS / 4
    poll_seconds: float = 1.0  # wait between looks at an empty queue
    device: str | None = None  # overrides the device each job asks for
    onnx: bool = True  # export each trained model and measure it with onnxruntime, when onnx is installed
    cuda_graphs: str = "auto"  # "auto": capture the training step in CUDA graphs where it can be; "off"
    gpu: int | None = None  # the GPU of this worker's share: jobs asking for cuda (or auto, on CUDA) train there

    def __post_init__(self) -> None:
        from remapdsl.train.execution import check_graph_switch

        object.__setattr__(self, "cuda_graphs", check_graph_switch(self.cuda_graphs))
        if self.gpu is not None and self.gpu < 0:
            raise ValueError(f"GPU index must be 0 or more; got {self.gpu}")
        if self.lease_seconds <= 0:
            raise ValueError(f"lease must be positive; got {self.lease_seconds}")
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise ValueError(f"heartbeat interval must be positive and shorter than the lease "
                             f"({self.lease_seconds:g} s); got {self.heartbeat_seconds:g}")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll interval must be positive; got {self.poll_seconds}")


@dataclass(frozen=True)
class Prepared:
    """A claimed job ready to train: its run's keys, its model, data and settings, and the last checkpoint
    (epoch, bytes) it resumes from."""

    job: Job
    data_key: str
    data_text: str
    base_dir: str
    device: str  # the device the run asks for
    model_text: str  # the model's canonical text, as stored
    model: ModelSpec
    data: Dataset
    settings: TrainSettings
    info: ModelInfo
    resume: tuple[int, bytes] | None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"


class Worker:
    """Trains the jobs of one store; `run()` loops, `run_one()` trains the next job."""

    def __init__(self, store_path: str | os.PathLike[str], *, options: WorkerOptions | None = None,
                 worker_id: str | None = None, only: Collection[int] | None = None,
                 on_event: Callable[[WorkerEvent], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.options = options or WorkerOptions()
        self.id = worker_id or default_worker_id()
        self.only = set(only) if only is not None else None
        self.on_event = on_event
        self.stop = stop or threading.Event()
        self.store = Store(store_path)
        self.store_path = self.store.path  # resolved: the heartbeat thread opens it again
        self.queue = Queue(self.store)
        # what workers killed mid-write left behind: partial checkpoints of dead writers and unreferenced ones
        self.swept = self.store.sweep_leftovers(older_than=self.options.lease_seconds)
        self._data: dict[str, Dataset] = {}
        self._devices: dict[str, str] = {}  # device asked for -> why this worker cannot use it ('' when it can)
        self._skipped: set[int] = set()  # jobs already reported as left for another worker

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, *, until_empty: bool = False, max_jobs: int | None = None) -> int:
        """Train jobs until stopped (or, with `until_empty`, until none that this worker can take is queued or
        running); returns how many ended here (done, stopped, failed or cancelled; not lost or given back)."""
        done = 0
        while not self.stop.is_set() and (max_jobs is None or done < max_jobs):
            event = self.run_one()
            if event is not None:
                # "lost" (another worker holds it now) and "released" (queued again as this worker stops) are
                # not endings of the job
                done += event.status in ENDED
                continue
            if until_empty and not self._pending():
                break
            self.stop.wait(self.options.poll_seconds)
        return done

    def _pending(self) -> bool:
        """Whether some job of interest that this worker can take is queued or running (a running one may come
        back if its worker died)."""
        jobs = self.queue.jobs(ACTIVE)
        return any((self.only is None or j.id in self.only) and self.accepts(j.device) for j in jobs)

    def accepts(self, device: str) -> bool:
        """Whether this worker can train a job that asks for `device`."""
        return not self._cannot_use(device)

    def _cannot_use(self, device: str) -> str:
        """Why this worker cannot train on `device`, or '' when it can. Only a CUDA device that this machine
        lacks is refused: another worker may have it. Any other device is taken, and a device that exists
        nowhere fails its job with the reason."""
        if self.options.device:  # the user chose one device for every job
            return ""
        if device not in self._devices:
            why = ""
            if device.strip().lower().startswith("cuda"):
                from remapdsl.train.trainer import resolve_device

                try:
                    resolve_device(device)
                except ValueError as e:
                    why = str(e)
            self._devices[device] = why
        return self._devices[device]

    def run_one(self) -> WorkerEvent | None:
        """Claim and train the next job; its "end" event, or None when there was nothing to claim."""
        # decided before the claim, whose write lock must not wait for torch to look for CUDA
        for device in self.queue.queued_devices():
            self._cannot_use(device)
        job = self.queue.claim(self.id, self.options.lease_seconds, only=self.only, accepts=self.accepts)
        if job is None:
            self._report_skipped()
            return None
        beat = _Heartbeat(self.store_path, job.id, self.id, self.options)
        beat.start()
        try:
            status, reason = self._train(job, beat)
        except LeaseLost:
            status, reason = "lost", "the lease ran out and the job went to another worker"
        except KeyboardInterrupt:
            self.queue.release(job.id, self.id)
            raise
        except Exception as e:  # one broken job must not stop the worker
            status, reason = RunStatus.FAILED, describe_failure(e)
            self._record_failure(job, reason)
        finally:
            beat.stop()
        event = WorkerEvent("end", self.queue.require(job.id), status=status, reason=reason)
        self._emit(event)
        return event

    def _record_failure(self, job: Job, reason: str) -> None:
        """Mark the job failed with its reason; when the store cannot take even that (a full disk), give the job
        back to the queue, and when that fails too, stop with a StoreError that says why, rather than leave the
        job running until its lease runs out."""
        try:
            self.queue.complete(job.id, self.id, RunStatus.FAILED, reason)
            return
        except DatabaseFailure as e:
            first = e
        try:
            self.queue.release(job.id, self.id)
        except DatabaseFailure:
            raise StoreError(f"job {job.id} failed ({reason}) and the failure cannot be recorded: "
                             f"{describe_database_error(first)}") from None
        raise StoreError(f"job {job.id} failed ({reason}) and the failure cannot be recorded "
                         f"({describe_database_error(first)}); it is queued again") from None

    def _report_skipped(self) -> None:
        """Say once per job which queued jobs this worker leaves for another, and why."""
        for job in self.queue.queued():
            if job.id in self._skipped or (self.only is not None and job.id not in self.only):
                continue
            why = self._cannot_use(job.device)
            if why:
                self._skipped.add(job.id)
                self._emit(WorkerEvent("skipped", job, reason=f"left in the queue for a worker that can train on "
                                                              f"{job.device}: {why}"))

    # --- one job -----------------------------------------------------------------------------------

    def _train(self, job: Job, beat: _Heartbeat) -> tuple[str, str]:
        from remapdsl.train.trainer import Checkpoint, train

        job_ready = self._prepare(job)

        def on_epoch(result: EpochResult, checkpoint: Checkpoint) -> None:
            self._record_epoch(job, result, checkpoint.to_bytes())

        should_stop = _StopCheck(self.queue, job.id, self.stop, beat)
        resume = job_ready.resume
        result: TrainResult = train(job_ready.model, job_ready.data, job_ready.settings,
                                    self._device_for(job_ready.device), info=job_ready.info,
                                    resume=Checkpoint.from_bytes(resume[1]) if resume else None,
                                    on_epoch=on_epoch, should_stop=should_stop, graphs=self.options.cuda_graphs)
        if beat.lost.is_set():
            raise LeaseLost(job.id)
        model_state = result.checkpoint.model_state if result.checkpoint is not None else None
        return self._finish(job_ready, result, cancelled_by_user=should_stop.cancelled_by_user,
                            model_state=model_state)

    def _prepare(self, job: Job) -> Prepared:
        """What a claimed job trains with, its run marked started and the start reported."""
        from remapdsl.language.analysis import analyze_model
        from remapdsl.language.header import TrainSettings

        run = self.store.run(job.run_id)
        model_row = self.store.model(job.model_hash)
        if run is None or model_row is None:
            raise RuntimeError(f"job {job.id} refers to a run or model that is no longer in the store")
        model = parse_model(model_row.text)
        data = self._dataset(run.data_text, run.base_dir)
        settings = TrainSettings(**run.settings)
        resume = self._resume_point(job.run_id)
        info = analyze_model(model, data.info())
        self.store.start_run(job.run_id, n_train=len(data.y_train), params=info.param_count, flops=info.flops)
        self._emit(WorkerEvent("start", job, resumed_from=resume[0] if resume else 0))
        return Prepared(job, run.data_key, run.data_text, run.base_dir, run.device, model_row.text, model, data,
                        settings, info, resume)

    def _record_epoch(self, job: Job, result: EpochResult, checkpoint: bytes) -> None:
        """Commit a finished epoch with its checkpoint; LeaseLost when the job is no longer this worker's."""
        row = EpochRow(job.run_id, result.epoch, result.train_loss, result.train_acc, result.val_loss,
                       result.val_acc, result.seconds)
        written = self.store.record_epoch(job.run_id, row, checkpoint, owner=(job.id, self.id))
        if not written and not self.queue.holds(job.id, self.id):
            raise LeaseLost(job.id)
        self._emit(WorkerEvent("epoch", job, epoch=row))

    def _finish(self, job_ready: Prepared, result: TrainResult, *, cancelled_by_user: bool,
                model_state: Mapping[str, Any] | None) -> tuple[str, str]:
        """Record how a training ended (or give the job back when the worker is stopping); then the ONNX
        measurement of a finished one, from the weights `model_state` of its last epoch."""
        job = job_ready.job
        if result.execution is not None:
            self.store.add_artifact(EXECUTION_KIND, "", run_id=job.run_id, model_hash=job.model_hash,
                                    meta=result.execution.to_dict())
        if result.status == RunStatus.CANCELLED and not cancelled_by_user:
            # the worker is shutting down: the job goes back to the queue and resumes later
            self.queue.release(job.id, self.id)
            return "released", "the worker stopped; the job is queued again"
        reason = result.reason
        if result.status == RunStatus.CANCELLED:
            reason = f"cancelled by the user ({reason.rstrip(')')})" if reason else "cancelled by the user"
        self.queue.complete(job.id, self.id, result.status, reason, seconds=result.seconds, used_device=result.device,
                            predictions=result.predictions, confusion=result.confusion,
                            per_class=result.per_class_accuracy)
        if self.options.onnx and result.status in FINISHED and model_state is not None:
            self._measure_onnx(job, job_ready.model, job_ready.data, model_state)
        return result.status, reason

    def _measure_onnx(self, job: Job, model: ModelSpec, data: Dataset, model_state: Mapping[str, Any]) -> None:
        """Parameters and latency through onnxruntime. A failure is stored with the run and never fails the job,
        whose training already succeeded; without the onnx extra there is nothing to measure with."""
        if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
            return
        from remapdsl.onnx.export import OnnxError
        from remapdsl.onnx.records import measure_and_store, record_onnx_failure

        try:
            measure_and_store(self.store, job.run_id, model, data, model_state)
        except OnnxError as e:
            record_onnx_failure(self.store, job.run_id, job.model_hash, str(e))
        except Exception as e:  # onnxruntime's own errors from running the model, or anything else on the way
            record_onnx_failure(self.store, job.run_id, job.model_hash, describe_failure(e))

    def _device_for(self, asked: str) -> str:
        """Where a job that asks for `asked` trains here: the worker's own device if it has one, and a job
        for CUDA without an index on the GPU of this worker's share."""
        device = self.options.device or asked
        if self.options.gpu is None or device.strip().lower() not in ("auto", "cuda"):
            return device
        from remapdsl.train.trainer import resolve_device

        return f"cuda:{self.options.gpu}" if resolve_device(device).startswith("cuda") else device

    def _resume_point(self, run_id: int) -> tuple[int, bytes] | None:
        """The last checkpoint, or None to start from scratch. Nothing recorded is dropped here: when the
        recorded epochs cannot be continued (the checkpoint file is gone, or epochs lie beyond it), the job
        fails with the reason and the epochs stay, for the user to decide."""
        keep = "the recorded epochs are kept: restore the file and retry the job, or train again with --force"
        try:
            checkpoint = self.store.last_checkpoint(run_id)
        except MissingCheckpoint as e:
            raise RuntimeError(f"cannot resume: {e}; {keep}") from None
        last = checkpoint[0] if checkpoint else 0
        beyond = [e.epoch for e in self.store.epochs(run_id) if e.epoch > last]
        if beyond:
            which = f"epoch {beyond[0]}" if len(beyond) == 1 else f"epochs {beyond[0]}..{beyond[-1]}"
            after = f"after the checkpoint of epoch {last}" if checkpoint else "without a checkpoint"
            raise RuntimeError(f"cannot resume: {which} recorded {after}; the recorded epochs are kept: "
                               "train again with --force to start over")
        return checkpoint

    def _dataset(self, data_text: str, base_dir: str) -> Dataset:
        from remapdsl.language.parser import parse
        from remapdsl.train.data import load_dataset

        cache_key = f"{base_dir}\n{data_text}"
        if cache_key not in self._data:
            spec = parse(data_text).document.data
            self._data[cache_key] = load_dataset(spec, Path(base_dir) if base_dir else None)
        return self._data[cache_key]

    def _emit(self, event: WorkerEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


class _StopCheck:
    """The trainer's batch-boundary poll: stop on shutdown, lost lease, or the job's cancel flag."""

    def __init__(self, queue: Queue, job_id: int, shutdown: threading.Event, beat: _Heartbeat) -> None:
        self.queue = queue
        self.job_id = job_id
        self.shutdown = shutdown
        self.beat = beat
        self.cancelled_by_user = False
        self._next_check = 0.0

    def __call__(self) -> bool:
        if self.shutdown.is_set() or self.beat.lost.is_set():
            return True
        now = time.monotonic()
        if now >= self._next_check:  # reading the flag costs a query: not at every batch
            self._next_check = now + CANCEL_CHECK_SECONDS
            self.cancelled_by_user = self.queue.cancel_requested(self.job_id)
        return self.cancelled_by_user


class _Heartbeat:
    """Extends the job's lease from a thread of its own (with its own connection) while the job trains."""

    def __init__(self, store_path: Path, job_id: int, worker: str, options: WorkerOptions) -> None:
        self.store_path = store_path
        self.job_id = job_id
        self.worker = worker
        self.options = options
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        with Store(self.store_path) as store:
            queue = Queue(store)
            while not self._done.wait(self.options.heartbeat_seconds):
                try:
                    alive = queue.heartbeat(self.job_id, self.worker, self.options.lease_seconds)
                except Exception:  # a missed beat is not fatal; the lease allows for a few
                    continue
                if not alive:
                    self.lost.set()
                    return


def parse_model(text: str) -> ModelSpec:
    """The one model of a stored model text."""
    from remapdsl.language.parser import parse

    result = parse(text)
    if result.diagnostics or len(result.document.models) != 1:
        raise RuntimeError("the stored model text does not parse: "
                           + "; ".join(d.message for d in result.diagnostics[:3]))
    return result.document.models[0]


def describe_failure(e: Exception) -> str:
    """A job's failure in words: the message of the errors that carry one for the user, else the exception's type,
    message and where it was raised."""
    message = str(e).strip() or type(e).__name__
    if isinstance(e, ValueError | RuntimeError | OSError | StoreError):
        return message
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(e).__name__}: {message}{place}"
