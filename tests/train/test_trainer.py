"""Training on the CPU: results, reproducibility, resuming, cancelling, failing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch

from remapdsl.language.analysis import analyze_model
from remapdsl.language.header import TrainSettings
from remapdsl.language.model import Arg, Document, Layer, ModelSpec, TrainSpec
from remapdsl.train.data import Dataset, load_dataset
from remapdsl.train.execution import Execution
from remapdsl.train.torch_model import build_model
from remapdsl.train.trainer import (
    Checkpoint,
    resolve_device,
    train,
)


def layer(kind: str, value: object = None, **named: object) -> Layer:
    from remapdsl.language.catalog import LAYER_TYPES

    args = []
    positional = LAYER_TYPES[kind].positional
    if value is not None and positional is not None:
        args.append(Arg(positional.name, value, True))  # type: ignore[arg-type]
    args += [Arg(k, v) for k, v in named.items()]  # type: ignore[arg-type]
    return Layer(kind, tuple(args))


SMALL_CONV = ModelSpec("small", (layer("conv2d", 4, kernel=3), layer("relu"), layer("maxpool", 2),
                                  layer("dropout", 0.25), layer("flatten"), layer("dense", 16), layer("batchnorm"),
                                  layer("tanh"), layer("dense", 10)))
LINEAR = ModelSpec("linear", (layer("flatten"), layer("dense", 32), layer("dense", 32), layer("dense", 10)))


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(None)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # As in the training workers: with small models a second thread only waits on the first, and
    # sums are taken in one order, so runs compare exactly.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_reports_epochs_confusion_and_counts(digits: Dataset) -> None:
    seen: list[int] = []
    result = train(SMALL_CONV, digits, TrainSettings(epochs=3, lr=0.01), "cpu",
                   on_epoch=lambda e, c: seen.append(e.epoch) or None)
    assert result.status == "done" and result.reason == "" and result.device == "cpu"
    assert seen == [1, 2, 3] and [e.epoch for e in result.epochs] == [1, 2, 3]
    last = result.epochs[-1]
    assert last.val_acc > 0.6 and last.val_loss < result.epochs[0].val_loss
    assert all(e.seconds > 0 for e in result.epochs)
    info = analyze_model(SMALL_CONV, digits.info())
    assert (result.param_count, result.flops) == (info.param_count, info.flops)
    assert result.predictions is not None and result.predictions.dtype == np.uint8
    assert len(result.predictions) == len(digits.y_val)
    # the confusion matrix, per-class accuracy and validation accuracy tell the same story
    assert result.confusion is not None and result.confusion.sum() == len(digits.y_val)
    np.testing.assert_array_equal(result.confusion.sum(axis=1), np.bincount(digits.y_val, minlength=10))
    assert np.trace(result.confusion) / len(digits.y_val) == pytest.approx(last.val_acc)
    assert result.per_class_accuracy is not None
    np.testing.assert_allclose(result.per_class_accuracy,
                               [np.mean(result.predictions[digits.y_val == k] == k) for k in range(10)])
    assert result.checkpoint is not None and result.checkpoint.epoch == 3


def test_the_same_seed_gives_the_same_run_and_another_seed_another(digits: Dataset) -> None:
    settings = TrainSettings(epochs=2, lr=0.01)
    a, b = train(SMALL_CONV, digits, settings, "cpu"), train(SMALL_CONV, digits, settings, "cpu")
    assert [replace(e, seconds=0) for e in a.epochs] == [replace(e, seconds=0) for e in b.epochs]
    np.testing.assert_array_equal(a.predictions, b.predictions)
    c = train(SMALL_CONV, digits, replace(settings, seed=1), "cpu")
    assert c.epochs[0].train_loss != a.epochs[0].train_loss


def test_training_leaves_the_callers_random_state_alone(digits: Dataset) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(LINEAR, digits, TrainSettings(epochs=1), "cpu")
    assert torch.equal(torch.rand(3), expected)


def test_a_resumed_run_equals_the_uninterrupted_one(digits: Dataset) -> None:
    settings = TrainSettings(epochs=4, lr=0.01, patience=3)
    whole = train(SMALL_CONV, digits, settings, "cpu")
    saved: dict[int, bytes] = {}
    interrupted = train(SMALL_CONV, digits, settings, "cpu",
                        on_epoch=lambda e, c: saved.__setitem__(e.epoch, c.to_bytes()),
                        should_stop=lambda: 2 in saved)
    assert interrupted.status == "cancelled" and [e.epoch for e in interrupted.epochs] == [1, 2]
    resumed = train(SMALL_CONV, digits, settings, "cpu", resume=Checkpoint.from_bytes(saved[2]))
    assert resumed.status == "done" and [e.epoch for e in resumed.epochs] == [3, 4]
    assert [replace(e, seconds=0) for e in resumed.epochs] == [replace(e, seconds=0) for e in whole.epochs[2:]]
    assert whole.checkpoint is not None and resumed.checkpoint is not None
    for key, value in whole.checkpoint.model_state.items():
        assert torch.equal(value, resumed.checkpoint.model_state[key]), key
    np.testing.assert_array_equal(whole.predictions, resumed.predictions)


def test_resuming_after_the_last_epoch_only_reports(digits: Dataset) -> None:
    done = train(LINEAR, digits, TrainSettings(epochs=1), "cpu")
    assert done.checkpoint is not None
    again = train(LINEAR, digits, TrainSettings(epochs=1), "cpu", resume=done.checkpoint)
    assert again.status == "done" and again.epochs == ()
    np.testing.assert_array_equal(again.predictions, done.predictions)


def test_cancelling_keeps_the_finished_epochs(digits: Dataset) -> None:
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 15  # 12 steps per epoch: during the second epoch

    result = train(LINEAR, digits, TrainSettings(epochs=5), "cpu", should_stop=stop)
    assert result.status == "cancelled"
    assert result.reason == "cancelled during epoch 2, before step 4"
    assert [e.epoch for e in result.epochs] == [1]
    assert result.checkpoint is not None and result.checkpoint.epoch == 1
    assert result.confusion is not None  # of the weights after epoch 1


def test_a_non_finite_loss_fails_the_run_and_names_epoch_and_step(digits: Dataset) -> None:
    result = train(LINEAR, digits, TrainSettings(epochs=8, lr=0.5, optimizer="sgd"), "cpu")
    assert result.status == "failed"
    match = re.fullmatch(r"loss became (nan|inf) at epoch (\d+), step (\d+)", result.reason)
    assert match, result.reason
    failed_epoch = int(match.group(2))
    assert failed_epoch >= 2 and len(result.epochs) == failed_epoch - 1
    assert all(np.isfinite([e.train_loss, e.val_loss]).all() for e in result.epochs)
    assert result.checkpoint is not None and result.checkpoint.epoch == failed_epoch - 1


def test_non_finite_data_fails_at_the_first_step(digits: Dataset) -> None:
    broken = replace(digits, x_train=np.full_like(digits.x_train, np.nan))
    result = train(LINEAR, broken, TrainSettings(epochs=2), "cpu")
    assert (result.status, result.reason) == ("failed", "loss became nan at epoch 1, step 1")
    assert result.epochs == () and result.checkpoint is None and result.confusion is None


def test_early_stopping_watches_the_full_validation_loss(digits: Dataset) -> None:
    # random labels: the validation loss can only get worse once the model starts memorising
    noisy = replace(digits, y_train=np.random.default_rng(0).permutation(digits.y_train))
    result = train(LINEAR, noisy, TrainSettings(epochs=30, lr=0.01, patience=2), "cpu")
    assert result.status == "stopped" and "did not improve for 2 epoch(s)" in result.reason
    losses = [e.val_loss for e in result.epochs]
    assert len(losses) < 30
    assert min(losses[-2:]) >= min(losses[:-2])


@pytest.mark.parametrize("side", ["train", "val"])
def test_a_data_set_without_training_or_validation_examples_fails_and_is_never_done(digits: Dataset,
                                                                                     side: str) -> None:
    empty = replace(digits, **{f"x_{side}": digits.x_train[:0], f"y_{side}": digits.y_train[:0]})
    result = train(LINEAR, empty, TrainSettings(epochs=2), "cpu")
    which = "training" if side == "train" else "validation"
    assert (result.status, result.reason) == ("failed", f"the data set digits has no {which} examples; there is "
                                              f"nothing to {'train on' if side == 'train' else 'validate on'}")
    assert result.epochs == () and result.checkpoint is None


def test_a_model_that_cannot_be_built_fails_without_raising(digits: Dataset) -> None:
    wrong_head = ModelSpec("wrong", (layer("flatten"), layer("dense", 7)))
    result = train(wrong_head, digits, TrainSettings(epochs=1), "cpu")
    assert result.status == "failed" and "head must have 10 units" in result.reason
    assert result.epochs == () and result.checkpoint is None


def test_checkpoints_round_trip_and_garbage_is_refused(digits: Dataset) -> None:
    result = train(LINEAR, digits, TrainSettings(epochs=1), "cpu")
    assert result.checkpoint is not None
    back = Checkpoint.from_bytes(result.checkpoint.to_bytes())
    assert back.epoch == 1 and back.bad_epochs == 0 and back.best_val_loss == result.epochs[0].val_loss
    assert back.model_state.keys() == result.checkpoint.model_state.keys()
    with pytest.raises(ValueError, match="not a training checkpoint"):
        Checkpoint.from_bytes(b"nonsense")


def test_trained_weights_load_into_the_exported_model(digits: Dataset) -> None:
    from remapdsl.onnx.export import build_torch_model

    result = train(SMALL_CONV, digits, TrainSettings(epochs=1), "cpu")
    assert result.checkpoint is not None
    module = build_torch_model(SMALL_CONV, digits.input_shape, result.checkpoint.model_state)
    with torch.no_grad():
        predictions = module(torch.from_numpy(digits.x_val)).argmax(1).numpy()
    np.testing.assert_array_equal(predictions, result.predictions)


def test_devices() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(ValueError, match="sees no CUDA device; use --device cpu"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'; expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


def test_settings_from_the_document_with_overrides() -> None:
    doc = Document(train=TrainSpec((Arg("epochs", 3), Arg("lr", 0.01), Arg("optimizer", "sgd"))))
    s = TrainSettings.from_document(doc, batch=64, seed=None)
    assert (s.epochs, s.lr, s.optimizer, s.batch, s.seed) == (3, 0.01, "sgd", 64, 0)
    assert s.key() == "epochs=3|batch=64|lr=0.01|optimizer=sgd|momentum=0.9|weight_decay=0.0|seed=0|patience=0"
    # momentum changes nothing for adam, so it does not split the key
    assert TrainSettings(momentum=0.5).key() == TrainSettings().key()
    assert TrainSettings(epochs=10.0).epochs == 10  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train optimizer must be 'adam' or 'adamw' or 'sgd'; found 'lbfgs'"):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainSettings.from_document(doc, epoch=3)


def test_a_run_records_how_it_executed(digits: Dataset) -> None:
    result = train(LINEAR, digits, TrainSettings(epochs=1), "cpu")
    assert result.execution == Execution("cpu", "float32", False,
                                         "CUDA graphs need a CUDA device; this run trains on cpu")
    off = train(LINEAR, digits, TrainSettings(epochs=1), "cpu", graphs="off")
    assert off.execution is not None and off.execution.reason == "CUDA graphs are switched off"
    with pytest.raises(ValueError, match="unknown CUDA graphs setting"):
        train(LINEAR, digits, TrainSettings(epochs=1), "cpu", graphs="always")


def test_epoch_metrics_are_the_means_over_the_examples_trained(digits: Dataset) -> None:
    # 1,438 training examples in batches of 128: 11 full batches and one of 30, all counted
    torch.manual_seed(0)
    result = train(LINEAR, digits, TrainSettings(epochs=1, lr=1e-9, optimizer="sgd"), "cpu")
    assert result.checkpoint is not None
    net = build_model(LINEAR, digits.input_shape, digits.num_classes)
    net.load_state_dict(result.checkpoint.model_state)  # lr 1e-9: about the weights every step trained with
    with torch.no_grad():
        logits = net(torch.from_numpy(digits.x_train))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(digits.y_train))
        acc = (logits.argmax(1).numpy() == digits.y_train).mean()
    [epoch] = result.epochs
    assert epoch.train_loss == pytest.approx(float(loss), rel=1e-4)
    assert epoch.train_acc == pytest.approx(acc)


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(digits: Dataset) -> None:
    """A GPU run's checkpoint has a capturable optimizer and a batch generator of the GPU; the CPU run that
    resumes it keeps its own optimizer flags and draws its batch order from a seeded generator of its own."""
    settings = TrainSettings(epochs=3, lr=0.01)
    saved: dict[int, Checkpoint] = {}
    train(SMALL_CONV, digits, settings, "cpu", on_epoch=lambda e, c: saved.__setitem__(e.epoch, c),
          should_stop=lambda: 1 in saved)
    state = saved[1]
    groups = [{**g, "capturable": True} for g in state.optimizer_state["param_groups"]]
    foreign = replace(state, optimizer_state={**state.optimizer_state, "param_groups": groups},
                      rng_state={**state.rng_state, "batches_device": "cuda"})
    resumed = train(SMALL_CONV, digits, settings, "cpu", resume=foreign)
    assert resumed.status == "done" and [e.epoch for e in resumed.epochs] == [2, 3]
    assert resumed.checkpoint is not None
    assert all(g["capturable"] is False for g in resumed.checkpoint.optimizer_state["param_groups"])
    assert resumed.checkpoint.rng_state["batches_device"] == "cpu"
    again = train(SMALL_CONV, digits, settings, "cpu", resume=foreign)
    assert [replace(e, seconds=0) for e in again.epochs] == [replace(e, seconds=0) for e in resumed.epochs]
