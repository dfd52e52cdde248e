"""`remap snac` and `remap show`."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remapdsl.cli import COMMANDS, main
from tests.paths import ROOT

EXAMPLE = ROOT / "examples" / "digits.remap"
DOCS = ROOT / "docs" / "snac"
SVG = "{http://www.w3.org/2000/svg}"

FILE = """\
data digits
train epochs=10 batch=128 lr=0.001 optimizer=adam seed=0

model small:
    conv2d 16 kernel=3 padding=same
    relu
    maxpool 2
    flatten
    dense 10

model small_wide from small:   # filters at 0 from 16 to 32
    conv2d 32 kernel=3 padding=same   @keep
    relu
    maxpool 2                         @allow(reparameterize, remove)
    flatten
    dense 10

model no_pool from small:
    conv2d 16 kernel=3
    relu
    flatten
    dense 10

model broken:
    conv2d 16
    maxpool 9
    flatten
    dense 10
"""

# The chips shown in the README, and the command that draws each (run from the repository root).
README_CHIPS = {
    "deeper.svg": ["examples/digits.remap", "deeper", "--legend"],
    "small_wide-diff.svg": ["examples/digits.remap", "small_wide", "--diff"],
    "small-compact.svg": ["examples/digits.remap", "small", "--size", "compact"],
    "small_wide-compact.svg": ["examples/digits.remap", "small_wide", "--size", "compact"],
    "deeper-compact.svg": ["examples/digits.remap", "deeper", "--size", "compact"],
    "mlp-compact.svg": ["examples/digits.remap", "mlp", "--size", "compact"],
    "deeper-mini.svg": ["examples/digits.remap", "deeper", "--size", "mini"],
    "deeper-micro.svg": ["examples/digits.remap", "deeper", "--size", "micro"],
    "res_small.svg": ["examples/residual.remap", "res_small"],
    "res_tanh-diff.svg": ["examples/residual.remap", "res_tanh", "--diff", "deep_tanh"],
}


@pytest.fixture
def remap_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.remap"
    path.write_text(FILE, encoding="utf-8")
    return path


def layers_of(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]


def test_commands_are_registered():
    assert "snac" in COMMANDS and "show" in COMMANDS


# --- remap snac ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["full", "compact", "mini", "micro"])
def test_snac_writes_an_svg_file(remap_file, tmp_path, capsys, size):
    out = tmp_path / "chip.svg"
    assert main(["snac", str(remap_file), "small", "-o", str(out), "--size", size]) == 0
    svg = out.read_text(encoding="utf-8")
    assert [g.get("data-kind") for g in layers_of(svg)] == ["conv2d", "relu", "maxpool", "flatten", "dense"]
    assert f"wrote {out}" in capsys.readouterr().err


def test_snac_prints_svg_or_text_without_a_file(remap_file, capsys):
    assert main(["snac", str(remap_file), "small", "--size", "mini"]) == 0
    assert len(layers_of(capsys.readouterr().out)) == 5
    assert main(["snac", str(remap_file), "small", "--format", "text", "--colour", "never"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("small  1x8x8 → 10, 2,730 parameters")
    assert lines[-1] == "C R M F D"


def test_snac_text_file_and_plates(tmp_path, capsys):
    path = tmp_path / "stack.remap"
    path.write_text("model stack:\n" + "    conv2d 8\n    relu\n" * 3 + "    flatten\n    dense 10\n", encoding="utf-8")
    out = tmp_path / "stack.txt"
    assert main(["snac", str(path), "stack", "-o", str(out), "--plates"]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[-1] == "[ C R ]×3 F D"
    assert "\x1b" not in out.read_text(encoding="utf-8")
    assert main(["snac", str(path), "stack", "--plates", "--size", "compact"]) == 0
    root = ET.fromstring(capsys.readouterr().out)
    assert [g.get("data-repeat") for g in root.iter(f"{SVG}g") if g.get("class") == "plate"] == ["3"]


@pytest.mark.parametrize("size", ["full", "compact", "mini", "micro"])
def test_snac_draws_an_unknown_layer_with_a_value(tmp_path, capsys, size):
    path = tmp_path / "odd.remap"
    path.write_text("model a:\n    conv3d 16 depth=2\n    flatten\n    dense 10\n", encoding="utf-8")
    assert main(["snac", str(path), "a", "--size", size]) == 1  # drawn, and the error reported
    captured = capsys.readouterr()
    assert [g.get("data-kind") for g in layers_of(captured.out)] == ["conv3d", "flatten", "dense"]
    assert "found 'conv3d'" in captured.err and "Traceback" not in captured.err
    if size == "full":
        root = ET.fromstring(captured.out)
        assert "0: conv3d 16 depth=2 → shape unknown" in [t.text for t in root.iter(f"{SVG}title")]
        assert "16 d2" in [t.text for t in root.iter(f"{SVG}text")]


def test_snac_diff_against_a_named_or_the_from_parent(remap_file, capsys):
    assert main(["snac", str(remap_file), "no_pool", "--diff", "small", "--size", "compact"]) == 0
    named = capsys.readouterr().out
    assert main(["snac", str(remap_file), "no_pool", "--diff", "--size", "compact"]) == 0
    implicit = capsys.readouterr().out
    assert named == implicit
    root = ET.fromstring(named)
    marks = [(m.get("data-status"), m.text) for m in root.iter() if m.get("class") == "mark"]
    assert marks == [("removed", "−")]
    assert main(["snac", str(remap_file), "small_wide", "--diff", "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "small → small_wide: 1 changed"
    assert "Δ 0 conv2d: filters 16 → 32" in text


def test_snac_diff_needs_a_parent(remap_file, capsys):
    assert main(["snac", str(remap_file), "small", "--diff"]) == 2
    assert "model 'small' has no parent" in capsys.readouterr().err
    assert main(["snac", str(remap_file), "small_wide", "--diff", "smal"]) == 2
    assert "no model 'smal'; did you mean 'small'?" in capsys.readouterr().err


def test_snac_png(remap_file, tmp_path, capsys):
    out = tmp_path / "chip.png"
    assert main(["snac", str(remap_file), "small", "-o", str(out), "--size", "compact"]) == 0
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert main(["snac", str(remap_file), "small", "--format", "png"]) == 2
    assert "PNG output needs a file" in capsys.readouterr().err


def test_snac_png_without_cairosvg_says_what_to_install(remap_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # makes `import cairosvg` fail
    out = tmp_path / "chip.png"
    assert main(["snac", str(remap_file), "small", "-o", str(out)]) == 2
    assert "pip install cairosvg" in capsys.readouterr().err
    assert not out.exists()


def test_snac_draws_a_broken_model_and_reports_its_errors(remap_file, tmp_path, capsys):
    out = tmp_path / "broken.svg"
    assert main(["snac", str(remap_file), "broken", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{remap_file}:26:5: error: maxpool: pool size 9 does not fit the 8x8 input" in err
    assert "blocks whose size is unknown are hatched" in err
    assert [g.get("data-kind") for g in layers_of(out.read_text(encoding="utf-8"))] == [
        "conv2d", "maxpool", "flatten", "dense"]


def test_snac_bad_input_is_a_clear_usage_error(remap_file, tmp_path, capsys):
    cases = [
        (["snac", str(tmp_path / "missing.remap"), "small"], "missing.remap: no such file"),
        (["snac", str(remap_file), "smal"], "has no model 'smal'; did you mean 'small'?"),
        (["snac", str(remap_file), "small", "-o", str(tmp_path / "chip.pdf")], "use .svg, .png or .txt"),
        (["snac", str(remap_file), "small", "-o", str(tmp_path)], "it is a folder"),
        (["snac", str(remap_file), "small", "--format", "text", "--rows", "0"], "--rows must be at least 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("remap snac: error: ") and message in err, (argv, err)


# --- remap show ---------------------------------------------------------------------------------------


def test_show_prints_the_chip_and_a_summary_table(remap_file, capsys):
    assert main(["show", str(remap_file), "small_wide", "--colour", "never"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "small_wide  1x8x8 → 10, 5,450 parameters, 51.2k FLOPs"
    assert lines[3] == "C R M F D"
    table = lines[lines.index("C R M F D") + 2:]
    assert table[0].split() == ["#", "layer", "output", "shape", "parameters", "share"]
    assert table[2].split() == ["input", "1x8x8"]
    # annotations are constraints, not architecture: the table leaves them out
    assert table[3].split() == ["0", "conv2d", "32", "kernel=3", "padding=same", "32x8x8", "320", "5.9%"]
    assert table[7].split() == ["4", "dense", "10", "10", "5,130", "94.1%"]
    assert table[-1] == "total: 5,450 parameters, 51,200 FLOPs (51.2k) per example"


def test_show_json(remap_file, capsys):
    assert main(["show", str(remap_file), "small", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "small" and data["parent"] is None
    assert data["input_shape"] == [1, 8, 8] and data["output_shape"] == [10]
    assert data["param_count"] == 2730 == sum(layer["param_count"] for layer in data["layers"])
    assert data["flops"] == sum(layer["flops"] for layer in data["layers"])
    assert [layer["layer"] for layer in data["layers"]] == [
        "conv2d 16 kernel=3 padding=same", "relu", "maxpool 2", "flatten", "dense 10"]
    assert data["layers"][0]["params"] == {"filters": 16, "kernel": 3, "stride": 1, "padding": "same"}
    assert data["layers"][2]["output_shape"] == [16, 4, 4]
    assert sum(layer["share"] for layer in data["layers"]) == pytest.approx(1.0)
    assert data["snac"].splitlines()[-1] == "C R M F D"


def test_show_lists_each_blocks_addition_after_its_layers(capsys):
    path = str(ROOT / "examples" / "residual.remap")
    assert main(["show", path, "res_small"]) == 0
    out = capsys.readouterr().out
    assert "╭" in out and "⊕" in out
    table = out[out.index("#  layer"):].splitlines()
    assert table[5].split()[:2] == ["2", "conv2d"] and table[5].index("conv2d") > table[4].index("relu")
    assert "⊕ residual (identity shortcut)" in table[8] and "⊕ residual (conv shortcut)" in table[11]
    assert table[11].split()[-2:] == ["544", "6.1%"]
    assert main(["show", path, "res_small", "--json"]) == 0
    blocks = json.loads(capsys.readouterr().out)["blocks"]
    assert [(b["start"], b["stop"], b["shortcut"], b["param_count"]) for b in blocks] == [(2, 5, "identity", 0),
                                                                                           (5, 7, "conv", 544)]


def test_show_colours_only_when_asked_or_on_a_terminal(remap_file, capsys):
    assert main(["show", str(remap_file), "small", "--colour", "always"]) == 0
    assert "\x1b[38;2;" in capsys.readouterr().out
    assert main(["show", str(remap_file), "small"]) == 0  # captured output is not a terminal
    assert "\x1b" not in capsys.readouterr().out


def test_show_a_broken_model_prints_its_errors_and_fails(remap_file, tmp_path, capsys):
    assert main(["show", str(remap_file), "broken"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "26:5: error: maxpool: pool size 9 does not fit" in err
    assert "model 'broken' has errors" in err
    syntax = tmp_path / "syntax.remap"
    syntax.write_text("model a:\n    conv2d 16 kernel=\n    flatten\n    dense 10\nmodel b:\n    flatten\n"
                      "    dense 10\n", encoding="utf-8")
    # a broken line drops its layer, so the model must not be shown as if it were whole
    assert main(["show", str(syntax), "a"]) == 1
    assert "2:15: error: expected a value after 'kernel='" in capsys.readouterr().err
    assert main(["show", str(syntax), "b"]) == 0
    bad_data = tmp_path / "bad_data.remap"
    bad_data.write_text("data digitz\nmodel a:\n    flatten\n    dense 10\n", encoding="utf-8")
    assert main(["show", str(bad_data), "a"]) == 1
    assert "unknown data set 'digitz'" in capsys.readouterr().err


def test_show_bad_input_is_a_clear_usage_error(remap_file, tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.remap"), "small"]) == 2
    assert "missing.remap: no such file" in capsys.readouterr().err
    assert main(["show", str(remap_file), "wide"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("remap show: error: ") and "models: small, small_wide, no_pool, broken" in err


# --- the README's chips -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(README_CHIPS))
def test_readme_chips_are_what_the_cli_draws_today(name, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["snac", *README_CHIPS[name]]) == 0
    drawn = capsys.readouterr().out
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == drawn, (
        f"docs/snac/{name} is out of date; redraw it: remap snac {' '.join(README_CHIPS[name])} -o docs/snac/{name}")
