"""Estimated training time: a per-operation and a per-FLOP term fitted to past runs on the device."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.store.db import EpochRow, Store
from remapdsl.store.estimate import TimeModel, Timing, Work, fit, layer_count, time_model

# a machine where a layer's dispatch costs 20 µs a step and arithmetic runs at 50 GFLOP/s
PER_OP, PER_FLOP = 20e-6, 1 / 50e9


def timing(work: Work) -> Timing:
    return Timing(work, PER_OP * work.ops + PER_FLOP * work.arithmetic)


WORKS = [Work(650, 1437, 128, 2), Work(80_000, 1437, 128, 5), Work(2_000_000, 1437, 128, 9),
         Work(30_000_000, 1437, 64, 12), Work(5_000, 50_000, 256, 4)]


def test_the_fit_recovers_both_terms_and_predicts_a_model_far_from_the_ones_seen() -> None:
    model = fit([timing(w) for w in WORKS])
    assert model is not None and model.runs == len(WORKS)
    assert model.per_op == pytest.approx(PER_OP, rel=1e-6)
    assert model.per_flop == pytest.approx(PER_FLOP, rel=1e-6)
    huge = Work(300_000_000, 1437, 128, 20)
    assert model.seconds(huge, 10) == pytest.approx(10 * timing(huge).epoch_seconds, rel=1e-6)


def test_flops_alone_would_have_overestimated_a_large_model_after_small_ones() -> None:
    small = [timing(w) for w in WORKS[:2]]
    model = fit(small)
    assert model is not None
    big = WORKS[3]
    flops_only = small[-1].epoch_seconds / small[-1].work.arithmetic * big.arithmetic
    truth = timing(big).epoch_seconds
    assert abs(model.epoch_seconds(big) - truth) < 0.01 * truth < abs(flops_only - truth)


def test_one_run_gives_an_estimate_that_reproduces_it_and_none_gives_none() -> None:
    only = timing(WORKS[1])
    model = fit([only])
    assert model is not None and model.runs == 1
    assert model.epoch_seconds(only.work) == pytest.approx(only.epoch_seconds)
    assert fit([]) is None
    assert fit([Timing(WORKS[0], 0.0)]) is None  # an epoch that took no time says nothing


def test_coefficients_stay_non_negative_on_noisy_timings() -> None:
    # a dispatch-bound population whose bigger models happened to run faster: no negative seconds per FLOP
    noisy = [Timing(Work(1000 * (i + 1), 1437, 128, 3), 0.05 - 0.001 * i) for i in range(6)]
    model = fit(noisy)
    assert model is not None and model.per_op >= 0 and model.per_flop >= 0
    assert all(model.epoch_seconds(t.work) > 0 for t in noisy)


def test_layer_count_reads_the_canonical_text() -> None:
    assert layer_count("model m:\n    conv2d 16\n    # why\n    relu\n\n    flatten\n    dense 10\n") == 4


def test_the_time_model_of_a_store_reads_its_finished_runs_on_that_device(tmp_path: Path) -> None:
    with Store(tmp_path / "remap.db") as store:
        for i, work in enumerate(WORKS[:4]):
            layers = "".join("    relu\n" for _ in range(work.layers - 1)) + "    dense 10\n"
            store.add_model(f"h{i}", f"model m{i}:\n{layers}", name=f"m{i}", params=10, flops=work.flops)
            run = store.add_run(f"h{i}", f"m{i}", data_key="d", data_text="data digits", settings_key=f"b{work.batch}",
                                settings={"epochs": 2, "batch": work.batch})
            store.start_run(run, work.examples, 10, work.flops)
            seconds = timing(work).epoch_seconds
            for epoch in (1, 2):
                store.record_epoch(run, EpochRow(run, epoch, 1.0, 0.5, 1.0, 0.5, seconds))
            store.finish_run(run, "done", used_device="cpu")
        failed = store.add_run("h0", "m0", data_key="d", data_text="data digits", settings_key="x", settings={})
        store.start_run(failed, 1437, 10, 650)
        store.record_epoch(failed, EpochRow(failed, 1, 1.0, 0.5, 1.0, 0.5, 99.0))
        store.finish_run(failed, "failed", "boom", used_device="cpu")
        model = time_model(store, "cpu")
        assert isinstance(model, TimeModel) and model.runs == 4  # the failed run is left out
        assert model.per_op == pytest.approx(PER_OP, rel=1e-6)
        assert time_model(store, "cuda") is None
