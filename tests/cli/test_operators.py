"""`remap sample`, `remap ablate` and `remap vary`: documents written whole, children appended, bad input refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from remapdsl.cli import main
from remapdsl.language.analysis import analyze
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse

FILE = """data digits
train epochs=2 seed=0
budget params <= 100k

# the user's own model
model small:
    conv2d 16
    relu
    maxpool 2
    flatten
    dense 10

model wide from small:
    conv2d 32  @keep
    relu
    maxpool 2
    flatten
    dropout 0.5
    dense 10

model broken:
    conv2d 16
    dense 10
"""


@pytest.fixture
def remap_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.remap"
    path.write_text(FILE, encoding="utf-8")
    return path


def analysed(text: str):  # type: ignore[no-untyped-def]
    result = parse(text)
    assert result.ok, result.diagnostics
    return analyze(result.document)


def test_sample_writes_a_complete_valid_document_to_stdout(capsys):
    assert main(["sample", "6", "--seed", "4"]) == 0
    out, err = capsys.readouterr()
    analysis = analysed(out)
    assert analysis.valid
    assert out.startswith("data digits\ntrain epochs=10 batch=128 lr=0.001 optimizer=adam seed=4\n\n"
                          "# sampled, seed 4\n")
    assert list(analysis.models) == [f"m{i:03d}" for i in range(6)]
    assert err.strip() == "sampled 6 models for digits (1x8x8, 10 classes)"
    assert main(["sample", "6", "--seed", "4"]) == 0
    assert capsys.readouterr().out == out


def test_sample_to_a_file_for_another_data_set(tmp_path, capsys):
    target = tmp_path / "cifar.remap"
    assert main(["sample", "5", "--data", "cifar10", "--path", str(tmp_path), "--max-params", "50k", "-o",
                 str(target)]) == 0
    analysis = analysed(target.read_text(encoding="utf-8"))
    assert analysis.valid and analysis.dataset is not None and analysis.dataset.input_shape == (3, 32, 32)
    assert all(info.param_count <= 50_000 for info in analysis.models.values())
    assert f"into {target}" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["sample", "0"], "N must be at least 1; found 0"),
    (["sample", "3", "--data", "cifa"], "unknown data set 'cifa'; expected one of digits"),
    (["sample", "3", "--data", "cifar10"], "data cifar10 needs the folder or file it lives in"),
    (["sample", "3", "--path", "x"], "data digits is bundled and takes no --path"),
    (["sample", "3", "--max-params", "lots"], "--max-params expects a count such as 100k"),
    (["sample", "3", "--seed", "-1"], "--seed must be from 0 to"),
    (["sample", "3", "--max-layers", "2"], "found only 1 distinct models of 3"),
    (["sample", "3", "--residual", "1.5"], "--residual must be a probability from 0 to 1; found 1.5"),
    (["sample", "3", "--residual", "nan"], "--residual must be a probability from 0 to 1"),
])
def test_sample_refuses_bad_input(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("remap sample: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_sample_with_residual_blocks_writes_models_that_check_clean(capsys):
    assert main(["sample", "8", "--seed", "1", "--residual", "1"]) == 0
    out = capsys.readouterr().out
    result = parse(out)
    assert result.diagnostics == () and analyze(result.document).valid
    assert sum(1 for m in result.document.models if m.blocks) >= 6 and "residual" in out


def test_ablate_appends_children_that_check_clean(remap_file, capsys):
    assert main(["ablate", str(remap_file), "small"]) == 0
    out, err = capsys.readouterr()
    text = remap_file.read_text(encoding="utf-8")
    assert text.startswith(FILE.rstrip() + "\n\n# ablation: Removed conv2d at index 0\nmodel small_abl0 from small:\n")
    assert out.splitlines() == [
        "small_abl0: Removed conv2d at index 0 (170 parameters)",
        "small_abl1: Removed relu at index 1 (2,730 parameters)",
        "small_abl2: Removed maxpool at index 2 (10,410 parameters)",
        "note: layer 3 (flatten): skipped, the child (after added flatten at index 3) has the same architecture as "
        "the parent 'small'",
    ]
    assert err.strip() == f"appended 3 models to {remap_file}"
    analysis = analyze(parse(text).document)
    assert {"small_abl0", "small_abl1", "small_abl2"} <= set(analysis.models)
    assert all(analysis.models[f"small_abl{i}"].valid for i in range(3))
    # a second run finds every child already there
    assert main(["ablate", str(remap_file), "small", "--layers", "0,1"]) == 0
    out, err = capsys.readouterr()
    assert "a model already in the document" in out and "is unchanged" in err
    assert remap_file.read_text(encoding="utf-8") == text


def test_ablate_selected_layers_into_a_document_of_their_own(remap_file, tmp_path, capsys):
    out_path = tmp_path / "children.remap"
    assert main(["ablate", str(remap_file), "wide", "--layers", "0,4", "-o", str(out_path)]) == 0
    assert remap_file.read_text(encoding="utf-8") == FILE
    analysis = analysed(out_path.read_text(encoding="utf-8"))
    # the header, the parent and its ancestor come along, so `from` resolves and the file checks clean
    assert list(analysis.models) == ["small", "wide", "wide_abl0", "wide_abl4"]
    assert analysis.valid and analysis.document.budget("params") is not None
    assert "wrote 2 models" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["ablate", "{f}", "smal"], "has no model 'smal'; did you mean 'small'?; models: small, wide, broken"),
    (["ablate", "{f}", "broken"], "model 'broken' has errors; fix them first: {f}:23:5: error: dense needs a flat"),
    (["ablate", "{f}", "small", "--layers", "a"], "--layers expects comma-separated layer indices such as 0,2; "
                                                   "found 'a'"),
    (["ablate", "{f}", "small", "--layers", "0,12"], "--layers: index 12 is out of range; model 'small' has "
                                                      "layers 0 to 4"),
    (["ablate", "{f}", "small", "-o", "{f}"], "-o names the input file"),
    (["vary", "{f}", "small", "-n", "0"], "-n must be at least 1; found 0"),
    (["vary", "{f}", "small", "--changes", "0"], "--changes must be at least 1"),
    (["vary", "{f}", "small", "-n", "10001"], "-n must be at most 10,000; found 10,001"),
    (["vary", "{f}", "small", "--changes", "101"], "--changes must be at most 100; found 101"),
    (["show", "{f}", "small", "--rows", "51"], "--rows must be at most 50; found 51"),
    (["sample", "100000000000000000000"], "N must be at most 100,000; found 100,000,000,000,000,000,000"),
    (["demo", "--models", "10001", "--dir", "{f}.demo"], "--models must be at most 10,000"),
    (["demo", "--epochs", "10001", "--dir", "{f}.demo"], "--epochs must be at most 10,000"),
    (["demo", "--jobs", "257", "--dir", "{f}.demo"], "--jobs must be at most 256"),
    (["worker", "--threads", "100000000000000000000", "--store", "{f}.db"], "--threads must be at most 256"),
    (["vary", "{f}", "small", "--ops", "remove,repalce"], "--ops: unknown operator 'repalce'; did you mean "
                                                           "'replace'?"),
    (["vary", "{f}", "broken"], "model 'broken' has errors"),
    (["vary", "{f}", "nope"], "has no model 'nope'"),
])
def test_bad_input_is_one_line_and_leaves_the_file_alone(remap_file, argv, message, capsys):
    before = remap_file.read_bytes()
    assert main([a.replace("{f}", str(remap_file)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.replace("{f}", str(remap_file)) in err and len(err.strip().splitlines()) == 1
    assert remap_file.read_bytes() == before
    # a count refused before anything was made: no demo folder, no store
    assert sorted(p.name for p in remap_file.parent.iterdir()) == [remap_file.name]


def test_vary_appends_distinct_children_and_a_rerun_adds_new_ones(remap_file, capsys):
    assert main(["vary", str(remap_file), "wide", "-n", "4", "--changes", "2", "--seed", "3"]) == 0
    out, _ = capsys.readouterr()
    names = [line.split(":")[0] for line in out.splitlines() if not line.startswith("note:")]
    assert names == ["wide_v1", "wide_v2", "wide_v3", "wide_v4"]
    assert main(["vary", str(remap_file), "wide", "-n", "4", "--changes", "2", "--seed", "3"]) == 0
    out, _ = capsys.readouterr()
    names = [line.split(":")[0] for line in out.splitlines() if not line.startswith("note:")]
    assert names == ["wide_v5", "wide_v6", "wide_v7", "wide_v8"]
    analysis = analyze(parse(remap_file.read_text(encoding="utf-8")).document)
    children = [analysis.models[f"wide_v{i}"] for i in range(1, 9)]
    assert all(info.valid for info in children)
    assert len({architecture_hash(info.model) for info in children}) == 8
    # @keep on the first conv: no child touches it
    assert all(info.model.layers[0] == analysis.models["wide"].model.layers[0] for info in children)


def test_vary_with_only_remove_and_a_crlf_file(tmp_path, capsys):
    path = tmp_path / "crlf.remap"
    path.write_bytes(FILE.replace("\n", "\r\n").encode("utf-8"))
    assert main(["vary", str(path), "small", "-n", "2", "--ops", "remove"]) == 0
    out, _ = capsys.readouterr()
    assert all("Removed" in line for line in out.splitlines())
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert parse(raw.decode("utf-8")).document.model("small_v2") is not None


def test_vary_reports_when_fewer_children_exist(remap_file, capsys):
    # conv2d is @keep: maxpool size 3 or 5 and dropout's six other rates make eight children, no more
    assert main(["vary", str(remap_file), "wide", "-n", "10", "--ops", "reparameterize"]) == 0
    out, _ = capsys.readouterr()
    assert len([line for line in out.splitlines() if line.startswith("wide_v")]) == 8
    assert "note: found 8 of 10 distinct valid children in 500 attempts" in out


def test_the_commands_are_registered(capsys):
    for command in ("sample", "ablate", "vary"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert f"usage: remap {command}" in capsys.readouterr().out
