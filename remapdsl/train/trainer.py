"""Train one model on one data set: the fast path for many small models, on CUDA when there is one.

The data lives on the device as tensors and each step slices a seeded permutation drawn on the device, so
no DataLoader runs per step. Images and convolutions use the channels-last layout; on CUDA the model also
runs under autocast (bfloat16 where supported, else float16 with a gradient scaler). The loss is
cross-entropy on logits. Small models on a CPU are fastest with one torch thread per process (see
`remapdsl.jobs.local`). Nothing is read back from the device inside an epoch: each step's loss and the count
of correct predictions accumulate in device tensors, read once at the epoch's end, where a non-finite loss
ends the run as failed and names the epoch and step where it appeared.

A small model cannot keep a GPU busy one kernel launch at a time, so on CUDA the whole training step (batch
gathering, forward, backward, optimizer, metrics) is captured once in a CUDA graph and replayed, where
`remapdsl.train.execution.graph_decision` allows it; the run records why when it does not.

Every finished epoch yields a Checkpoint holding the weights, optimizer and random states, so that a
run resumed from it continues exactly as the uninterrupted run would have (bit for bit on CPU).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from remapdsl.language.analysis import ModelInfo, analyze_model
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import ModelSpec
from remapdsl.train.data import Dataset
from remapdsl.train.execution import WARMUP_STEPS, Execution, autocast_dtype, check_graph_switch, graph_decision
from remapdsl.train.torch_model import ModelBuildError, build_module, check_buildable

if TYPE_CHECKING:
    import torch
    from torch import nn

# Activations held at once while evaluating: bounds the evaluation batch of large models.
_EVAL_ELEMENTS = 1 << 25
# Share of free GPU memory the data set may take to be held on the device.
_RESIDENT_SHARE = 0.5


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float


@dataclass
class Checkpoint:
    """Everything needed to resume identically after the last finished epoch (tensors on the CPU)."""

    epoch: int
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    rng_state: dict[str, Any]
    best_val_loss: float
    bad_epochs: int

    def to_bytes(self) -> bytes:
        import torch

        buf = io.BytesIO()
        torch.save({f.name: getattr(self, f.name) for f in fields(self)}, buf)
        return buf.getvalue()

    @staticmethod
    def from_bytes(b: bytes) -> Checkpoint:
        import torch

        try:
            state = torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
            return Checkpoint(**state)
        except Exception as e:  # torch raises many types for foreign or truncated bytes
            raise ValueError(f"not a training checkpoint: {e}") from e


@dataclass(frozen=True)
class TrainResult:
    status: str  # "done" | "stopped" (early stopping) | "failed" | "cancelled"
    reason: str  # "" or why
    epochs: tuple[EpochResult, ...]  # the epochs run in this call, after the resume point
    confusion: np.ndarray | None  # K x K, rows = true class, on the validation set with the final weights
    per_class_accuracy: np.ndarray | None
    predictions: np.ndarray | None  # predicted class per validation example, uint8 (int16 above 256 classes)
    param_count: int
    flops: int
    device: str
    seconds: float
    checkpoint: Checkpoint | None  # the last finished epoch
    execution: Execution | None = None  # precision and CUDA graphs, when the run got as far as deciding them


def resolve_device(device: str = "auto") -> str:
    """"cuda" when available for "auto", else "cpu"; asking for CUDA without it is a ValueError."""
    wanted = (device or "auto").strip().lower()
    if wanted == "cpu":  # no torch import: a process that only hands work to others need not wait for one
        return "cpu"
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" or wanted.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise ValueError(f"device '{device}' was asked for, but torch {torch.__version__} ({build}) sees no "
                             "CUDA device; use --device cpu or --device auto")
        index = wanted.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device '{device}' does not exist; this machine has cuda:0.."
                             f"cuda:{torch.cuda.device_count() - 1}")
        return wanted
    raise ValueError(f"unknown device '{device}'; expected auto, cpu, cuda or cuda:N")


def train(model: ModelSpec, data: Dataset, settings: TrainSettings, device: str = "auto", *,
          info: ModelInfo | None = None,
          resume: Checkpoint | None = None,
          on_epoch: Callable[[EpochResult, Checkpoint], None] | None = None,
          should_stop: Callable[[], bool] | None = None, graphs: str = "auto") -> TrainResult:
    """Train `model` on `data`; a model that cannot be built or a non-finite loss gives status "failed".

    `info` is the model's analysis on this data, when the caller has one; without it the model is analysed here.
    `graphs` ("auto" or "off") says whether the step may be captured in a CUDA graph on a GPU.
    """
    import torch

    started = time.perf_counter()
    graphs = check_graph_switch(graphs)
    dev = resolve_device(device)
    if info is None:
        info = analyze_model(model, data.info())
    try:
        check_buildable(info, data.num_classes)
    except ModelBuildError as e:
        return _unrun("failed", str(e), dev, started, resume)
    if len(data.y_train) == 0 or len(data.y_val) == 0:
        # no batch would run, and the training would end at once looking done
        which = "training" if len(data.y_train) == 0 else "validation"
        return _unrun("failed", f"the data set {data.name} has no {which} examples; there is nothing to "
                      f"{'train on' if which == 'training' else 'validate on'}", dev, started, resume)
    fork_devices = [torch.device(dev).index or 0] if dev.startswith("cuda") else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(settings.seed)
        net = build_module(info)
        widest = max(_numel(shape) for li in info.layers for shape in (li.input_shape, li.output_shape) if shape)
        run = _Run(net, data, settings, dev, widest, graphs)
        try:
            return run.execute(resume, on_epoch, should_stop, info.param_count, info.flops, started)
        except RuntimeError as e:
            # Running out of memory is the model's failure, not the worker's: the queue goes on.
            if not isinstance(e, torch.cuda.OutOfMemoryError) and "can't allocate memory" not in str(e):
                raise
            release_device_data()
            if dev.startswith("cuda"):
                torch.cuda.empty_cache()
            return _unrun("failed", f"{OUT_OF_MEMORY} on {dev}: {str(e).splitlines()[0]}", dev, started,
                          run.last_checkpoint or resume, run.history, info.param_count, info.flops, run.execution)


# The words a failed run's reason starts with when the device ran out of memory (the pool shrinks on them).
OUT_OF_MEMORY = "out of memory"


def is_out_of_memory(reason: str) -> bool:
    return reason.startswith(OUT_OF_MEMORY)


# --- the training loop -------------------------------------------------------------------------------------


@dataclass
class _Evaluation:
    loss: float
    acc: float
    predictions: np.ndarray


@dataclass
class _Run:
    net: nn.Module
    data: Dataset
    settings: TrainSettings
    device: str
    widest: int  # largest activation of one example, in elements
    graphs: str = "auto"
    history: tuple[EpochResult, ...] = ()
    last_checkpoint: Checkpoint | None = None
    # The evaluation of the last finished epoch's weights.
    final: _Evaluation | None = None
    # Whether the data sits on the device (else batches are copied there step by step).
    resident: bool = True
    channels_last: bool = False
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    execution: Execution | None = None
    metrics: _Metrics | None = None
    captured: _CapturedStep | None = None

    def execute(self, resume: Checkpoint | None, on_epoch: Callable[[EpochResult, Checkpoint], None] | None,
                should_stop: Callable[[], bool] | None, param_count: int, flops: int,
                started: float) -> TrainResult:
        import torch

        cuda = self.device.startswith("cuda")
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.net.to(self.device)
        # Channels-last convolutions and pooling are faster on GPUs and on the CPU alike (up to 1.6x for the
        # larger sampled models on one CPU thread); the layout does not change the module or its state dict.
        self.channels_last = len(self.data.input_shape) == 3
        if self.channels_last:
            # Module.to's stubs omit memory_format, which it has accepted since torch 1.5.
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._place_data()
        precision = autocast_dtype(self.device, cuda and torch.cuda.is_bf16_supported())
        first = resume.epoch + 1 if resume is not None else 1
        n, b = len(self.data.y_train), self.settings.batch
        steps = math.ceil(_used(n, b) / b)
        why_not = graph_decision(self.graphs, device=self.device, resident=self.resident, autocast=precision,
                                 steps=steps * max(0, self.settings.epochs - first + 1))
        optimizer = _optimizer(self.net, self.settings, cuda, capturable=not why_not)
        scaler = None
        amp: Callable[[], Any] = contextlib.nullcontext
        if cuda:
            # No cache of cast weights: a CUDA graph must recast them at every replay, and eager steps lose
            # nothing (each weight is cast once per forward pass either way).
            amp = functools.partial(torch.autocast, "cuda", dtype=getattr(torch, precision), cache_enabled=False)
            if precision == "float16":
                scaler = torch.amp.GradScaler("cuda")
        # The permutation is drawn where the data lies: on a GPU no index crosses from the host.
        batches = torch.Generator(device=self.device if self.resident else "cpu")
        batches.manual_seed(self.settings.seed)
        best, bad = math.inf, 0
        if resume is not None:
            self.net.load_state_dict(resume.model_state)
            _load_optimizer(optimizer, resume.optimizer_state)
            _set_rng(resume.rng_state, batches, self.device, self.settings.seed * 100_003 + resume.epoch)
            best, bad = resume.best_val_loss, resume.bad_epochs
            self.last_checkpoint = resume
        self.metrics = _Metrics.on(steps, self.device)
        if not why_not and first <= self.settings.epochs:
            try:
                self.captured = _CapturedStep.capture(self, optimizer, amp, steps)
            except RuntimeError as e:
                # Out of memory during capture is the model's failure like any other out of memory.
                if isinstance(e, torch.cuda.OutOfMemoryError):
                    raise
                why_not = f"capturing the step failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        self.execution = Execution(self.device, precision, self.captured is not None, why_not)
        status, reason = "done", ""
        for epoch in range(first, self.settings.epochs + 1):
            t0 = time.perf_counter()
            outcome = self._train_epoch(epoch, optimizer, scaler, amp, batches, should_stop)
            if isinstance(outcome, str):
                status = "cancelled" if outcome.startswith("cancelled") else "failed"
                reason = outcome
                break
            train_loss, train_acc = outcome
            evaluation = self._evaluate(amp)
            if not math.isfinite(evaluation.loss):
                status, reason = "failed", f"validation loss became {evaluation.loss} at epoch {epoch}"
                break
            if evaluation.loss < best:
                best, bad = evaluation.loss, 0
            else:
                bad += 1
            result = EpochResult(epoch, train_loss, train_acc, evaluation.loss, evaluation.acc,
                                 time.perf_counter() - t0)
            checkpoint = Checkpoint(epoch, _cpu_copy(self.net.state_dict()), _cpu_copy(optimizer.state_dict()),
                                    _rng_state(batches, self.device), best, bad)
            self.history = (*self.history, result)
            self.last_checkpoint = checkpoint
            self.final = evaluation
            if on_epoch is not None:
                on_epoch(result, checkpoint)
            if self.settings.patience and bad >= self.settings.patience and epoch < self.settings.epochs:
                status = "stopped"
                reason = (f"validation loss did not improve for {bad} epoch(s) (best {best:.4g}); "
                          f"stopped after epoch {epoch}")
                break
        if self.final is None and self.last_checkpoint is not None:
            # No epoch finished in this call (resumed at the end, or ended during the first epoch):
            # the report describes the weights of the last finished epoch.
            self.net.load_state_dict(self.last_checkpoint.model_state)
            self.final = self._evaluate(amp)
        return _result(status, reason, self.history, self.final, self.data, param_count, flops, self.device,
                       time.perf_counter() - started, self.last_checkpoint, self.execution)

    def _place_data(self) -> None:
        key = (id(self.data), self.device, self.channels_last)
        if _placement.get("key") != key:
            release_device_data()
            _placement.update(key=key, data=self.data, tensors=_place(self.data, self.device, self.channels_last))
        self.tensors = _placement["tensors"]
        self.resident = self.tensors["x_train"].device.type == _device_type(self.device)

    def _to_device(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch taken from host memory, on its way to the GPU (data too large to sit there)."""
        import torch

        xb = xb.to(self.device, non_blocking=True)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb.to(self.device, non_blocking=True)

    def _train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer, scaler: Any, amp: Callable[[], Any],
                     batches: torch.Generator, should_stop: Callable[[], bool] | None) -> tuple[float, float] | str:
        """Mean loss and accuracy over the epoch, or why it ended early ("cancelled ..." or a failure)."""
        import torch

        x, y = self.tensors["x_train"], self.tensors["y_train"]
        n, b = len(y), self.settings.batch
        used = _used(n, b)
        order = torch.randperm(n, generator=batches, device=batches.device)
        metrics = self.metrics
        assert metrics is not None
        metrics.reset()
        self.net.train()
        captured = self.captured
        if captured is not None:
            captured.start_epoch(order)
        for step, start in enumerate(range(0, used, b)):
            if should_stop is not None and should_stop():
                return f"cancelled during epoch {epoch}, before step {step + 1}"
            if captured is not None:
                captured.replay(step)
                continue
            idx = order[start:min(start + b, used)]
            xb, yb = x[idx], y[idx]  # indexing keeps the channels-last layout; index_select does not
            if not self.resident:
                xb, yb = self._to_device(xb, yb)
            self._step(xb, yb, optimizer, scaler, amp)
        if used == 0:
            return math.nan, math.nan
        return metrics.read(epoch, used, b)

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: Any,
              amp: Callable[[], Any]) -> None:
        """One training step on a batch, its loss and correct predictions added to the epoch's metrics; the same
        code runs eagerly and under CUDA graph capture (without a scaler there)."""
        from torch.nn import functional

        with amp():
            logits = self.net(xb)
            loss = functional.cross_entropy(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        assert self.metrics is not None
        self.metrics.add(loss.detach(), logits.detach(), yb)

    def _evaluate(self, amp: Callable[[], Any]) -> _Evaluation:
        """Loss, accuracy and predictions over the whole validation set, in large batches."""
        import torch
        from torch.nn import functional

        x, y = self.tensors["x_val"], self.tensors["y_val"]
        n = len(y)
        size = max(self.settings.batch, min(n, _EVAL_ELEMENTS // max(1, self.widest)))
        self.net.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        preds: list[torch.Tensor] = []
        with torch.inference_mode(), amp():
            for start in range(0, n, size):
                xb, yb = x[start:start + size], y[start:start + size]
                if not self.resident:
                    xb, yb = self._to_device(xb, yb)
                logits = self.net(xb).float()
                total += functional.cross_entropy(logits, yb, reduction="sum")
                preds.append(logits.argmax(1))
        predictions = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
        loss = float(total) / max(1, n)
        acc = float((predictions == self.data.y_val).mean()) if n else math.nan
        return _Evaluation(loss, acc, predictions)


@dataclass
class _Metrics:
    """An epoch's loss per step and count of correct predictions, accumulated on the device and read once."""

    losses: torch.Tensor  # float32, one slot per step
    correct: torch.Tensor  # int64 scalar
    step: torch.Tensor  # int64 scalar: the slot of the next step's loss

    @staticmethod
    def on(steps: int, device: str) -> _Metrics:
        import torch

        return _Metrics(torch.zeros(max(1, steps), device=device), torch.zeros((), dtype=torch.int64, device=device),
                        torch.zeros((), dtype=torch.int64, device=device))

    def reset(self) -> None:
        self.losses.zero_()
        self.correct.zero_()
        self.step.zero_()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor) -> None:
        # a device-side slot index, not a Python one, so that a captured step writes where it is replayed
        self.losses.index_copy_(0, self.step.view(1), loss.view(1))
        self.step.add_(1)
        self.correct.add_((logits.argmax(1) == yb).sum())

    def read(self, epoch: int, used: int, b: int) -> tuple[float, float] | str:
        """Mean loss and accuracy over `used` examples in batches of `b`, or where the loss became non-finite."""
        import torch

        steps = math.ceil(used / b)
        # one copy from the device; float64 holds both the float32 losses and the count exactly
        packed = torch.cat([self.losses[:steps].double(), self.correct.view(1).double()]).cpu()
        step_losses = packed[:steps].float()
        finite = torch.isfinite(step_losses)
        if not bool(finite.all()):
            step = int((~finite).nonzero()[0, 0]) + 1
            return f"loss became {float(step_losses[step - 1])} at epoch {epoch}, step {step}"
        sizes = torch.full((steps,), float(b))
        sizes[-1] = used - b * (steps - 1)
        return float((step_losses * sizes).sum() / used), int(packed[-1]) / used


@dataclass
class _CapturedStep:
    """The training step captured in CUDA graphs: one for full batches and one for an epoch's shorter last batch
    (its size is the same every epoch), so that an epoch is a replay per step and nothing else.

    A graph reads its batch through static tensors: the epoch's permutation, copied in at the epoch's start,
    and a cursor on the device that each replay advances.
    """

    order: torch.Tensor
    cursor: torch.Tensor
    full: Any  # torch.cuda.CUDAGraph | None: None when an epoch is one short batch
    tail: Any  # torch.cuda.CUDAGraph | None: None when the last batch is a full one
    steps: int

    def start_epoch(self, order: torch.Tensor) -> None:
        self.order.copy_(order)
        self.cursor.zero_()

    def replay(self, step: int) -> None:
        graph = self.tail if self.tail is not None and step == self.steps - 1 else self.full
        graph.replay()

    @staticmethod
    def capture(run: _Run, optimizer: torch.optim.Optimizer, amp: Callable[[], Any], steps: int) -> _CapturedStep:
        import torch

        x, y = run.tensors["x_train"], run.tensors["y_train"]
        n, b = len(y), run.settings.batch
        tail = _used(n, b) - b * (steps - 1)
        dev = torch.device(run.device)
        order = torch.arange(n, device=dev)
        cursor = torch.zeros((), dtype=torch.int64, device=dev)
        # a full batch's graph when an epoch has one, and the shorter last batch's when it differs
        sizes = ([b] if steps > 1 or tail == b else []) + ([tail] if tail != b else [])
        offsets = {size: torch.arange(size, device=dev) for size in sizes}

        def step(size: int) -> None:
            idx = order[cursor + offsets[size]]
            run._step(x[idx], y[idx], optimizer, None, amp)
            cursor.add_(size)

        # The warm-up steps train on real batches: the weights, statistics and optimizer state are put back
        # afterwards, in place, since the graphs read and write these very tensors.
        saved_model = {k: v.detach().clone() for k, v in run.net.state_dict().items()}
        saved_optimizer = {p: {k: v.clone() for k, v in st.items() if isinstance(v, torch.Tensor)}
                           for p, st in optimizer.state.items()}
        graphs: dict[int, Any] = {}
        run.net.train()  # the graphs keep the mode they were captured in: dropout on, batch statistics
        try:
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side):
                for size in sizes:
                    for _ in range(WARMUP_STEPS):
                        cursor.zero_()
                        step(size)
            torch.cuda.current_stream(dev).wait_stream(side)
            for size in sizes:
                cursor.zero_()
                graph = torch.cuda.CUDAGraph()
                # thread-local: the heartbeat thread may use SQLite meanwhile; it never touches CUDA
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    step(size)
                graphs[size] = graph
        finally:
            with torch.no_grad():
                for k, v in run.net.state_dict().items():
                    v.copy_(saved_model[k])
                for p, st in optimizer.state.items():
                    before = saved_optimizer.get(p, {})
                    for k, v in st.items():
                        if isinstance(v, torch.Tensor) and k in before:
                            v.copy_(before[k])
                        elif isinstance(v, torch.Tensor):  # created by the warm-up: zero, as in a fresh optimizer
                            v.zero_()
            assert run.metrics is not None
            run.metrics.reset()
        return _CapturedStep(order, cursor, graphs.get(b), graphs.get(tail) if tail != b else None, steps)


# The data set last placed on a device, kept for the next run in the same process: a worker trains many
# models on one data set, and copying (or pinning) it again for each would cost more than a small model.
# The Dataset itself is held too, so that its id cannot be reused by another one.
_placement: dict[str, Any] = {}


def release_device_data() -> None:
    """Frees the copy of the data set kept on the device between runs."""
    _placement.clear()


def _device_type(device: str) -> str:
    return device.partition(":")[0]


def _place(data: Dataset, device: str, channels_last: bool) -> dict[str, torch.Tensor]:
    """The data as tensors on the device; on a GPU only when it takes under half the free memory, else
    pinned in host memory and copied batch by batch."""
    import torch

    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val, "y_val": data.y_val}
    host = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    resident = True
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        resident = sum(t.numel() * t.element_size() for t in host.values()) < _RESIDENT_SHARE * free
    out = {}
    for k, t in host.items():
        if resident:
            t = t.to(device)
            if channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
        else:
            t = t.pin_memory()
        out[k] = t
    return out


def _used(n: int, b: int) -> int:
    """Examples trained on per epoch: a last batch of one example would break batch normalisation's
    statistics, so it sits out."""
    return n - 1 if n % b == 1 and n > 1 else n


# The optimizer's own execution flags, which a checkpoint written elsewhere (a GPU run's, say) must not override.
_EXECUTION_FLAGS = ("fused", "capturable", "foreach", "differentiable")


def _optimizer(net: nn.Module, s: TrainSettings, cuda: bool, *, capturable: bool = False) -> torch.optim.Optimizer:
    import torch

    params = list(net.parameters())
    # The fused kernels do one pass over all parameters per step: fewer dispatches for small models. A
    # capturable optimizer keeps its step count on the device, as a CUDA graph needs.
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, fused=True, capturable=capturable)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, fused=True, capturable=capturable)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay,
                           fused=cuda or None)


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a checkpoint's optimizer state, keeping this optimizer's execution flags (a capturable GPU run's
    state resumes on a CPU, and a CPU run's under CUDA graphs)."""
    own = [{k: g[k] for k in _EXECUTION_FLAGS if k in g} for g in optimizer.param_groups]
    groups = [{**saved, **mine} for saved, mine in zip(state["param_groups"], own, strict=False)]
    # a copy: the optimizer keeps the tensors it is given where their device and type fit, and would change
    # the caller's checkpoint as it trains
    optimizer.load_state_dict({**state, "state": _cpu_copy(state["state"]), "param_groups": groups})


def _rng_state(batches: torch.Generator, device: str) -> dict[str, Any]:
    import torch

    state = {"cpu": torch.get_rng_state(), "batches": batches.get_state(), "batches_device": batches.device.type}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def _set_rng(state: dict[str, Any], batches: torch.Generator, device: str, reseed: int) -> None:
    """Restore the random states of a checkpoint. The batch order's generator state belongs to one kind of
    device; a run resumed on another kind continues with an order seeded from `reseed`."""
    import torch

    torch.set_rng_state(state["cpu"])
    if state.get("batches_device", "cpu") == batches.device.type:
        batches.set_state(state["batches"])
    else:
        batches.manual_seed(reseed)
    if device.startswith("cuda") and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))


def _cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor on the CPU: the live state keeps changing as training goes on."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def _result(status: str, reason: str, history: tuple[EpochResult, ...], final: _Evaluation | None, data: Dataset,
            param_count: int, flops: int, device: str, seconds: float, checkpoint: Checkpoint | None,
            execution: Execution | None) -> TrainResult:
    confusion = per_class = predictions = None
    if final is not None:
        k = data.num_classes
        pred = final.predictions.astype(np.int64)
        confusion = np.bincount(data.y_val * k + pred, minlength=k * k).reshape(k, k)
        support = confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
        predictions = pred.astype(np.uint8 if k <= 256 else np.int16)
    return TrainResult(status, reason, history, confusion, per_class, predictions, param_count, flops, device,
                       seconds, checkpoint, execution)


def _unrun(status: str, reason: str, device: str, started: float, checkpoint: Checkpoint | None,
           history: tuple[EpochResult, ...] = (), param_count: int = 0, flops: int = 0,
           execution: Execution | None = None) -> TrainResult:
    return TrainResult(status, reason, history, None, None, None, param_count, flops, device,
                       time.perf_counter() - started, checkpoint, execution)
