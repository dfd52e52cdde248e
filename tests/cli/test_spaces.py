"""The CLI with spaces: a model drawn from a space keeps its space when its children are written elsewhere."""

from __future__ import annotations

from remapdsl.cli import main
from remapdsl.language.analysis import analyze
from remapdsl.language.parser import parse

TEXT = ("data digits\n\nspace s:\n    choice:\n        conv2d 8 kernel=3\n        conv2d 16 kernel=3\n    relu\n"
        "    choice:\n        maxpool 2\n        skip\n    flatten\n    dense 10\n\n"
        "model m from space s:\n    conv2d 16 kernel=3\n    relu\n    maxpool 2\n    flatten\n    dense 10\n")


def test_children_written_to_another_file_keep_the_space_their_root_was_drawn_from(tmp_path, capsys):
    source = tmp_path / "space.remap"
    source.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "children.remap"
    assert main(["ablate", str(source), "m", "-o", str(out)]) == 0
    result = parse(out.read_text(encoding="utf-8"))
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.diagnostics == ()
    assert [s.name for s in result.document.spaces] == ["s"]
    assert result.document.models[0].parent_space and len(result.document.models) > 1
    capsys.readouterr()
