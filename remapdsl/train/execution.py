"""How a training run executes on its device: the autocast precision and whether CUDA graphs capture the step.

The decisions are pure functions of what the trainer knows before the first step, so that they can be tested
without a GPU and so that the reason for falling back to eager steps is a sentence, stored with the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# `--cuda-graphs` values: auto captures where the model and device allow it, off never does.
GRAPH_SWITCHES = ("auto", "off")
# Capturing costs a few eager warm-up steps and the capture itself; a run shorter than this gains nothing.
MIN_GRAPH_STEPS = 16
# Eager steps run on a side stream before capture, as CUDA graph capture requires (lazy initialisation,
# cuDNN's autotuning, the optimizer's state).
WARMUP_STEPS = 3


@dataclass(frozen=True)
class Execution:
    """What a run did on its device: stored with the run, so that a figure can be read with its conditions."""

    device: str
    autocast: str  # "bfloat16", "float16" or "float32" (no autocast)
    cuda_graphs: bool
    reason: str  # why the step was not captured ("" when it was)

    def describe(self) -> str:
        precision = "float32" if self.autocast == "float32" else f"{self.autocast} autocast"
        graphs = "CUDA graphs" if self.cuda_graphs else f"eager steps ({self.reason})"
        return f"{self.device}, {precision}, {graphs}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def autocast_dtype(device: str, bf16_supported: bool) -> str:
    """The precision a run computes in: bfloat16 on GPUs that have it (no loss scaling needed), float16 with a
    gradient scaler on older ones, float32 on the CPU (lower precision changes the numerics there for a gain
    that depends on the model)."""
    if not device.startswith("cuda"):
        return "float32"
    return "bfloat16" if bf16_supported else "float16"


def check_graph_switch(switch: str) -> str:
    wanted = (switch or "auto").strip().lower()
    if wanted not in GRAPH_SWITCHES:
        raise ValueError(f"unknown CUDA graphs setting '{switch}'; expected {' or '.join(GRAPH_SWITCHES)}")
    return wanted


def graph_decision(switch: str, *, device: str, resident: bool, autocast: str, steps: int) -> str:
    """Why the training step cannot be captured in a CUDA graph, or "" when it can.

    `resident`: the data set sits on the device (else each batch is copied from host memory). `steps`: the
    training steps left in the run. Every layer of the catalog is capturable (dropout draws from the graph-safe
    generator, batch normalisation updates its statistics in place); the ragged last batch of an epoch gets a
    graph of its own, so no example is dropped or padded.
    """
    if check_graph_switch(switch) == "off":
        return "CUDA graphs are switched off"
    if not device.startswith("cuda"):
        return f"CUDA graphs need a CUDA device; this run trains on {device}"
    if not resident:
        return "the data set does not fit in the GPU's memory, so each batch is copied from host memory"
    if autocast == "float16":
        return "float16 autocast needs a gradient scaler, whose step reads back from the GPU (no bfloat16 here)"
    if steps < MIN_GRAPH_STEPS:
        return f"{steps} training step(s) are too few to repay capturing the step"
    return ""
