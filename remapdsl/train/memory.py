"""How much GPU memory one training job takes: an estimate from the model's analysis, without torch.

The estimate sizes the pool of training processes that share one GPU (`remapdsl.jobs.pool`). It errs high:
a pool one process too small leaves a little of the GPU idle, one process too large fails a job with
out-of-memory (which then shrinks the pool).
"""

from __future__ import annotations

import math

from remapdsl.language.analysis import ModelInfo

# One process's CUDA context with the cuBLAS and cuDNN handles and workspaces it creates on first use.
CONTEXT_BYTES = 768 * 2**20
# Per parameter: float32 weights, gradients and Adam's two moments, and autocast's bfloat16 copy.
BYTES_PER_PARAM = 4 + 4 + 8 + 2
# Per activation element of a training batch: the forward value kept for backward and its gradient, in float32
# at worst, and the same again for the private memory pool of a captured CUDA graph.
BYTES_PER_ACTIVATION = 2 * 2 * 4
# The trainer's evaluation batch holds at most this many activation elements (remapdsl.train.trainer).
EVAL_ELEMENTS = 1 << 25


def activation_elements(info: ModelInfo) -> int:
    """Elements of every layer's output for one example, plus the input's."""
    shapes = [info.input_shape] + [li.output_shape for li in info.layers]
    return sum(math.prod(shape) for shape in shapes if shape)


def job_bytes(param_count: int, activations: int, batch: int, data_bytes: int) -> int:
    """Bytes one training process needs on the GPU for a model of `param_count` parameters whose layers output
    `activations` elements per example, trained in batches of `batch`, with `data_bytes` of data held on the
    device (each process holds its own copy)."""
    if min(param_count, activations, batch, data_bytes) < 0:
        raise ValueError("parameters, activations, batch and data size must not be negative")
    evaluation = min(EVAL_ELEMENTS, max(batch, 1) * activations) * 4
    return (CONTEXT_BYTES + data_bytes + param_count * BYTES_PER_PARAM
            + batch * activations * BYTES_PER_ACTIVATION + evaluation)


def model_job_bytes(info: ModelInfo, batch: int, data_bytes: int) -> int:
    return job_bytes(info.param_count, activation_elements(info), batch, data_bytes)
