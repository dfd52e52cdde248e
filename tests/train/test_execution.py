"""How a run executes: precision, whether CUDA graphs capture the step and why not, and the memory estimate
that sizes the pool of processes on a GPU."""

from __future__ import annotations

import pytest

from remapdsl.language.analysis import analyze_model
from remapdsl.language.datasets import DatasetInfo
from remapdsl.train.execution import MIN_GRAPH_STEPS, Execution, autocast_dtype, check_graph_switch, graph_decision
from remapdsl.train.memory import CONTEXT_BYTES, activation_elements, job_bytes, model_job_bytes
from tests.train.test_trainer import SMALL_CONV

GOOD = {"device": "cuda:0", "resident": True, "autocast": "bfloat16", "steps": 1000}


def test_the_step_is_captured_where_everything_allows_it() -> None:
    assert graph_decision("auto", **GOOD) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(("switch", "change", "reason"), [
    ("off", {}, "CUDA graphs are switched off"),
    ("auto", {"device": "cpu"}, "CUDA graphs need a CUDA device; this run trains on cpu"),
    ("auto", {"resident": False}, "the data set does not fit in the GPU's memory, so each batch is copied from "
                                  "host memory"),
    ("auto", {"autocast": "float16"}, "float16 autocast needs a gradient scaler, whose step reads back from the GPU "
                                      "(no bfloat16 here)"),
    ("auto", {"steps": MIN_GRAPH_STEPS - 1}, f"{MIN_GRAPH_STEPS - 1} training step(s) are too few to repay "
                                             "capturing the step"),
])
def test_each_reason_not_to_capture_is_a_sentence(switch: str, change: dict[str, object], reason: str) -> None:
    assert graph_decision(switch, **{**GOOD, **change}) == reason  # type: ignore[arg-type]


def test_switched_off_comes_first_and_the_switch_is_checked() -> None:
    assert graph_decision(" OFF ", device="cpu", resident=False, autocast="float16", steps=0) == \
        "CUDA graphs are switched off"
    assert check_graph_switch("") == "auto"
    with pytest.raises(ValueError, match="unknown CUDA graphs setting 'on'; expected auto or off"):
        graph_decision("on", **GOOD)  # type: ignore[arg-type]


def test_precision_follows_the_device() -> None:
    assert autocast_dtype("cpu", True) == "float32"
    assert autocast_dtype("cuda:1", True) == "bfloat16"
    assert autocast_dtype("cuda", False) == "float16"


def test_an_execution_describes_itself() -> None:
    assert Execution("cuda:0", "bfloat16", True, "").describe() == "cuda:0, bfloat16 autocast, CUDA graphs"
    eager = Execution("cpu", "float32", False, "CUDA graphs need a CUDA device; this run trains on cpu")
    assert eager.describe() == "cpu, float32, eager steps (CUDA graphs need a CUDA device; this run trains on cpu)"
    assert Execution(**eager.to_dict()) == eager


def test_a_jobs_memory_grows_with_its_parts() -> None:
    base = job_bytes(1000, 500, 128, 10**6)
    assert base > CONTEXT_BYTES + 10**6
    assert job_bytes(2000, 500, 128, 10**6) > base
    assert job_bytes(1000, 1000, 128, 10**6) > base
    assert job_bytes(1000, 500, 256, 10**6) > base
    assert job_bytes(1000, 500, 128, 2 * 10**6) == base + 10**6
    with pytest.raises(ValueError):
        job_bytes(-1, 500, 128, 0)


def test_the_estimate_reads_the_models_shapes() -> None:
    info = analyze_model(SMALL_CONV, DatasetInfo("digits", (1, 8, 8), 10, tuple("0123456789")))
    # input 64, conv 4x8x8 = 256 (padding same), relu 256, pool 64, dropout 64, flatten 64, dense 16, bn 16, tanh 16,
    # head 10
    assert activation_elements(info) == 64 + 256 + 256 + 64 + 64 + 64 + 16 + 16 + 16 + 10
    assert model_job_bytes(info, 128, 0) == job_bytes(info.param_count, activation_elements(info), 128, 0)
