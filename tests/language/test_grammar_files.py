"""The editor's language files in grammar/ agree with the language they describe.

The TextMate grammar is generated from the layer catalog by grammar/build_tmlanguage.py; these tests fail when
the catalog (or the data sets, train options, budget metrics) changes and the grammar was not regenerated.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from remapdsl.language.analysis import analyze
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.parser import parse
from tests.paths import GRAMMAR


def tm_grammar() -> dict:
    return json.loads((GRAMMAR / "remap.tmLanguage.json").read_text(encoding="utf-8"))


def alternation(pattern: str, group: int) -> set[str]:
    """The words of the `group`-th `(a|b|c)` or `(?:a|b|c)` word list in a grammar regex."""
    lists = re.findall(r"\((?:\?:)?((?:[\w\\.-]+\|)+[\w\\.-]+)\)", pattern)
    return {w.replace("\\.", ".") for w in lists[group].split("|")}


def test_committed_grammar_is_the_generated_one():
    done = subprocess.run([sys.executable, str(GRAMMAR / "build_tmlanguage.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_grammar_layer_names_are_the_catalog():
    begin = tm_grammar()["repository"]["layer-line"]["begin"]
    # The first list is the keywords a layer line may not start with; the second the layer types.
    assert alternation(begin, 0) == {"data", "train", "budget", "model", "space"}
    assert alternation(begin, 1) == set(LAYER_TYPES)


def test_grammar_data_set_names_are_the_parser_s():
    begin = tm_grammar()["repository"]["data-line"]["begin"]
    assert alternation(begin, 0) == set(DATASET_KINDS)


def test_grammar_regexes_are_valid():
    # Python's re reads the constructs used here ([^\W\d], lookarounds) as Oniguruma does.
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("match", "begin", "end"):
                    re.compile(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tm_grammar())


@pytest.mark.parametrize("name", ["language-configuration.json", "snippets.json", "remap.tmLanguage.json"])
def test_files_are_json(name):
    json.loads((GRAMMAR / name).read_text(encoding="utf-8"))


def expand(body: list[str]) -> str:
    """A snippet as inserted when the user accepts every default: ${1:x} -> x, ${2|a,b|} -> a, $0 -> ''."""
    text = "\n".join(body).replace("\t", "    ")
    text = re.sub(r"\$\{\d+\|([^,|]*)[^}]*\}", r"\1", text)
    text = re.sub(r"\$\{\d+:([^}]*)\}", r"\1", text)
    return re.sub(r"\$\d+", "", text)


def test_snippets_expand_to_a_valid_document():
    snippets = json.loads((GRAMMAR / "snippets.json").read_text(encoding="utf-8"))
    text = expand(snippets["Header"]["body"]) + "\n" + expand(snippets["Model"]["body"])
    result = parse(text)
    assert result.ok, result.diagnostics
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.diagnostics == ()
    assert [m.name for m in result.document.models] == ["name"]


def test_the_residual_snippet_expands_to_a_valid_block_with_each_shortcut():
    snippets = json.loads((GRAMMAR / "snippets.json").read_text(encoding="utf-8"))
    body = snippets["Residual block"]["body"]
    for choice, shortcut in (("", "identity"), (" shortcut=conv", "conv")):
        block = expand([body[0].replace("${1|:, shortcut=conv:, shortcut=dense:|}", choice + ":"), *body[1:]])
        lines = "".join(f"    {line}\n" for line in block.splitlines() if line)
        filters = "16" if shortcut == "identity" else "8"
        text = f"model m:\n    conv2d {filters}\n{lines}    flatten\n    dense 10\n"
        result = parse(text)
        assert result.ok, (text, result.diagnostics)
        analysis = analyze(result.document, result.diagnostics)
        assert analysis.diagnostics == (), (text, analysis.diagnostics)
        (block_spec,) = result.document.models[0].blocks
        assert block_spec.written().get("shortcut", "identity") == shortcut


def test_model_lines_indent_and_fold():
    config = json.loads((GRAMMAR / "language-configuration.json").read_text(encoding="utf-8"))
    indent = re.compile(config["indentationRules"]["increaseIndentPattern"])
    assert indent.match("model small_wide from small:  # wider")
    assert indent.match("    residual shortcut=conv:  @deny(unwrap)  # down")
    assert not indent.match("    conv2d 16 kernel=3")
    assert not indent.match("    residual 2")
    assert config["comments"]["lineComment"] == "#"
    assert config["folding"]["offSide"] is True


def test_the_space_snippet_expands_to_a_valid_space():
    snippets = json.loads((GRAMMAR / "snippets.json").read_text(encoding="utf-8"))
    text = expand(snippets["Header"]["body"]) + "\n" + expand(snippets["Space"]["body"])
    result = parse(text)
    assert result.ok, result.diagnostics
    analysis = analyze(result.document, result.diagnostics)
    assert analysis.diagnostics == (), analysis.diagnostics
    assert analysis.spaces["name"].size == 6


def test_space_and_choice_lines_indent():
    config = json.loads((GRAMMAR / "language-configuration.json").read_text(encoding="utf-8"))
    indent = re.compile(config["indentationRules"]["increaseIndentPattern"])
    assert indent.match("space small_cnn:  # the first")
    assert indent.match("    choice:")
