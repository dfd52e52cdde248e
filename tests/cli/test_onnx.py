"""`remap export`, `remap bench` and the measured budgets of `remap check`: what a user types and what they get
back."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

import remapdsl.cli as cli
from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse

pytestmark = pytest.mark.slow


DOC = """\
data digits
train epochs=1 batch=64 seed=0
budget params <= 100k
budget size <= 400KB

model small:
    conv2d 16 kernel=3
    batchnorm
    relu
    maxpool 2
    flatten
    dense 10

model mlp:
    flatten
    dense 64
    tanh
    dense 10

model broken:
    conv2d 16
    dense 10
"""


@pytest.fixture()
def remap(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `remap ARGS...` in-process; returns (exit code, stdout, stderr)."""
    # Only the commands under test, so that other commands being changed cannot break these tests.
    monkeypatch.setattr(cli, "COMMANDS", ("check", "export", "bench"))

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own errors
            code = int(e.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture()
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "models.remap"
    path.write_text(DOC)
    return path


def language_count(name: str, text: str = DOC) -> int:
    result = parse(text)
    return analyze(result.document, result.diagnostics).models[name].param_count


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DOC with model 'small' trained for one epoch by a worker, in the store beside the file."""
    from dataclasses import asdict

    from remapdsl.jobs.worker import Worker
    from remapdsl.language.header import TrainSettings
    from remapdsl.store.db import Store, default_store_path
    from remapdsl.store.queue import Queue, data_line, register_models
    from remapdsl.train.data import load_dataset

    doc = tmp_path_factory.mktemp("trained") / "models.remap"
    doc.write_text(DOC)
    document = parse(DOC).document
    data = load_dataset(document.data, doc.parent)
    settings = TrainSettings.from_document(document)
    path = default_store_path(doc)
    with Store(path) as store:
        [small] = register_models(store, document, ["small"])
        Queue(store).enqueue(small.hash, small.name, data_key=data.key, data_text=data_line(document),
                             settings_key=settings.key(), settings=asdict(settings), device="cpu",
                             base_dir=str(doc.parent), params=small.params, flops=small.flops)
    with Worker(path) as worker:
        assert worker.run(until_empty=True) == 1
    return doc


# --- export ---------------------------------------------------------------------------------------


def test_export_untrained_writes_a_checked_file(remap, doc: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "small.onnx"
    code, stdout, stderr = remap("export", doc, "small", "--untrained", "-o", out)
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}: model 'small' (fresh weights, seed 0)")
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 1, 8, 8]


def test_export_json(remap, doc: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.onnx"
    code, stdout, _ = remap("export", doc, "mlp", "--untrained", "--seed", "3", "-o", out, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["model"] == "mlp" and result["path"] == str(out)
    assert result["trained"] is False and result["seed"] == 3
    assert result["param_count"] == result["expected_params"] == language_count("mlp")
    assert result["size_bytes"] == out.stat().st_size
    assert result["input_shape"] == [1, 8, 8] and result["exporter"] == "torchscript"


def test_export_defaults_to_model_name_in_current_folder(remap, doc: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = remap("export", doc, "mlp", "--untrained")
    assert code == 0 and (tmp_path / "mlp.onnx").is_file()


def test_export_unknown_model(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, stdout, stderr = remap("export", doc, "smal", "--untrained")
    assert code == 2 and stdout == ""
    assert stderr.strip() == (f"remap export: error: {doc} has no model 'smal'; did you mean 'small'?; "
                              "models: small, mlp, broken")


def test_export_without_store_needs_untrained(remap, doc: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("export", doc, "small", "-o", tmp_path / "s.onnx")
    assert code == 2
    assert stderr.strip() == (f"remap export: error: model 'small' has not been trained: there is no store at "
                              f"{tmp_path / '.remap' / 'remap.db'}; train it first (remap train {doc} -m small), "
                              "or pass --untrained to export fresh weights")
    assert not (tmp_path / "s.onnx").exists()
    assert not (tmp_path / ".remap").exists()  # looking for weights creates no store


def test_export_untrained_model_in_a_store(remap, trained: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("export", trained, "mlp", "-o", tmp_path / "m.onnx")
    assert code == 2
    assert "model 'mlp' has no finished training with models.remap's data and settings in" in stderr
    assert "--untrained" in stderr


def test_export_looks_up_the_training_with_the_epochs_given(remap, trained: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # trained with the file's epochs=1; a training of 2 epochs is another run, not in the store
    code, _, stderr = remap("export", trained, "small", "--epochs", "2", "-o", tmp_path / "m.onnx")
    assert code == 2 and "model 'small' has no finished training" in stderr
    # and says which settings the training it has used, and how to ask for it
    assert "(run 1 trained it with epochs=1; pass --epochs 1 to use it)" in stderr
    code, _, stderr = remap("export", trained, "small", "--epochs", "1", "-o", tmp_path / "m.onnx")
    assert code == 0, stderr


def test_export_trained_uses_the_checkpoint(remap, trained: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    from remapdsl.store.db import Store
    from remapdsl.train.data import load_dataset
    from remapdsl.train.trainer import Checkpoint

    out = tmp_path / "small.onnx"
    code, stdout, stderr = remap("export", trained, "small", "-o", out, "--json")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["trained"] is True and result["run"] == 1 and result["epoch"] == 1 and result["seed"] is None
    with Store(trained.parent / ".remap" / "remap.db") as store:
        _, data = store.last_checkpoint(1)  # type: ignore[misc]
    state = Checkpoint.from_bytes(data).model_state
    # the file holds the trained weights, not fresh ones
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    assert np.array_equal(stored["0.weight"], state["0.weight"].numpy())
    # and computes what the trained torch model computes on validation examples
    from remapdsl.onnx.export import build_torch_model

    spec = parse(DOC).document.model("small")
    assert spec is not None
    module = build_torch_model(spec, (1, 8, 8), state)
    x = load_dataset(None).x_val[:32]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        assert np.abs(got - module(torch.from_numpy(x)).numpy()).max() <= 1e-4


def test_export_invalid_model_shows_its_errors(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("export", doc, "broken", "--untrained")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert lines[0].startswith(f"{doc}:22:5: error: dense needs a flat input")
    assert lines[-1] == "remap export: error: model 'broken' has errors (above); fix them first"


@pytest.mark.parametrize(("where", "reason"), [
    ("missing/m.onnx", "does not exist"),
    (".", "is a folder"),
    ("models.remap/m.onnx", "is a file, not a folder"),
])
def test_export_unwritable_path(remap, doc: Path, tmp_path: Path, where: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("export", doc, "small", "--untrained", "-o", tmp_path / where)
    assert code == 2
    assert stderr.startswith("remap export: error: cannot write") and reason in stderr


def test_export_missing_file(remap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("export", tmp_path / "nope.remap", "small", "--untrained")
    assert code == 2
    assert stderr.strip() == f"remap export: error: {tmp_path / 'nope.remap'}: no such file"


def test_export_with_broken_data_line(remap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.remap"
    path.write_text("data digitz\nmodel m:\n    flatten\n    dense 10\n")
    code, _, stderr = remap("export", path, "m", "--untrained")
    assert code == 2
    assert f"{path}:1:1: error: unknown data set 'digitz'" in stderr
    assert "input shape is unknown" in stderr


# --- bench ----------------------------------------------------------------------------------------


def test_bench_table(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, stdout, stderr = remap("bench", doc, "--untrained")
    assert code == 0, stderr
    assert "skipped (errors; see remap check): broken" in stderr
    lines = stdout.splitlines()
    assert lines[0].split() == ["model", "weights", "params", "size", "b1", "p50", "b1", "p95", "b64", "p50",
                                "b64", "p95", "max", "diff", "provider"]
    small = lines[1].split()
    assert small[:3] == ["small", "fresh", f"{language_count('small'):,}"]
    assert small[-1] == "CPU"
    assert lines[2].split()[0] == "mlp"
    assert "CPUExecutionProvider on" in stdout and "1 intra-op / 1 inter-op thread(s)" in stdout
    assert "100 timed runs after 10 warm-up runs" in stdout


def test_bench_json_one_model(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = remap("bench", doc, "--model", "mlp", "--untrained", "--json", "--threads", "2")
    assert code == 0
    result = json.loads(stdout)
    [report] = result["reports"]
    assert report["model"] == "mlp" and report["trained"] is False
    assert report["param_count"] == report["expected_params"] == language_count("mlp")
    assert report["parity_ok"] and report["max_abs_diff"] <= 1e-4
    assert report["parity_inputs"] in ("validation", "random")
    assert [lat["batch"] for lat in report["latency"]] == [1, 64]
    assert all(lat["runs"] == 100 and lat["p50_ms"] <= lat["p95_ms"] for lat in report["latency"])
    assert report["session"]["provider"] == "CPUExecutionProvider"
    assert report["session"]["intra_op_threads"] == 2
    assert result["diagnostics"] == []


def test_bench_reports_measured_budgets(remap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "tight.remap"
    path.write_text("budget size <= 2KB\nbudget latency <= 1000s\n\nmodel wide:\n    flatten\n    dense 256\n"
                    "    relu\n    dense 10\n")
    code, stdout, _ = remap("bench", path, "--untrained")
    assert code == 1
    [line] = [ln for ln in stdout.splitlines() if "budget" in ln]
    assert line.startswith(f"{path}:4:7: error: model 'wide' is ")
    assert line.endswith("bytes as ONNX, over the budget of 2KB")

    code, stdout, _ = remap("bench", path, "--untrained", "--json")
    assert code == 1
    [diag] = json.loads(stdout)["diagnostics"]
    assert (diag["line"], diag["code"], diag["model"]) == (4, "budget-size", "wide")


def test_check_reads_measured_budgets_from_the_store(remap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from remapdsl.store.db import Store, default_store_path

    text = "budget size <= 2KB\n\nmodel wide:\n    flatten\n    dense 256\n    relu\n    dense 10\n"
    path = tmp_path / "ws" / "tight.remap"
    path.parent.mkdir()
    path.write_text(text)
    # nothing measured yet, and no store: clean, and no store is created by looking
    code, stdout, stderr = remap("check", path)
    assert (code, stdout) == (0, "") and "ok: 1 model" in stderr
    assert not (path.parent / ".remap").exists()

    Store(default_store_path(path)).close()
    assert remap("bench", path, "--untrained")[0] == 1  # measures and records the report
    code, stdout, _ = remap("check", path)
    assert code == 1
    lines = stdout.splitlines()
    assert len(lines) == 2 and all("model 'wide' is " in ln and ln.endswith("over the budget of 2KB") for ln in lines)
    assert lines[0].startswith(f"{path}:3:7: error: ") and lines[1].startswith(f"{path}:1:1: error: ")

    # the same file elsewhere reads the store named by --store
    other = tmp_path / "copy.remap"
    other.write_text(text)
    assert remap("check", other)[0] == 0
    code, stdout, _ = remap("check", other, "--store", default_store_path(path))
    assert code == 1 and stdout.count("over the budget of 2KB") == 2
    code, _, stderr = remap("check", other, "--store", tmp_path / "none.db")
    assert code == 0 and "no store at" in stderr and not (tmp_path / "none.db").exists()


def test_bench_uses_trained_weights_and_records_reports(remap, trained: Path) -> None:  # type: ignore[no-untyped-def]
    from remapdsl.language.hashing import architecture_hash
    from remapdsl.onnx.records import latest_report
    from remapdsl.store.db import Store, default_store_path

    code, stdout, stderr = remap("bench", trained)
    assert code == 0, stderr
    rows = {line.split()[0]: line.split() for line in stdout.splitlines()[1:3]}
    assert rows["small"][1] == "trained" and rows["mlp"][1] == "fresh"
    assert f"recorded in {default_store_path(trained)}" in stdout
    document = parse(DOC).document
    with Store(default_store_path(trained)) as store:
        small = latest_report(store, architecture_hash(document.model("small")))  # type: ignore[arg-type]
        mlp = latest_report(store, architecture_hash(document.model("mlp")))  # type: ignore[arg-type]
        # the worker measured the trained model when its training finished, and bench measured it again
        measured_by_worker, artifact = store.artifacts(run_id=1, kind="onnx")
    assert small is not None and small.trained and small.parity_inputs == "validation" and small.ok
    assert mlp is not None and not mlp.trained
    assert Path(artifact.path).stat().st_size == small.size_bytes
    assert measured_by_worker.path == artifact.path  # one file per run and exporter, written again

    code, stdout, _ = remap("bench", trained, "--model", "small", "--no-store", "--untrained", "--json")
    assert code == 0 and json.loads(stdout)["stored_in"] is None
    assert json.loads(stdout)["reports"][0]["trained"] is False


def test_bench_bad_inputs(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, stderr = remap("bench", doc, "--model", "nosuch")
    assert code == 2 and "has no model 'nosuch'" in stderr
    code, _, stderr = remap("bench", doc, "--model", "broken")
    assert code == 2 and "model 'broken' has errors" in stderr
    code, _, stderr = remap("bench", doc, "--runs", "10")
    assert code == 2 and "--runs must be at least 100" in stderr
    code, _, stderr = remap("bench", doc, "--runs", "100000000000000000000")
    assert code == 2 and "--runs must be at most 100,000" in stderr
    code, _, stderr = remap("bench", doc, "--threads", "257")
    assert code == 2 and "--threads must be at most 256" in stderr
    code, _, stderr = remap("bench", doc, "--provider", "tpu")
    assert code == 2 and "invalid choice: 'tpu'" in stderr


def test_bench_cuda_on_a_cpu_runtime_says_it_fell_back(remap, doc: Path) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = remap("bench", doc, "--model", "mlp", "--untrained", "--provider", "cuda")
    assert code == 0
    assert "fell back to the CPU: onnxruntime has no CUDAExecutionProvider" in stdout


def test_bench_file_without_valid_models(remap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.remap"
    path.write_text("model m:\n    conv2d 16\n    dense 10\n")
    code, _, stderr = remap("bench", path)
    assert code == 2 and "has no valid model to measure" in stderr
