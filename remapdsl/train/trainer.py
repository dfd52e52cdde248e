"""Train one model on one data set: the fast path for many small models, on CUDA when there is one.

The data lives on the device as tensors and each step slices a seeded permutation, so no DataLoader
runs per step. Images and convolutions use the channels-last layout; on CUDA the model also runs under
autocast (bfloat16 where supported, else float16 with a gradient scaler). The loss is cross-entropy on
logits. Small models on a CPU are fastest with one torch thread per process (see `remapdsl.jobs.local`).
Nothing is read back from the device inside an epoch: losses and predictions are gathered and checked
once at its end, where a non-finite loss ends the run as failed and names the epoch and step where it
appeared.

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
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train `model` on `data`; a model that cannot be built or a non-finite loss gives status "failed".

    `info` is the model's analysis on this data, when the caller has one; without it the model is analysed here.
    """
    import torch

    started = time.perf_counter()
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
        run = _Run(net, data, settings, dev, widest)
        try:
            return run.execute(resume, on_epoch, should_stop, info.param_count, info.flops, started)
        except RuntimeError as e:
            # Running out of memory is the model's failure, not the worker's: the queue goes on.
            if not isinstance(e, torch.cuda.OutOfMemoryError) and "can't allocate memory" not in str(e):
                raise
            release_device_data()
            if dev.startswith("cuda"):
                torch.cuda.empty_cache()
            return _unrun("failed", f"out of memory on {dev}: {str(e).splitlines()[0]}", dev, started,
                          run.last_checkpoint or resume, run.history, info.param_count, info.flops)


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
    history: tuple[EpochResult, ...] = ()
    last_checkpoint: Checkpoint | None = None
    # The evaluation of the last finished epoch's weights.
    final: _Evaluation | None = None
    # Whether the data sits on the device (else batches are copied there step by step).
    resident: bool = True
    channels_last: bool = False
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

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
        optimizer = _optimizer(self.net, self.settings, cuda)
        scaler = None
        amp: Callable[[], Any] = contextlib.nullcontext
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            amp = functools.partial(torch.autocast, "cuda", dtype=dtype)
            if dtype == torch.float16:
                scaler = torch.amp.GradScaler("cuda")
        batches = torch.Generator()
        batches.manual_seed(self.settings.seed)
        best, bad, first = math.inf, 0, 1
        if resume is not None:
            self.net.load_state_dict(resume.model_state)
            optimizer.load_state_dict(resume.optimizer_state)
            _set_rng(resume.rng_state, batches, self.device)
            best, bad, first = resume.best_val_loss, resume.bad_epochs, resume.epoch + 1
            self.last_checkpoint = resume
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
                       time.perf_counter() - started, self.last_checkpoint)

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
        from torch.nn import functional

        x, y = self.tensors["x_train"], self.tensors["y_train"]
        n, b = len(y), self.settings.batch
        # A last batch of one example would break batch normalisation's statistics; it sits out this epoch.
        used = n - 1 if n % b == 1 and n > 1 else n
        order = torch.randperm(n, generator=batches)
        if self.resident:
            order = order.to(self.device)
        self.net.train()
        losses: list[torch.Tensor] = []
        predicted: list[torch.Tensor] = []
        for start in range(0, used, b):
            if should_stop is not None and should_stop():
                return f"cancelled during epoch {epoch}, before step {start // b + 1}"
            idx = order[start:min(start + b, used)]
            xb, yb = x[idx], y[idx]  # indexing keeps the channels-last layout; index_select does not
            if not self.resident:
                xb, yb = self._to_device(xb, yb)
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
            losses.append(loss.detach())
            predicted.append(logits.detach().argmax(1))
        if not losses:
            return math.nan, math.nan
        step_losses = torch.stack(losses).float().cpu()
        finite = torch.isfinite(step_losses)
        if not bool(finite.all()):
            step = int((~finite).nonzero()[0, 0]) + 1
            return f"loss became {float(step_losses[step - 1])} at epoch {epoch}, step {step}"
        sizes = torch.full((len(losses),), float(b))
        sizes[-1] = used - b * (len(losses) - 1)
        truth = y.index_select(0, order[:used].to(y.device))
        correct = (torch.cat(predicted).to(y.device) == truth).sum().item()
        return float((step_losses * sizes).sum() / used), correct / used

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


def _optimizer(net: nn.Module, s: TrainSettings, cuda: bool) -> torch.optim.Optimizer:
    import torch

    params = list(net.parameters())
    # The fused kernels do one pass over all parameters per step: fewer dispatches for small models.
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay,
                           fused=cuda or None)


def _rng_state(batches: torch.Generator, device: str) -> dict[str, Any]:
    import torch

    state = {"cpu": torch.get_rng_state(), "batches": batches.get_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def _set_rng(state: dict[str, Any], batches: torch.Generator, device: str) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    batches.set_state(state["batches"])
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
            param_count: int, flops: int, device: str, seconds: float, checkpoint: Checkpoint | None) -> TrainResult:
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
                       seconds, checkpoint)


def _unrun(status: str, reason: str, device: str, started: float, checkpoint: Checkpoint | None,
           history: tuple[EpochResult, ...] = (), param_count: int = 0, flops: int = 0) -> TrainResult:
    return TrainResult(status, reason, history, None, None, None, param_count, flops, device,
                       time.perf_counter() - started, checkpoint)
