"""`remap train`, `remap results`, `remap queue` and `remap worker` from the command line, bad inputs included."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from remapdsl.cli import main
from remapdsl.cli.workspace import Progress
from remapdsl.jobs.worker import WorkerEvent
from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import Job

pytestmark = pytest.mark.slow


FILE = """data digits
train epochs=2 batch=64 lr=0.002 seed=0

model small:
    flatten
    dense 32
    relu
    dense 10

model small_wide from small:   # units at 1 from 32 to 64
    flatten
    dense 64
    relu
    dense 10

model linear:   # ablation: removed dense at 1, relu at 2
    flatten
    dense 10
"""


@pytest.fixture(autouse=True)
def one_torch_thread():  # type: ignore[no-untyped-def]
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def remap_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.remap"
    path.write_text(FILE)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def store_of(path: Path) -> Store:
    return Store(path.parent / ".remap" / "remap.db")


def test_train_trains_every_model_with_progress_and_a_results_table(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "train", str(remap_file), "--jobs", "1")
    assert code == 0, err
    for name in ("small", "small_wide", "linear"):
        assert f"{name}: epoch 1/2" in out and f"{name}: epoch 2/2" in out
    assert "[3/3]" in out
    table = out[out.index("model "):]
    assert "origin" in table and "Δparams" in table and "est. time" in table
    wide = next(line for line in table.splitlines() if line.startswith("small_wide"))
    assert "handcrafted" in wide and "units at 1 from 32 to 64" in wide and "+2,400" in wide and "done" in wide
    linear = next(line for line in table.splitlines() if line.startswith("linear"))
    assert "ablation" in linear and "removed dense at 1, relu at 2" in linear
    with store_of(remap_file) as store:
        assert len(store.runs()) == 3
        assert all(r.status == "done" and len(store.epochs(r.id)) == 2 for r in store.runs())


def test_the_same_training_is_not_repeated_unless_forced(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear")[0] == 0
    code, out, _ = run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear")
    assert code == 0 and "already trained" in out and "epoch 1/2" not in out
    code, out, _ = run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear", "--force")
    assert code == 0 and "linear: epoch 2/2" in out
    code, out, _ = run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear", "--epochs", "3")
    assert code == 0 and "linear: epoch 3/3" in out  # other settings: another training
    with store_of(remap_file) as store:
        assert len(store.runs()) == 3


def test_train_with_a_pool_of_worker_processes(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "train", str(remap_file), "--jobs", "2", "-m", "small", "-m", "linear",
                         "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["model"] for r in rows] == ["small", "linear"]
    assert all(r["status"] == "done" and r["epochs_done"] == 2 and 0 < r["val_acc"] <= 1 for r in rows)
    assert "small: epoch 2/2" in err and "linear: epoch 2/2" in err  # progress goes to stderr with --json


def test_results_table_and_json(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "small", "-m", "small_wide")[0] == 0
    code, out, _ = run(capsys, "results", str(remap_file), "--json")
    assert code == 0
    rows = {r["model"]: r for r in json.loads(out)}
    wide, small = rows["small_wide"], rows["small"]
    assert wide["parent"] == "small" and wide["delta_params"] == wide["params"] - small["params"]
    assert wide["delta_acc"] == pytest.approx(wide["val_acc"] - small["val_acc"])
    assert wide["actual_seconds"] > 0 and wide["estimated_seconds"] > 0
    untrained = rows["linear"]
    assert untrained["status"] == "untrained" and untrained["val_acc"] is None
    assert untrained["estimated_seconds"] is not None  # from the throughput measured on the trained ones
    code, out, _ = run(capsys, "results", str(remap_file), "--pareto", "--json")
    assert code == 0 and {r["model"] for r in json.loads(out)} <= {"small", "small_wide"}
    code, out, _ = run(capsys, "results", str(remap_file))
    assert code == 0 and out.splitlines()[0].split()[:3] == ["model", "origin", "changes"]


def test_queue_commands(remap_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document

    with store_of(remap_file) as store:
        plan = queue_document(store, read_models(remap_file, None), epochs=None, device="cpu", force=False)
    a, b, c = (j.id for j in plan.jobs)
    db = str(remap_file.parent / ".remap" / "remap.db")
    code, out, _ = run(capsys, "queue", "--store", db, "list")
    assert code == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["small", "small_wide", "linear"]
    code, out, _ = run(capsys, "queue", "move", "--store", db, str(c), "top")
    assert code == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["linear", "small", "small_wide"]
    code, out, _ = run(capsys, "queue", "move", "--store", db, str(b), str(a))
    assert code == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["small_wide", "small", "linear"]
    code, out, _ = run(capsys, "queue", "cancel", "--store", db, str(a))
    assert code == 0 and "cancelled" in out
    code, out, _ = run(capsys, "queue", "retry", "--store", db, str(a))
    assert code == 0 and "queued again" in out
    code, out, _ = run(capsys, "queue", "list", "--store", db, "--json")
    assert code == 0 and {j["id"] for j in json.loads(out)} == {a, b, c}
    # a worker empties the queue
    code, out, _ = run(capsys, "worker", "--store", db, "--until-empty", "--poll", "0.1", "--device", "cpu")
    assert code == 0 and "trained 3 job(s)" in out
    # a worker does not know how many jobs will come: it counts without a total
    assert "[3] " in out and "/0]" not in out
    code, out, _ = run(capsys, "queue", "list", "--store", db)
    assert code == 0 and "the queue is empty" in out
    code, out, _ = run(capsys, "queue", "list", "--store", db, "--all")
    assert code == 0 and out.count(" done ") == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["queue", "cancel", "99"], "no job 99 in the queue"),
    (["queue", "retry", "x1"], "'x1' is not a job id"),
    (["queue", "move", "1", "sideways"], "cannot read 'sideways'"),
    (["queue", "move", "99", "top"], "no job 99"),
])
def test_bad_queue_commands(remap_file: Path, capsys, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document

    with store_of(remap_file) as store:
        queue_document(store, read_models(remap_file, ["linear"]), epochs=None, device="cpu", force=False)
    db = str(remap_file.parent / ".remap" / "remap.db")
    code, _, err = run(capsys, *argv[:1], "--store", db, *argv[1:])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_train_inputs_are_one_line_errors(remap_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.remap"
    broken.write_text("model m:\n    conv2d 16 kernal=3\n    flatten\n    dense 10\n")
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("x")
    cases = [
        (["train", str(remap_file), "--model", "smal"], "has no model 'smal'; did you mean 'small'?"),
        (["train", str(remap_file), "--device", "tpu"], "unknown device 'tpu'"),
        (["train", str(tmp_path / "missing.remap")], "no such file"),
        (["train", str(broken)], "broken.remap:2:"),
        (["train", str(remap_file), "--store", str(not_a_dir / "remap.db")], "cannot create the store folder"),
        (["results", str(remap_file), "--store", str(tmp_path / "none.db")], "no store at"),
        (["queue", "--store", str(tmp_path / "none.db"), "list"], "no store at"),
        (["worker", "--store", str(tmp_path / "w.db"), "--lease", "1", "--heartbeat", "2"], "shorter than the lease"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_corrupt_store_is_refused_and_left_intact(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = remap_file.parent / ".remap" / "remap.db"
    db.parent.mkdir()
    junk = b"\x00garbage" * 512
    db.write_bytes(junk)
    code, _, err = run(capsys, "train", str(remap_file), "--jobs", "1")
    assert code == 2 and "not a remapdsl store" in err
    assert db.read_bytes() == junk


def test_bad_inputs_leave_stored_data_intact(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear")[0] == 0
    with store_of(remap_file) as store:
        before = [(r.id, r.status, r.val_acc) for r in store.runs()]
    assert run(capsys, "train", str(remap_file), "--device", "tpu")[0] == 2
    assert run(capsys, "queue", "--store", str(remap_file.parent / ".remap" / "remap.db"), "cancel", "1")[0] == 2
    with store_of(remap_file) as store:
        assert [(r.id, r.status, r.val_acc) for r in store.runs()] == before


def test_train_skips_models_with_errors_and_trains_the_others(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mixed.remap"
    path.write_text(FILE + "\nmodel broken:\n    conv2d 16\n    dense 10\n\nmodel typo:\n    flaten\n    dense 10\n")
    code, out, err = run(capsys, "train", str(path), "--jobs", "1", "--no-onnx", "-m", "linear", "-m", "broken",
                         "-m", "typo")
    assert code == 0, err
    assert f"broken: skipped, it has errors: {path}:22:5: error: dense needs a flat input" in err
    assert f"typo: skipped, it has errors: {path}:25:5: error: expected a layer such as" in err
    assert err.strip().splitlines()[-1].startswith("note: skipped 2 model(s) with errors: broken, typo")
    assert "linear: epoch 2/2" in out and "broken" not in out
    with store_of(path) as store:
        assert [r.model_name for r in store.runs()] == ["linear"]
    code, out, err = run(capsys, "results", str(path), "--json")
    assert code == 0 and "broken: skipped" in err
    assert [r["model"] for r in json.loads(out)] == ["small", "small_wide", "linear"]
    # nothing left to train: an error, with the first problem
    code, _, err = run(capsys, "train", str(path), "-m", "broken", "-m", "typo")
    assert code == 2 and f"{path}:22:5: error: dense needs a flat input" in err and "(and 1 more" in err


def test_no_onnx_turns_off_the_measurement_after_training(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "linear", "--no-onnx")[0] == 0
    assert run(capsys, "train", str(remap_file), "--jobs", "1", "-m", "small")[0] == 0
    with store_of(remap_file) as store:
        measured = {store.run(a.run_id).model_name for a in store.artifacts(kind="onnx")}  # type: ignore[union-attr]
    assert measured == {"small"}


def test_demo_with_no_onnx(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "demo", "--dir", str(tmp_path / "demo"), "--models", "2", "--epochs", "1",
                         "--jobs", "1", "--device", "cpu", "--no-onnx", "--no-serve")
    assert code == 0, err
    with Store(tmp_path / "demo" / ".remap" / "remap.db") as store:
        assert [r.status for r in store.runs()] == ["done", "done"]
        assert store.artifacts(kind="onnx") == []


def test_queue_list_shows_an_expired_lease_as_expired(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import time

    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document
    from remapdsl.store.queue import Queue

    with store_of(remap_file) as store:
        queue_document(store, read_models(remap_file, ["linear"]), epochs=None, device="cpu", force=False)
        Queue(store).claim("gone-worker", lease_seconds=0.01)
    time.sleep(0.05)
    code, out, _ = run(capsys, "queue", "--store", str(remap_file.parent / ".remap" / "remap.db"), "list")
    assert code == 0
    [line] = [ln for ln in out.splitlines() if "linear" in ln]
    assert "gone-worker (lease expired 0s ago: its worker stopped responding)" in line and "lease -" not in line


def test_progress_counts_only_jobs_that_ended() -> None:
    out = io.StringIO()
    progress = Progress(out, total=0, tty=False)
    job = Job(1, 1, 0, 0.0, "running", "w", None, None, 1, False, "", 0.0, None, None, "small", "h", "", 1, 4)
    progress(WorkerEvent("end", job, status="lost", reason="the lease ran out"))
    progress(WorkerEvent("end", job, status="done"))
    lines = out.getvalue().splitlines()
    assert lines == ["[0] small: given up after 1 epoch(s): the lease ran out", "[1] small: done after 1 epoch(s)"]


def test_progress_draws_bars_on_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, total=1, tty=True, width=10)
    job = Job(1, 1, 0, 0.0, "running", "w", None, None, 1, False, "", 0.0, None, None, "small", "h", "", 0, 4)
    progress(WorkerEvent("start", job))
    progress(WorkerEvent("epoch", job, epoch=EpochRow(1, 2, 0.5, 0.8, 0.6, 0.75, 0.1)))
    progress(WorkerEvent("end", job, status="done"))
    text = out.getvalue()
    assert "[#####.....] 2/4  val acc 75.0%" in text
    assert "\x1b[1A" in text  # redrawn in place
    assert text.endswith("[1/1] small: done after 0 epoch(s)\n")


def test_a_worker_pool_serves_the_queue_in_processes(remap_file: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document
    from remapdsl.jobs.worker import EXECUTION_KIND

    with store_of(remap_file) as store:
        plan = queue_document(store, read_models(remap_file, None), epochs=1, device="cpu", force=False)
    db = str(remap_file.parent / ".remap" / "remap.db")
    code = main(["worker", "--store", db, "--until-empty", "--poll", "0.1", "--jobs", "2", "--cuda-graphs", "off",
                 "--no-onnx"])
    out = capfd.readouterr().out
    assert code == 0 and "2 worker process(es) on" in out
    # each process reports what it trains: three jobs ended between them
    assert all(f"{name}: epoch 1/1" in out for name in ("small", "small_wide", "linear"))
    with store_of(remap_file) as store:
        for job in plan.jobs:
            run_ = store.run(job.run_id)
            assert run_ is not None and run_.status == "done"
            [execution] = store.artifacts(run_id=job.run_id, kind=EXECUTION_KIND)
            assert execution.meta["reason"] == "CUDA graphs are switched off"


def test_a_bad_cuda_graphs_setting_is_a_usage_error(remap_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        main(["train", str(remap_file), "--cuda-graphs", "always"])
    assert e.value.code == 2 and "invalid choice: 'always'" in capsys.readouterr().err
