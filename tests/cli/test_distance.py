"""`remap distance`, `remap neighbours` and `remap layout` on a .remap file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from remapdsl.cli import COMMANDS
from remapdsl.cli import distance as distance_cli
from remapdsl.cli import layout as layout_cli
from remapdsl.cli import neighbours as neighbours_cli
from remapdsl.cli.options import UsageError

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

model same_as_small:
    conv2d   16 kernel=3 stride=1     # formatting, stride and pool kind are not represented
    relu
    avgpool 2
    flatten
    dense 10

model mlp:
    flatten
    dense 64
    tanh
    dense 10
"""


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run one of these subcommands as `remap` does: usage errors become exit status 2."""
    parser = argparse.ArgumentParser(prog="remap")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (distance_cli, neighbours_cli, layout_cli):
        module.register(sub)
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except UsageError as e:
        print(f"remap {args.command}: error: {e}", file=__import__("sys").stderr)
        code = 2
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def remap_file(tmp_path: Path) -> Path:
    path = tmp_path / "digits.remap"
    path.write_text(FILE, encoding="utf-8")
    return path


def test_the_commands_are_listed():
    assert {"distance", "neighbours", "layout"} <= set(COMMANDS)


def test_distance_json_gives_lp_and_emd(remap_file, capsys):
    code, out, _ = invoke(["distance", str(remap_file), "small", "small_wide", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    # conv 16 vs 32, relu 256 vs 1024, pool 16 vs 32, dense 160 vs 320, and ip, softmax, op 100 vs
    # 140.8 (a tenth of 1408): b's extra mass comes from a's dummy at cost 1
    extra = 16 + 768 + 16 + 160 + 3 * 40.8
    assert result["lp"] == pytest.approx(extra)
    assert result["emd"] == pytest.approx(extra / (448 + 300 + 1408 + 3 * 140.8))
    assert result["space"] == "structural" and result["a"] == "small" and result["b"] == "small_wide"


def test_distance_text(remap_file, capsys):
    code, out, _ = invoke(["distance", str(remap_file), "small", "same_as_small"], capsys)
    assert code == 0 and out.strip() == "small - same_as_small: OTMANN lp 0, emd 0"


def test_unknown_model_is_a_usage_error(remap_file, capsys):
    code, _, err = invoke(["distance", str(remap_file), "small", "smal_wide"], capsys)
    assert code == 2
    assert "has no model 'smal_wide'; did you mean 'small_wide'?" in err


def test_missing_file_is_a_usage_error(tmp_path, capsys):
    code, _, err = invoke(["distance", str(tmp_path / "nope.remap"), "a", "b"], capsys)
    assert code == 2 and "nope.remap: no such file" in err


def test_a_model_with_a_syntax_error_is_refused(tmp_path, capsys):
    path = tmp_path / "broken.remap"
    path.write_text(FILE + "\nmodel broken:\n    conv2d 16 kernel=\n    dense 10\n", encoding="utf-8")
    code, _, err = invoke(["distance", str(path), "small", "broken"], capsys)
    # the parser dropped the broken layer; comparing what is left would misreport the model
    assert code == 2 and "cannot compare 'broken':" in err and "broken.remap:32:15: " in err


def test_predictions_space_needs_trained_runs(remap_file, capsys):
    code, _, err = invoke(["distance", str(remap_file), "small", "mlp", "--space", "predictions"], capsys)
    assert code == 2 and "no store at" in err
    store = remap_file.parent / "empty.db"
    from remapdsl.store.db import Store

    Store(store).close()
    code, _, err = invoke(["distance", str(remap_file), "small", "mlp", "--space", "predictions", "--store",
                           str(store)], capsys)
    assert code == 2 and "no finished run on this data for small, mlp" in err


def test_predictions_space_compares_what_trained_models_predict(remap_file, capsys):
    from remapdsl.cli import main
    from remapdsl.store.db import Store

    store = remap_file.parent / "runs.db"
    assert main(["train", str(remap_file), "--epochs", "1", "--store", str(store), "--jobs", "1"]) == 0
    capsys.readouterr()
    common = ["--space", "predictions", "--store", str(store), "--json"]
    code, out, _ = invoke(["distance", str(remap_file), "small", "mlp", *common], capsys)
    assert code == 0
    measured = json.loads(out)["distance"]
    with Store(store) as s:
        by_name = {r.model_name: s.predictions(r.id) for r in s.runs()}
    assert measured == pytest.approx(np.mean(np.asarray(by_name["small"]) != np.asarray(by_name["mlp"])))
    assert 0 < measured < 1

    code, out, _ = invoke(["neighbours", str(remap_file), "small", "-k", "3", *common], capsys)
    found = json.loads(out)["neighbours"]
    assert code == 0 and len(found) == 3 and [n["distance"] for n in found] == sorted(n["distance"] for n in found)

    code, out, _ = invoke(["layout", str(remap_file), *common], capsys)
    result = json.loads(out)
    assert code == 0 and len(result["points"]) == 4 and result["measure"] == "hamming"
    assert {p["status"] for p in result["points"]} == {"relaid"}
    with Store(store) as s:
        laid = {key for (key,) in s.conn.execute("SELECT key FROM layouts WHERE space = 'predictions'")}
        runs = {str(r.id) for r in s.runs()}
    assert laid <= runs and len(laid) >= 3  # keyed by run: small and same_as_small may share one
    code, out, _ = invoke(["layout", str(remap_file), *common], capsys)
    assert {p["status"] for p in json.loads(out)["points"]} == {"kept"}


def test_neighbours_are_ordered_by_distance(remap_file, capsys):
    code, out, _ = invoke(["neighbours", str(remap_file), "small", "-k", "2", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert [n["model"] for n in result["neighbours"]] == ["same_as_small", "small_wide"]
    assert result["neighbours"][0]["distance"] == 0.0


def test_neighbours_text_and_bad_k(remap_file, capsys):
    code, out, _ = invoke(["neighbours", str(remap_file), "mlp"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "nearest to mlp (structural, OTMANN emd):" and len(lines) == 4
    code, _, err = invoke(["neighbours", str(remap_file), "mlp", "-k", "0"], capsys)
    assert code == 2 and "-k must be at least 1" in err


def test_layout_json_places_equal_structures_together(remap_file, capsys):
    code, out, _ = invoke(["layout", str(remap_file), "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    points = {p["model"]: np.array([p["x"], p["y"]]) for p in result["points"]}
    assert set(points) == {"small", "small_wide", "same_as_small", "mlp"}
    assert np.linalg.norm(points["small"] - points["same_as_small"]) < 1e-9
    assert np.linalg.norm(points["small"] - points["mlp"]) > np.linalg.norm(points["small"] - points["small_wide"])
    assert result["measure"] == "emd" and result["stress"] >= 0


def test_layout_with_lp_and_refinement(remap_file, capsys):
    code, out, _ = invoke(["layout", str(remap_file), "--measure", "lp", "--refine", "20"], capsys)
    assert code == 0 and out.startswith("structural layout (OTMANN lp, stress")
    code, _, err = invoke(["layout", str(remap_file), "--refine", "-1"], capsys)
    assert code == 2 and "--refine must be 0 or more" in err


# --- layouts kept in the store, and the store's cache ----------------------------------------------

EXTRA = """
model extra:
    conv2d 8 kernel=5
    flatten
    dense 10
"""


def points_of(out: str) -> dict[str, dict[str, object]]:
    return {p["model"]: p for p in json.loads(out)["points"]}


def test_layout_keeps_positions_in_a_store_beside_the_file(remap_file, capsys):
    store = remap_file.parent / ".remap" / "remap.db"
    assert not store.exists()
    code, out, _ = invoke(["layout", str(remap_file), "--json"], capsys)
    first = points_of(out)
    assert code == 0 and store.is_file() and json.loads(out)["store"] == str(store)
    assert {p["status"] for p in first.values()} == {"relaid"}
    remap_file.write_text(FILE + EXTRA, encoding="utf-8")
    code, out, _ = invoke(["layout", str(remap_file), "--json"], capsys)
    second = points_of(out)
    assert code == 0 and second["extra"]["status"] == "placed" and json.loads(out)["stress"] is None
    for name, p in first.items():
        assert second[name]["status"] == "kept" and (second[name]["x"], second[name]["y"]) == (p["x"], p["y"])
    code, out, _ = invoke(["layout", str(remap_file), "--relayout", "--refine", "5"], capsys)
    lines = out.splitlines()
    assert code == 0 and "stress" in lines[0] and all(line.endswith("laid out") for line in lines[1:])
    assert lines[-1] == "5 laid out"
    code, out, _ = invoke(["layout", str(remap_file)], capsys)
    assert out.splitlines()[-1] == "5 kept; --relayout lays them all out afresh"


def test_layout_help_says_positions_are_kept_and_the_store_is_created(capsys):
    with pytest.raises(SystemExit):
        invoke(["layout", "--help"], capsys)
    text = " ".join(capsys.readouterr().out.split())
    assert "created if missing" in text and "--relayout" in text and "stored positions never move" in text


def test_layout_json_has_no_negative_zero(tmp_path, capsys):
    path = tmp_path / "two.remap"
    path.write_text("data digits\n\nmodel a:\n    flatten\n    dense 10\n\nmodel b:\n    flatten\n    dense 32\n"
                    "    relu\n    dense 10\n", encoding="utf-8")
    code, out, _ = invoke(["layout", str(path), "--json", "--store", str(tmp_path / "s.db")], capsys)
    assert code == 0 and "-0.0" not in out
    assert [p["y"] for p in json.loads(out)["points"]] == [0.0, 0.0]


def test_layout_rejects_a_measure_the_space_does_not_have(remap_file, capsys):
    code, _, err = invoke(["layout", str(remap_file), "--space", "predictions", "--measure", "lp"], capsys)
    assert code == 2 and "--measure lp is a structural distance" in err


def test_neighbours_and_distance_read_the_store_cache_and_never_create_one(remap_file, capsys, monkeypatch):
    from remapdsl.space import otmann
    code, out, _ = invoke(["neighbours", str(remap_file), "small", "--json"], capsys)
    assert code == 0 and not (remap_file.parent / ".remap").exists()
    computed = json.loads(out)["neighbours"]
    invoke(["layout", str(remap_file)], capsys)  # the store now holds every pair

    def no_solving(*args: object) -> float:
        raise AssertionError("a distance was computed instead of read from the store")

    monkeypatch.setattr(otmann, "_solve", no_solving)
    code, out, _ = invoke(["neighbours", str(remap_file), "small", "--json"], capsys)
    assert code == 0 and json.loads(out)["neighbours"] == computed
    code, out, _ = invoke(["distance", str(remap_file), "small", "mlp", "--json"], capsys)
    assert code == 0 and json.loads(out)["emd"] == next(n["distance"] for n in computed if n["model"] == "mlp")
    monkeypatch.undo()
    code, out, _ = invoke(["neighbours", str(remap_file), "small", "--json", "--store",
                           str(remap_file.parent / "no.db")], capsys)
    assert code == 0 and json.loads(out)["neighbours"] == computed and not (remap_file.parent / "no.db").exists()
