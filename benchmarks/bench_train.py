"""Training throughput: the local executor's process pool against a plain PyTorch loop, same models, same run.

    python benchmarks/bench_train.py [--models 100] [--epochs 10] [--batch 128] [--workers N] [--repeat 1]
                                     [--seed 0] [--json out.json]
    python benchmarks/bench_train.py --gpu      # CIFAR-10-shaped synthetic data (50,000 x 3 x 32 x 32) on CUDA
    python benchmarks/bench_train.py --dry-run  # the --gpu run's code on the CPU: 2 models x 1 epoch, 2,400 images

The population is the sampler's (`remapdsl.search.sampler.sample_models`) for the data's input shape. Ours: the
models queued in a new store, the most expensive first, and trained by the local executor as `remap train`
trains them (one process per core, one torch thread each, data held as tensors, seeded index batches, full
validation each epoch, each epoch and its checkpoint written to the store; no ONNX measurement). Reference:
one model after another in this process with torch's default threads, the same architecture built from
torch's stock modules, a DataLoader over a TensorDataset with shuffling, Adam, cross-entropy, and a
validation pass per epoch through a second DataLoader — the loop most training scripts start from.
Throughput is model-epochs per second over the whole population, start-up of the pool included.
The synthetic data of --gpu is written once to an .npz file, which the worker processes load.

With --gpu (and --dry-run) it also reports model-epochs per GPU-minute, the GPU's name and utilisation (sampled
through pynvml or nvidia-smi while each side runs), how many runs captured their step in CUDA graphs (and why
the others did not), and where the time goes per model size: a model is arithmetic-bound when its FLOPs at the
device's measured matmul peak account for at least half of its step time, launch-bound otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remapdsl.jobs.enqueue import Checked, enqueue_models
from remapdsl.jobs.local import default_workers, train_jobs
from remapdsl.jobs.worker import WorkerOptions
from remapdsl.language.analysis import analyze_model
from remapdsl.language.datasets import DatasetInfo
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Arg, DataSpec, Document, ModelSpec
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from remapdsl.train.data import Dataset, load_dataset
from remapdsl.train.memory import model_job_bytes
from remapdsl.train.torch_model import build_model
from remapdsl.train.trainer import resolve_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_flops import cpu_peak, matmul_gflops


@dataclass(frozen=True)
class Timing:
    seconds: float
    val_acc: list[float]
    failed: int
    # Share of the workers' time spent training (1.0: no process ever waited for work).
    busy: float = 1.0
    epoch_seconds: tuple[float, ...] = ()  # per model: mean seconds of its epochs
    executions: tuple[str, ...] = ()  # per run: "CUDA graphs" or why not
    utilisation: float | None = None  # median GPU utilisation while the side ran, in percent
    cpu_seconds: float = 0.0  # CPU time of the worker processes (user and system), start-up included


def population(n: int, info: DatasetInfo, seed: int) -> list[ModelSpec]:
    try:
        from remapdsl.search.sampler import sample_models
    except ImportError as e:
        raise SystemExit(f"bench_train: the sampler is missing ({e}); it provides the population") from e
    return list(sample_models(n, info, seed))


def synthetic_cifar(seed: int, folder: Path, n: int = 60_000) -> DataSpec:
    """CIFAR-10's shapes and sizes with random pixels (throughput does not depend on the pictures): 60,000
    images in an .npz file, a sixth of them held out for validation as CIFAR-10's test set is."""
    rng = np.random.default_rng(seed)
    path = folder / "synthetic-cifar10.npz"
    np.savez(path, x=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), y=rng.integers(0, 10, n))
    return DataSpec("npz", str(path), (Arg("val", 1 / 6), Arg("classes", 10)))


class Utilisation:
    """GPU utilisation sampled every half second from another thread, through pynvml or nvidia-smi; nothing on
    a machine without either (the CPU of --dry-run)."""

    def __init__(self, device: str) -> None:
        self.index = int(device.partition(":")[2] or 0)
        self.samples: list[float] = []
        self.source = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read = self._reader() if device.startswith("cuda") else None

    def _reader(self):  # type: ignore[no-untyped-def]
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "pynvml"
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # not installed, or no driver: try the command line
            pass
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        self.source = "nvidia-smi"

        def read() -> float:
            out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(self.index)], capture_output=True, text=True, timeout=5, check=True)
            return float(out.stdout.strip().splitlines()[0])

        return read

    def __enter__(self) -> Utilisation:
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.samples.append(self._read())  # type: ignore[misc]
            except Exception:  # a missed sample is not fatal
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def run_ours(models: list[ModelSpec], data: Dataset, spec: DataSpec, settings: TrainSettings, workers: int | None,
             device: str) -> Timing:
    """The models queued in a new store, the most expensive first, and trained by the local executor."""
    info = data.info()
    cost = {m.name: analyze_model(m, info).flops for m in models}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        db = Path(folder) / "remap.db"
        document = Document(models=tuple(models), data=spec)
        checked = Checked(Path(folder) / "population.remap", document, sorted(cost, key=lambda n: -cost[n]))
        started = time.perf_counter()
        with Store(db) as store:
            _, enqueued = enqueue_models(store, checked, settings, data.key, device=device)
        job_of = {e.job.model_name: e.job.id for e in enqueued}
        data_bytes = sum(a.nbytes for a in (data.x_train, data.y_train, data.x_val, data.y_val))
        sizes = [model_job_bytes(analyze_model(m, info), settings.batch, data_bytes) for m in models]
        shares: list[int] = []
        before = _children_cpu()
        with Utilisation(device) as gpu:
            train_jobs(db, list(job_of.values()), processes=workers, options=WorkerOptions(device=device, onnx=False),
                       job_bytes=sizes, on_pool=lambda pool: shares.extend(s.processes for s in pool))
        seconds = time.perf_counter() - started
        cpu_seconds = _children_cpu() - before
        with Store(db) as store:
            queue = Queue(store)
            runs = [store.run(queue.require(job_of[m.name]).run_id) for m in models]
            epochs = [store.epochs(r.id) if r is not None else [] for r in runs]
            executions = tuple(_execution(store, r.id) if r is not None else "not run" for r in runs)
    trained = [(r.seconds or 0.0) if r is not None else 0.0 for r in runs]
    processes = sum(shares) or workers or default_workers(device)
    return Timing(seconds, [e[-1].val_acc if e else float("nan") for e in epochs],
                  sum(r is None or r.status != "done" for r in runs), sum(trained) / (processes * seconds),
                  tuple(t / max(1, len(e)) for t, e in zip(trained, epochs, strict=True)), executions, gpu.median,
                  cpu_seconds)


def _children_cpu() -> float:
    """CPU seconds of the finished child processes: the pool's workers, once joined (0 for one in-process)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _execution(store: Store, run_id: int) -> str:
    rows = store.artifacts(run_id=run_id, kind="execution")
    if not rows:
        return "not recorded"
    meta = rows[-1].meta
    return "CUDA graphs" if meta.get("cuda_graphs") else str(meta.get("reason", ""))


def estimate_errors(models: list[ModelSpec], data: Dataset, timing: Timing, batch: int) -> dict[str, float]:
    """How well past runs predict the others' training time: the time model (remapdsl.store.estimate) fitted to the
    even-numbered models, against FLOPs over the median FLOP rate of the same runs; relative errors on the
    odd-numbered ones."""
    from remapdsl.language.analysis import analyze_model
    from remapdsl.store.estimate import Timing as Observed
    from remapdsl.store.estimate import Work, fit

    info = data.info()
    works = [Work(analyze_model(m, info).flops, len(data.y_train), batch, len(m.layers)) for m in models]
    seen = [Observed(w, s) for w, s in zip(works, timing.epoch_seconds, strict=True)]
    known, unknown = seen[0::2], seen[1::2]
    model = fit(known)
    assert model is not None
    rate = float(np.median([t.work.arithmetic / t.epoch_seconds for t in known]))

    def errors(predict) -> list[float]:  # type: ignore[no-untyped-def]
        return sorted(abs(predict(t.work) - t.epoch_seconds) / t.epoch_seconds for t in unknown)

    fitted, flops_only = errors(model.epoch_seconds), errors(lambda w: w.arithmetic / rate)
    p90 = int(0.9 * (len(unknown) - 1))
    return {"time_model_median": statistics.median(fitted), "time_model_p90": fitted[p90],
            "flops_only_median": statistics.median(flops_only), "flops_only_p90": flops_only[p90]}


def stock_modules(net):  # type: ignore[no-untyped-def]
    """The same network built from torch's own modules only, as a plain script would: our CPU dropout
    (remapdsl.train.torch_layers) is one of the trainer's speed-ups, not the reference's."""
    from torch import nn

    for i, layer in enumerate(net):
        if isinstance(layer, nn.Dropout) and type(layer) is not nn.Dropout:
            net[i] = nn.Dropout(layer.p)
    return net


def run_reference(models: list[ModelSpec], data: Dataset, settings: TrainSettings, device: str) -> Timing:
    with Utilisation(device) as gpu:
        timing = _reference_loop(models, data, settings, device)
    return Timing(timing.seconds, timing.val_acc, timing.failed, utilisation=gpu.median)


def _reference_loop(models: list[ModelSpec], data: Dataset, settings: TrainSettings, device: str) -> Timing:
    import torch
    from torch.nn import functional
    from torch.utils.data import DataLoader, TensorDataset

    train_set = TensorDataset(torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    val_set = TensorDataset(torch.from_numpy(data.x_val), torch.from_numpy(data.y_val))
    started = time.perf_counter()
    accuracies = []
    for model in models:
        torch.manual_seed(settings.seed)
        net = stock_modules(build_model(model, data.input_shape, data.num_classes)).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
        train_loader = DataLoader(train_set, batch_size=settings.batch, shuffle=True)
        val_loader = DataLoader(val_set, batch_size=settings.batch)
        correct = 0
        for _ in range(settings.epochs):
            net.train()
            for xb, yb in train_loader:
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad()
                loss = functional.cross_entropy(net(xb), yb)
                loss.backward()
                optimizer.step()
            net.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in val_loader:
                    xb, yb = xb.to(device), yb.to(device)
                    out = net(xb)
                    functional.cross_entropy(out, yb, reduction="sum")
                    correct += int((out.argmax(1) == yb).sum())
        accuracies.append(correct / len(val_set))
    return Timing(time.perf_counter() - started, accuracies, 0)


def training_flops(models: list[ModelSpec], data: Dataset, epochs: int) -> int:
    """Arithmetic of the whole population's training: per epoch a forward and backward pass (three forwards)
    over the training examples and a forward pass over the validation examples, as the language counts FLOPs."""
    info = data.info()
    per_epoch = sum(analyze_model(m, info).flops * (3 * len(data.y_train) + len(data.y_val)) for m in models)
    return per_epoch * epochs


def where_time_goes(models: list[ModelSpec], data: Dataset, timing: Timing, batch: int,
                    peak_gflops: float) -> list[dict[str, float | int | str]]:
    """Per quarter of the population by FLOPs per example: the median step time, the time the step's arithmetic
    would take at the device's matmul peak, and how many of its models are launch- or arithmetic-bound."""
    info = data.info()
    steps = -(-len(data.y_train) // batch)
    rows = []
    for m, epoch_s in zip(models, timing.epoch_seconds, strict=True):
        flops = analyze_model(m, info).flops
        step_s = epoch_s / steps
        arithmetic_s = 3 * flops * batch / (peak_gflops * 1e9)  # forward, and backward at twice its cost
        rows.append((flops, step_s, arithmetic_s))
    rows.sort()
    out: list[dict[str, float | int | str]] = []
    quarter = max(1, -(-len(rows) // 4))
    for i in range(0, len(rows), quarter):
        part = rows[i:i + quarter]
        bound = sum(a >= 0.5 * s for _, s, a in part)
        out.append({"flops_from": part[0][0], "flops_to": part[-1][0], "models": len(part),
                    "median_step_ms": 1e3 * statistics.median(s for _, s, _ in part),
                    "median_arithmetic_ms": 1e3 * statistics.median(a for _, _, a in part),
                    "arithmetic_bound": bound, "launch_bound": len(part) - bound})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=None, help="models of the population (default 100; 2 with "
                                                                  "--dry-run)")
    parser.add_argument("--epochs", type=int, default=None, help="default 10; 1 with --dry-run")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=None, help="processes of the pool (default: one per core; "
                                                                  "on a GPU, per GPU, sized from its free memory)")
    parser.add_argument("--repeat", type=int, default=1, help="run both sides this many times; medians reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true", help="CIFAR-10-shaped synthetic data on CUDA")
    parser.add_argument("--dry-run", action="store_true", help="the --gpu benchmark's code on the CPU, small: "
                                                               "CIFAR-10-shaped data of 2,400 images")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    models_n = args.models or (2 if args.dry_run else 100)
    epochs = args.epochs or (1 if args.dry_run else 10)

    folder = tempfile.TemporaryDirectory(prefix="bench-train-data-")
    gpu_report = args.gpu or args.dry_run
    if args.gpu:
        try:
            device = resolve_device("cuda")
        except ValueError as e:
            print(f"bench_train --gpu: {e}", file=sys.stderr)
            return 2
        spec = synthetic_cifar(args.seed, Path(folder.name))
    elif args.dry_run:
        device = "cpu"
        spec = synthetic_cifar(args.seed, Path(folder.name), n=2_400)
    else:
        device = "cpu"
        spec = DataSpec("digits")
    data = load_dataset(spec)
    models = population(models_n, data.info(), args.seed)
    settings = TrainSettings(epochs=epochs, batch=args.batch, seed=args.seed)
    workers = args.workers or (None if device.startswith("cuda") else default_workers(device))
    model_epochs = len(models) * epochs
    device_name = _device_name(device)
    print(f"{len(models)} models x {epochs} epochs on {data.name} ({len(data.y_train):,} training examples), "
          f"batch {args.batch}, device {device} ({device_name}), "
          + (f"{workers} worker process(es)" if workers else "worker processes per GPU sized from its memory"))

    ours: list[Timing] = []
    reference: list[Timing] = []
    for i in range(args.repeat):
        ours.append(run_ours(models, data, spec, settings, workers, device))
        print(f"run {i + 1}: ours {ours[-1].seconds:.1f} s ({model_epochs / ours[-1].seconds:.1f} model-epochs/s, "
              f"workers busy {ours[-1].busy:.0%}, {ours[-1].failed} failed)", flush=True)
        if not args.skip_reference:
            reference.append(run_reference(models, data, settings, device))
            print(f"run {i + 1}: reference {reference[-1].seconds:.1f} s "
                  f"({model_epochs / reference[-1].seconds:.1f} model-epochs/s)", flush=True)

    figures: dict[str, object] = {"models": len(models), "epochs": epochs, "device": device,
                                  "device_name": device_name, "workers": workers, "repeat": args.repeat}
    ours_s = statistics.median(t.seconds for t in ours)
    figures.update(ours_seconds=ours_s, ours_model_epochs_per_s=model_epochs / ours_s,
                   ours_median_val_acc=float(np.nanmedian(ours[-1].val_acc)),
                   ours_workers_busy=statistics.median(t.busy for t in ours))
    if len(models) >= 2:
        errors = estimate_errors(models, data, ours[-1], args.batch)
        figures.update({f"estimate_{k}": v for k, v in errors.items()})
        print(f"estimated training time, relative error on half the models from the other half's runs: time model "
              f"median {errors['time_model_median']:.0%} (p90 {errors['time_model_p90']:.0%}), FLOPs alone median "
              f"{errors['flops_only_median']:.0%} (p90 {errors['flops_only_p90']:.0%})")
    print(f"\nours:      {ours_s:7.1f} s  {model_epochs / ours_s:7.1f} model-epochs/s  "
          f"median val acc {figures['ours_median_val_acc']:.3f}")
    arithmetic = training_flops(models, data, epochs)
    cpu_s = statistics.median(t.cpu_seconds for t in ours)
    figures.update(training_flops=arithmetic, ours_gflops_per_s=arithmetic / ours_s / 1e9, ours_cpu_seconds=cpu_s)
    print(f"arithmetic: {arithmetic / 1e12:.2f} TFLOP in all; ours {arithmetic / ours_s / 1e9:.1f} GFLOP/s"
          + (f", {arithmetic / cpu_s / 1e9:.1f} GFLOP per CPU-second of the workers ({cpu_s:.0f} s)" if cpu_s else ""))
    ref_s = None
    if reference:
        ref_s = statistics.median(t.seconds for t in reference)
        figures.update(reference_seconds=ref_s, reference_model_epochs_per_s=model_epochs / ref_s,
                       reference_median_val_acc=float(np.nanmedian(reference[-1].val_acc)), ratio=ref_s / ours_s)
        print(f"reference: {ref_s:7.1f} s  {model_epochs / ref_s:7.1f} model-epochs/s  "
              f"median val acc {figures['reference_median_val_acc']:.3f}")
        print(f"ratio (ours / reference throughput): {ref_s / ours_s:.2f}x")
    if gpu_report:
        figures.update(_device_report(models, data, ours, reference, args.batch, device, model_epochs, ours_s, ref_s))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    folder.cleanup()
    return 0


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    from remapdsl.onnx.bench import _cpu_model

    return _cpu_model()


def _device_report(models: list[ModelSpec], data: Dataset, ours: list[Timing], reference: list[Timing], batch: int,
                   device: str, model_epochs: int, ours_s: float, ref_s: float | None) -> dict[str, object]:
    """What --gpu reports beyond throughput: per device-minute, utilisation, CUDA graphs, where the time goes."""
    unit = "GPU" if device.startswith("cuda") else "CPU"
    out: dict[str, object] = {"ours_model_epochs_per_device_minute": model_epochs / ours_s * 60}
    print(f"\nours:      {model_epochs / ours_s * 60:9.1f} model-epochs per {unit}-minute")
    if ref_s is not None:
        out["reference_model_epochs_per_device_minute"] = model_epochs / ref_s * 60
        print(f"reference: {model_epochs / ref_s * 60:9.1f} model-epochs per {unit}-minute")
    utilisation = {"ours": ours[-1].utilisation, "reference": reference[-1].utilisation if reference else None}
    out["utilisation_percent"] = utilisation
    if device.startswith("cuda"):
        print("GPU utilisation (median of samples every 0.5 s): " + ", ".join(
            f"{side} {'not sampled (no pynvml or nvidia-smi)' if u is None else f'{u:.0f}%'}"
            for side, u in utilisation.items()))
    else:
        print("GPU utilisation: none on the CPU")
    executions = Counter(ours[-1].executions)
    out["executions"] = dict(executions)
    print("steps: " + "; ".join(f"{n} run(s): {what}" for what, n in executions.most_common()))
    if device.startswith("cuda"):
        peak = matmul_gflops(8192, 7, device, "bfloat16")
        peak_what = f"bfloat16 matmul peak {peak / 1e3:.0f} TFLOP/s"
    else:
        peak = cpu_peak(1024, 5)["limit_gflops"]
        peak_what = f"float32 matmul peak {peak:.0f} GFLOP/s (one thread x cores)"
    out["peak_gflops"] = peak
    table = where_time_goes(models, data, ours[-1], batch, peak)
    out["where_time_goes"] = table
    print(f"where the time goes (ours; step times measured while sharing the device with the pool; {peak_what}):")
    print("  FLOPs/example           models  step ms  arithmetic ms  launch-bound  arithmetic-bound")
    for row in table:
        print(f"  {row['flops_from']:>10,}-{row['flops_to']:<12,} {row['models']:>6}  {row['median_step_ms']:7.3f}  "
              f"{row['median_arithmetic_ms']:13.4f}  {row['launch_bound']:>12}  {row['arithmetic_bound']:>16}")
    return out


if __name__ == "__main__":
    sys.exit(main())
