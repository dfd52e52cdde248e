"""The Ray executor: the worker claims jobs from the store as it always does, and a Ray cluster trains them.

The store stays on the user's machine and this worker is the one process that writes it. It claims queued jobs
in the queue's order under leases kept alive by heartbeats, up to `max_in_flight` at once, and submits each as
a Ray task with the CPUs and (fractional) GPUs asked for. The task is a streaming generator: every finished
epoch comes back with its checkpoint while the task goes on, and is committed here at once, so progress is live
and a lost node costs at most the epoch in progress. Cluster nodes never see the store or the workspace: a task
gets the model's text, the settings, the checkpoint it resumes from and the data set, which this worker puts in
the cluster's object store once per data key (or, with `shared_data`, which each node reads from the data
line's path; each process keeps the last one it used).

Stopping a task: a small actor holds a stop flag per job, which the task reads at batch boundaries (at most
every half second); a task that has not stopped `STOP_GRACE_SECONDS` later is killed (`ray.cancel(force=True)`).
A user's cancel keeps the finished epochs; a worker that stops gives its jobs back to the queue. A task lost
with its process or its node gives its job back too, and the job resumes from its last stored checkpoint, so no
epoch is recorded twice or lost; a job whose tasks are lost `MAX_TASK_LOSSES` times in a row fails with the
reason. A worker killed outright takes its tasks with it (Ray ends the tasks and actors of a driver that dies),
and its jobs are claimed again when their leases run out.

Ray is imported by this module alone, and only when a worker connects: without the `distributed` extra the
rest of remapdsl works, and `--executor ray` says how to install it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import os
import queue as messages_queue
import socket
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remapdsl.jobs.worker import (
    CANCEL_CHECK_SECONDS,
    LeaseLost,
    Prepared,
    Worker,
    WorkerEvent,
    WorkerOptions,
    describe_failure,
    parse_model,
)
from remapdsl.store.db import ENDED, FINISHED, RunStatus, Store
from remapdsl.store.queue import Job, Queue

if TYPE_CHECKING:
    from remapdsl.language.header import TrainSettings
    from remapdsl.train.data import Dataset
    from remapdsl.train.trainer import EpochResult, TrainResult

INSTALL = "pip install 'remapdsl[distributed]'"
# How long a task asked to stop may take before it is killed: a batch of a large model on a busy node.
STOP_GRACE_SECONDS = 30.0
# Tasks of one job lost in a row (their process or node died) before the job fails instead of trying again.
MAX_TASK_LOSSES = 3
# Longest wait for a task's next message before the worker looks at cancels and leases again.
WAIT_SECONDS = 0.25
MAX_IN_FLIGHT = 10_000
REACH_SECONDS = 5.0  # to open a connection to the cluster's address before joining it
MAX_RESOURCE = 1024.0  # CPUs or GPUs one job may ask for

# Ray's errors that mean the task's process, node or results went away, not that the training failed: the job
# is given back to the queue and resumes from its last stored checkpoint.
_LOST = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
         "ObjectFetchTimedOutError", "TaskCancelledError", "OutOfMemoryError", "RaySystemError")


class ExecutorError(Exception):
    """The Ray executor cannot run as asked: Ray is not installed, or the cluster cannot be reached or lacks the
    resources asked for. The message says what to do."""


@dataclass(frozen=True)
class RayOptions:
    """How jobs run on a Ray cluster."""

    # the cluster's address (`auto`: the one started on this machine with `ray start`); None: RAY_ADDRESS when
    # set, else a Ray instance started for this worker on this machine
    address: str | None = None
    gpus_per_job: float = 0.0  # fractions below 1 share a GPU between jobs
    cpus_per_job: float = 1.0
    max_in_flight: int | None = None  # None: as many as the cluster's CPUs and GPUs hold at once
    shared_data: bool = False  # every node reads the data set from the data line's path itself

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gpus_per_job) and 0 <= self.gpus_per_job <= MAX_RESOURCE):
            raise ValueError(f"GPUs per job must be between 0 and {MAX_RESOURCE:g}; got {self.gpus_per_job:g}")
        if not (math.isfinite(self.cpus_per_job) and 0 < self.cpus_per_job <= MAX_RESOURCE):
            raise ValueError(f"CPUs per job must be above 0 and at most {MAX_RESOURCE:g}; got {self.cpus_per_job:g}")
        for name, value in (("GPUs", self.gpus_per_job), ("CPUs", self.cpus_per_job)):
            if value > 1 and value != int(value):  # Ray's rule: a share of one device, or whole devices
                raise ValueError(f"{name} per job above 1 must be a whole number; got {value:g}")
        if self.max_in_flight is not None and not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"jobs in flight must be between 1 and {MAX_IN_FLIGHT:,}; got {self.max_in_flight}")
        if self.address is not None and not self.address.strip():
            raise ValueError("the Ray address is empty; give HOST:PORT, ray://HOST:PORT or auto")


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def _ray() -> Any:
    if not ray_installed():
        raise ExecutorError(f"the Ray executor needs ray, which is not installed; install it with `{INSTALL}`")
    return importlib.import_module("ray")


# --- what a task sends back ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Started:
    pid: int
    node: str


@dataclass(frozen=True)
class _Epoch:
    result: EpochResult
    checkpoint: bytes


@dataclass(frozen=True)
class _Ended:
    result: TrainResult | None  # without its checkpoint, which came with its epoch
    failure: str = ""  # why the training raised, when result is None


# --- where a task finds the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shipped:
    """The data set, in the cluster's object store: the reference travels, not the arrays."""

    key: str
    ref: Any


@dataclass(frozen=True)
class _OnNodes:
    """The data set, read by each node from the data line's path (a path every node can read)."""

    key: str
    data_text: str
    base_dir: str


# The data set a task process used last, by data key: the next job on the same data skips fetching and
# placing it again. One at a time, so a process's memory stays bounded whatever it trains.
_NODE_DATA: dict[str, Dataset] = {}


def _node_data(source: _Shipped | _OnNodes) -> Dataset:
    if source.key not in _NODE_DATA:
        _NODE_DATA.clear()
        if isinstance(source, _Shipped):
            data: Dataset = _ray().get(source.ref)
        else:
            from remapdsl.language.parser import parse
            from remapdsl.train.data import load_dataset

            spec = parse(source.data_text).document.data
            data = load_dataset(spec, Path(source.base_dir) if source.base_dir else None)
            if data.key != source.key:
                raise RuntimeError(f"the data this node reads ({source.data_text or 'data digits'}) is not the data "
                                   "the job was queued with: its files differ from those on the worker's machine")
        _NODE_DATA[source.key] = data
    return _NODE_DATA[source.key]


class _StopFlags:
    """An actor holding which jobs' tasks should stop; tasks read it, the worker writes it."""

    def __init__(self) -> None:
        self._stopping: set[int] = set()

    def stop(self, job_id: int) -> None:
        self._stopping.add(job_id)

    def clear(self, job_id: int) -> None:
        self._stopping.discard(job_id)

    def stopping(self, job_id: int) -> bool:
        return job_id in self._stopping


class _FlagCheck:
    """The trainer's batch-boundary poll inside a task: the job's stop flag, read at most every half second."""

    def __init__(self, flags: Any, job_id: int) -> None:
        self.flags = flags
        self.job_id = job_id
        self._next = 0.0
        self._stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stop and now >= self._next:
            self._next = now + CANCEL_CHECK_SECONDS
            ray = _ray()
            try:
                self._stop = bool(ray.get(self.flags.stopping.remote(self.job_id), timeout=10))
            except ray.exceptions.GetTimeoutError:  # a busy node: read it again later
                pass
            except ray.exceptions.RayError:  # the flags went with the worker that owned them: nobody listens
                self._stop = True
        return self._stop


def _train_task(job_id: int, model_text: str, data: _Shipped | _OnNodes, settings: TrainSettings, device: str,
                resume: bytes | None, flags: Any, threads: int) -> Iterator[_Started | _Epoch | _Ended]:
    """One job's training on a cluster node, as a streaming generator: where it runs, each finished epoch with
    its checkpoint, then how it ended. The training runs in a thread of its own, so that the generator can hand
    each epoch over as the trainer's callback delivers it."""
    import torch

    torch.set_num_threads(threads)
    yield _Started(os.getpid(), _ray().util.get_node_ip_address())
    out: messages_queue.Queue[_Epoch | _Ended] = messages_queue.Queue()

    def work() -> None:
        try:
            out.put(_Ended(_train_here(model_text, data, settings, device, resume, _FlagCheck(flags, job_id),
                                       lambda epoch, checkpoint: out.put(_Epoch(epoch, checkpoint)))))
        except Exception as e:  # the job's failure, told to the worker in words
            out.put(_Ended(None, describe_failure(e)))

    thread = threading.Thread(target=work, name=f"train-{job_id}", daemon=True)
    thread.start()
    while True:
        message = out.get()
        yield message
        if isinstance(message, _Ended):
            break
    thread.join()


def _train_here(model_text: str, data: _Shipped | _OnNodes, settings: TrainSettings, device: str,
                resume: bytes | None, should_stop: Callable[[], bool],
                on_epoch: Callable[[EpochResult, bytes], None]) -> TrainResult:
    from remapdsl.train.trainer import Checkpoint, train

    dataset = _node_data(data)
    with warnings.catch_warnings():
        # the object store's arrays are read-only; the trainer only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        result = train(parse_model(model_text), dataset, settings, device,
                       resume=Checkpoint.from_bytes(resume) if resume else None,
                       on_epoch=lambda epoch, checkpoint: on_epoch(epoch, checkpoint.to_bytes()),
                       should_stop=should_stop)
    return replace(result, checkpoint=None)


# --- the worker side -------------------------------------------------------------------------------------------


@dataclass
class _Flight:
    """A job this worker holds and a task of the cluster trains."""

    ready: Prepared
    stream: Any  # the task's ObjectRefGenerator
    last_checkpoint: bytes | None
    pid: int = 0  # where the task runs, once it says so
    node: str = ""
    stop_asked: float | None = None  # when the task was asked to stop (monotonic seconds)
    cancelled_by_user: bool = False
    lost: bool = False  # the lease ran out and the job went to another worker
    killed: bool = False  # the task did not stop in time and was killed

    @property
    def job(self) -> Job:
        return self.ready.job


class RayWorker(Worker):
    """A worker whose jobs train on a Ray cluster, several at once; `run()` loops as `Worker.run` does."""

    def __init__(self, store_path: str | os.PathLike[str], ray_options: RayOptions | None = None, *,
                 options: WorkerOptions | None = None, worker_id: str | None = None,
                 only: Collection[int] | None = None, on_event: Callable[[WorkerEvent], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.ray_options = ray_options or RayOptions()
        super().__init__(store_path, options=options, worker_id=worker_id, only=only, on_event=on_event, stop=stop)
        self.capacity = 0  # jobs in flight at once, known once connected
        self.resources: dict[str, float] = {}
        self.remote_pids: dict[int, int] = {}  # job id -> process of its latest task, once it started
        self._flights: dict[int, _Flight] = {}
        self._losses: dict[int, int] = {}  # job id -> its tasks lost in a row
        self._shipped: dict[str, Any] = {}  # data key -> the data set's reference in the object store
        self._leases = _Leases(self.store_path, self.id, self.options)
        self._started_ray = False
        self._flags: Any = None
        self._task: Any = None
        self._next_check = 0.0
        self._last_end: WorkerEvent | None = None

    def __enter__(self) -> RayWorker:
        return self

    # --- the cluster ----------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster (or start a Ray instance on this machine), check that it has the resources one job
        asks for and work out how many jobs to keep in flight."""
        if self._task is not None:
            return
        ray = _ray()
        if not ray.is_initialized():
            # a Ray instance started here reports nothing to anyone
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            address = self.ray_options.address or os.environ.get("RAY_ADDRESS") or None
            if address is not None:
                _check_reachable(address)
            # a task's own output stays in the cluster's logs; what a job says comes back as its messages
            here: dict[str, Any] = {"include_dashboard": False} if address is None else {}
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, **here)
            except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError and its own
                where = f"the Ray cluster at {address}" if address else "Ray"
                raise ExecutorError(f"cannot connect to {where}: {str(e).strip().splitlines()[0] if str(e) else e}"
                                    ) from None
            self._started_ray = True
        self.resources = {k: float(v) for k, v in ray.cluster_resources().items()}
        self.capacity = self._capacity()
        self._flags = ray.remote(num_cpus=0)(_StopFlags).remote()
        self._task = ray.remote(num_returns="streaming", max_retries=0)(_train_task).options(
            num_cpus=self.ray_options.cpus_per_job, num_gpus=self.ray_options.gpus_per_job)
        self._leases.start()

    def _capacity(self) -> int:
        o = self.ray_options
        cpus, gpus = self.resources.get("CPU", 0.0), self.resources.get("GPU", 0.0)
        if cpus < o.cpus_per_job:
            raise ExecutorError(f"each job asks for {o.cpus_per_job:g} CPU(s) but the Ray cluster has {cpus:g}; "
                                "lower --cpus-per-job or add nodes")
        if gpus < o.gpus_per_job:
            raise ExecutorError(f"each job asks for {o.gpus_per_job:g} GPU(s) but the Ray cluster has {gpus:g}; "
                                "lower --gpus-per-job (0 trains on CPUs) or add GPU nodes")
        fits = math.floor(cpus / o.cpus_per_job + 1e-9)
        if o.gpus_per_job > 0:
            fits = min(fits, math.floor(gpus / o.gpus_per_job + 1e-9))
        return o.max_in_flight or max(1, fits)

    def in_flight(self) -> list[int]:
        """The jobs whose tasks are out on the cluster."""
        return list(self._flights)

    def describe(self) -> str:
        """The cluster and how this worker uses it, for a status line."""
        o = self.ray_options
        nodes = sum(1 for k in self.resources if k.startswith("node:") and k != "node:__internal_head__")
        gpus = self.resources.get("GPU", 0.0)
        each = f"{o.cpus_per_job:g} CPU" + (f" and {o.gpus_per_job:g} GPU" if o.gpus_per_job else "")
        data = "read by each node from its path" if o.shared_data else "shipped once per data set"
        return (f"Ray cluster of {nodes} node(s), {self.resources.get('CPU', 0.0):g} CPU(s), {gpus:g} GPU(s): "
                f"up to {self.capacity} job(s) at once, {each} each; data {data}")

    def close(self) -> None:
        try:
            self._abandon()
            self._leases.stop()
            if self._flags is not None:
                with contextlib.suppress(Exception):  # it goes with the cluster anyway
                    _ray().kill(self._flags)
                self._flags = None
            if self._started_ray:
                _ray().shutdown()
                self._started_ray = False
            self._task = None
        finally:
            super().close()

    # --- the loop -------------------------------------------------------------------------------------------

    def run(self, *, until_empty: bool = False, max_jobs: int | None = None) -> int:
        """Keep the cluster busy with queued jobs until stopped (or, with `until_empty`, until none that this
        worker can take is queued or running); returns how many ended here (done, stopped, failed or
        cancelled; not lost or given back)."""
        self.connect()
        done = 0
        try:
            while True:
                claiming = not self.stop.is_set() and (max_jobs is None or done + len(self._flights) < max_jobs)
                if claiming:
                    room = self.capacity if max_jobs is None else min(self.capacity, max_jobs - done)
                    done += self._fill(room)
                if not self._flights:
                    if not claiming or (until_empty and not self._pending()):
                        break
                    self.stop.wait(self.options.poll_seconds)
                    continue
                done += self._advance()
        except BaseException:
            self._abandon()
            raise
        return done

    def run_one(self) -> WorkerEvent | None:
        """Claim the next job and train it on the cluster; its "end" event, or None when there was nothing to
        claim."""
        self.connect()
        self._last_end = None
        try:
            self._fill(1)
            while self._flights:
                self._advance()
        except BaseException:
            self._abandon()
            raise
        return self._last_end

    def _fill(self, room: int) -> int:
        """Claim and submit jobs until `room` are in flight; how many of those claimed ended at once (failed
        before their task could start)."""
        ended = 0
        for device in self.queue.queued_devices():
            self._cannot_use(device)
        while len(self._flights) < room and not self.stop.is_set():
            job = self.queue.claim(self.id, self.options.lease_seconds, only=self.only, accepts=self.accepts)
            if job is None:
                self._report_skipped()
                break
            self._leases.add(job.id)
            try:
                self._submit(job)
            except Exception as e:  # one broken job must not stop the worker
                self._leases.remove(job.id)
                reason = describe_failure(e)
                self._record_failure(job, reason)
                ended += self._ended(job, RunStatus.FAILED, reason)
        return ended

    def _submit(self, job: Job) -> None:
        ready = self._prepare(job)
        resume = ready.resume
        threads = max(1, int(self.ray_options.cpus_per_job))
        stream = self._task.remote(job.id, ready.model_text, self._data_source(ready), ready.settings,
                                   self._task_device(ready.device), resume[1] if resume else None, self._flags,
                                   threads)
        self._flights[job.id] = _Flight(ready, stream, resume[1] if resume else None)

    def _data_source(self, ready: Prepared) -> _Shipped | _OnNodes:
        key = ready.data.key
        if self.ray_options.shared_data:
            return _OnNodes(key, ready.data_text, ready.base_dir)
        if key not in self._shipped:
            # the data sets no job in flight uses leave the object store before another one comes in
            used = {f.ready.data.key for f in self._flights.values()}
            for old in [k for k in self._shipped if k not in used]:
                del self._shipped[old]
            self._shipped[key] = _ray().put(ready.data)
        return _Shipped(key, self._shipped[key])

    def _task_device(self, device: str) -> str:
        """The device a task trains on: the worker's own choice, else the job's, where `auto` means a GPU only
        when the task holds one (an unreserved GPU would be shared unknowingly with other tasks)."""
        if self.options.device:
            return self.options.device
        if device.strip().lower() == "auto" and self.ray_options.gpus_per_job == 0:
            return "cpu"
        return device

    def _cannot_use(self, device: str) -> str:
        if not self.options.device and device.strip().lower().startswith("cuda") and not self.ray_options.gpus_per_job:
            return "this worker asks Ray for no GPU per job (--gpus-per-job 0)"
        return ""

    def _advance(self) -> int:
        """Take what the tasks sent, or wait a moment for it; look at cancels and leases. How many jobs ended."""
        ray = _ray()
        streams = [f.stream for f in self._flights.values()]
        ready, _ = ray.wait(streams, num_returns=1, timeout=WAIT_SECONDS)
        if ready:
            ready, _ = ray.wait(streams, num_returns=len(streams), timeout=0)
        ended = 0
        for flight in [f for f in list(self._flights.values()) if any(f.stream is s for s in ready)]:
            ended += self._take(flight)
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CANCEL_CHECK_SECONDS
            self._check(now)
        return ended

    def _take(self, flight: _Flight) -> int:
        """Handle a task's next message; 1 when its job ended."""
        ray = _ray()
        try:
            message = ray.get(next(flight.stream))
        except StopIteration:
            return self._task_lost(flight, "its task ended without saying how")
        except ray.exceptions.RayError as e:
            return self._task_failed(flight, e)
        if isinstance(message, _Started):
            flight.pid, flight.node = message.pid, message.node
            self.remote_pids[flight.job.id] = message.pid
        elif isinstance(message, _Epoch):
            if not flight.lost:
                try:
                    self._take_epoch(flight, message)
                except Exception as e:  # the store cannot take the epoch (a full disk): the job fails, as here
                    return self._abort(flight, describe_failure(e))
        elif isinstance(message, _Ended):
            return self._take_end(flight, message)
        return 0

    def _take_epoch(self, flight: _Flight, message: _Epoch) -> None:
        try:
            self._record_epoch(flight.job, message.result, message.checkpoint)
        except LeaseLost:
            flight.lost = True
            self._ask_stop(flight)
            return
        flight.last_checkpoint = message.checkpoint
        self._losses.pop(flight.job.id, None)

    def _take_end(self, flight: _Flight, message: _Ended) -> int:
        job = flight.job
        self._land(flight)
        if flight.lost or self._leases.lost(job.id):
            return self._ended(job, "lost", "the lease ran out and the job went to another worker")
        if message.result is None:
            self._record_failure(job, message.failure)
            return self._ended(job, RunStatus.FAILED, message.failure)
        try:
            status, reason = self._finish(flight.ready, message.result, cancelled_by_user=flight.cancelled_by_user,
                                          model_state=self._final_weights(flight, message.result))
        except Exception as e:
            reason = describe_failure(e)
            self._record_failure(job, reason)
            return self._ended(job, RunStatus.FAILED, reason)
        return self._ended(job, status, reason)

    def _abort(self, flight: _Flight, reason: str) -> int:
        """Stop the task at once and fail its job with the reason (or give it back when even that cannot be
        recorded; see `Worker._record_failure`)."""
        self._land(flight)
        with contextlib.suppress(Exception):  # the task may have ended already
            _ray().cancel(flight.stream, force=True)
        self._record_failure(flight.job, reason)
        return self._ended(flight.job, RunStatus.FAILED, reason)

    def _final_weights(self, flight: _Flight, result: TrainResult) -> Any:
        """The weights of the last finished epoch, for the ONNX measurement of a finished training."""
        if not self.options.onnx or result.status not in FINISHED or flight.last_checkpoint is None:
            return None
        from remapdsl.train.trainer import Checkpoint

        return Checkpoint.from_bytes(flight.last_checkpoint).model_state

    def _task_failed(self, flight: _Flight, error: Exception) -> int:
        """A task that raised outside the training (Ray's errors): killed here, lost, or broken."""
        job = flight.job
        self._land(flight)
        if flight.lost or self._leases.lost(job.id):
            return self._ended(job, "lost", "the lease ran out and the job went to another worker")
        if flight.killed:
            if flight.cancelled_by_user:
                reason = (f"cancelled by the user (its task did not stop within {STOP_GRACE_SECONDS:g} s and was "
                          f"killed; the epochs it finished are kept)")
                self.queue.complete(job.id, self.id, RunStatus.CANCELLED, reason)
                return self._ended(job, RunStatus.CANCELLED, reason)
            self.queue.release(job.id, self.id)
            return self._ended(job, "released", "the worker stopped; the job is queued again")
        if type(error).__name__ in _LOST or any(c.__name__ in _LOST for c in type(error).__mro__):
            return self._task_lost(flight, _first_line(error))
        reason = f"its Ray task failed{_on(flight)}: {_first_line(error)}"
        self._record_failure(job, reason)
        return self._ended(job, RunStatus.FAILED, reason)

    def _task_lost(self, flight: _Flight, why: str) -> int:
        """The task's process or node went away: the job goes back to the queue to resume from its last stored
        checkpoint, unless its tasks were lost too often in a row."""
        job = flight.job
        self._land(flight)
        losses = self._losses[job.id] = self._losses.get(job.id, 0) + 1
        what = f"its Ray task was lost{_on(flight)} ({why})"
        if losses >= MAX_TASK_LOSSES:
            reason = (f"{what}; {losses} tasks in a row were lost, so it is not tried again: "
                      f"`remap queue retry {job.id}` queues it again")
            self._record_failure(job, reason)
            return self._ended(job, RunStatus.FAILED, reason)
        self.queue.release(job.id, self.id)
        return self._ended(job, "released", f"{what}; queued again to resume from its last finished epoch")

    def _check(self, now: float) -> None:
        """Pass on cancels, lost leases and the worker's own stop to the tasks; kill those that overstay."""
        for flight in list(self._flights.values()):
            job_id = flight.job.id
            if not flight.lost and self._leases.lost(job_id):
                flight.lost = True
                self._ask_stop(flight)
            if not flight.cancelled_by_user and not self.stop.is_set() and self.queue.cancel_requested(job_id):
                flight.cancelled_by_user = True
                self._ask_stop(flight)
            if self.stop.is_set():
                self._ask_stop(flight)
            if flight.stop_asked is not None and not flight.killed and now - flight.stop_asked > STOP_GRACE_SECONDS:
                flight.killed = True
                _ray().cancel(flight.stream, force=True)

    def _ask_stop(self, flight: _Flight) -> None:
        if flight.stop_asked is None:
            flight.stop_asked = time.monotonic()
            self._flags.stop.remote(flight.job.id)

    def _land(self, flight: _Flight) -> None:
        """The flight is over: its job leaves the heartbeats and its flag is cleared for a later task."""
        self._flights.pop(flight.job.id, None)
        self._leases.remove(flight.job.id)
        if flight.stop_asked is not None:
            self._flags.clear.remote(flight.job.id)

    def _ended(self, job: Job, status: str, reason: str) -> int:
        event = WorkerEvent("end", self.queue.require(job.id), status=status, reason=reason)
        self._last_end = event
        self._emit(event)
        return int(status in ENDED)

    def _abandon(self) -> None:
        """The worker goes away with jobs in flight: kill their tasks and give the jobs back to the queue, which
        resumes them from their last stored checkpoint."""
        if not self._flights:
            return
        ray = _ray()
        for flight in list(self._flights.values()):
            self._flights.pop(flight.job.id, None)
            self._leases.remove(flight.job.id)
            with contextlib.suppress(Exception):  # the cluster may be gone already; the task went with it
                ray.cancel(flight.stream, force=True)
            with contextlib.suppress(Exception):  # the lease runs out and another worker takes the job
                self.queue.release(flight.job.id, self.id)


def train_jobs(store_path: str | os.PathLike[str], job_ids: Sequence[int], ray_options: RayOptions, *,
               options: WorkerOptions | None = None, on_event: Callable[[WorkerEvent], None] | None = None,
               on_connect: Callable[[RayWorker], None] | None = None) -> int:
    """Train the given queued jobs of a store on a Ray cluster until none of them is left to train; returns how
    many ended (done, stopped, failed or cancelled). `on_connect` hears the worker once it joined the cluster."""
    with RayWorker(store_path, ray_options, options=options, only=job_ids, on_event=on_event) as worker:
        worker.connect()
        if on_connect is not None:
            on_connect(worker)
        return worker.run(until_empty=True)


class _Leases:
    """Extends the leases of every job a worker holds, from a thread of its own with its own connection."""

    def __init__(self, store_path: Path, worker: str, options: WorkerOptions) -> None:
        self.store_path = store_path
        self.worker = worker
        self.options = options
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # job id -> the hold's number: a beat answers for the hold it was for
        self._lost: set[int] = set()
        self._holds = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="heartbeats", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def add(self, job_id: int) -> None:
        with self._lock:
            self._holds += 1
            self._held[job_id] = self._holds
            self._lost.discard(job_id)

    def remove(self, job_id: int) -> None:
        with self._lock:
            self._held.pop(job_id, None)
            self._lost.discard(job_id)

    def lost(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._lost

    def _loop(self) -> None:
        with Store(self.store_path) as store:
            queue = Queue(store)
            while not self._done.wait(self.options.heartbeat_seconds):
                with self._lock:
                    held = list(self._held.items())
                for job_id, hold in held:
                    try:
                        alive = queue.heartbeat(job_id, self.worker, self.options.lease_seconds)
                    except Exception:  # a missed beat is not fatal; the lease allows for a few
                        continue
                    if not alive:
                        with self._lock:
                            if self._held.get(job_id) == hold:
                                self._lost.add(job_id)


def _check_reachable(address: str) -> None:
    """Refuse an address nothing listens on at once: Ray itself waits minutes for it before giving up."""
    host, colon, port = address.split("://", 1)[-1].rpartition(":")
    if not colon or not port.isdigit() or not host:
        return  # `auto` and other forms Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except (OSError, ValueError, OverflowError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {why}; start it there with "
                            "`ray start --head`, or check the address") from None


def _on(flight: _Flight) -> str:
    return f" on {flight.node} (process {flight.pid})" if flight.pid else ""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
