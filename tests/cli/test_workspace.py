"""What the subcommands share: one way to read a .remap file, one message for a model a file lacks, and
subcommands that import only the CLI's ground floor and the library."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from remapdsl.cli import COMMANDS, main
from remapdsl.cli.options import UsageError
from remapdsl.cli.workspace import read_source, unknown_model

FILE = "data digits\n\nmodel small:\n    flatten\n    dense 32\n    relu\n    dense 10\n\n" \
       "model wide:\n    flatten\n    dense 64\n    relu\n    dense 10\n"
CLI = Path(__file__).resolve().parents[2] / "remapdsl" / "cli"


def test_a_file_is_read_with_its_line_endings_and_without_its_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "models.remap"
    path.write_bytes(b"\xef\xbb\xbf" + FILE.replace("\n", "\r\n").encode("utf-8"))
    source = read_source(path)
    assert source.bom and source.text == FILE.replace("\n", "\r\n")
    plain = tmp_path / "plain.remap"
    plain.write_text(FILE, encoding="utf-8")
    assert read_source(plain) == type(source)(FILE, False)
    plain.write_bytes(b"model \xff:\n")
    with pytest.raises(UsageError, match=r"plain\.remap is not UTF-8 text \(byte 6\)$"):
        read_source(plain)


def test_every_subcommand_reads_a_file_with_a_byte_order_mark(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.remap"
    path.write_bytes(b"\xef\xbb\xbf" + FILE.encode("utf-8"))
    assert main(["distance", str(path), "small", "wide", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["a"] == "small"
    assert main(["show", str(path), "wide", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "wide"


def test_one_message_for_a_model_the_file_lacks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.remap"
    path.write_text(FILE, encoding="utf-8")
    expected = f"{path} has no model 'smal'; did you mean 'small'?; models: small, wide"
    assert str(unknown_model(path, "smal", ["small", "wide"])) == expected
    assert str(unknown_model(path, "x", [])) == f"{path} has no model 'x'; it defines no models"
    for argv in (["show", str(path), "smal"], ["snac", str(path), "smal"], ["ablate", str(path), "smal"],
                 ["distance", str(path), "smal", "wide"], ["export", str(path), "smal", "--untrained"],
                 ["train", str(path), "-m", "smal"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip() == f"remap {argv[0]}: error: {expected}", argv


@pytest.mark.parametrize("command", COMMANDS)
def test_a_subcommand_imports_no_other_subcommand(command: str) -> None:
    tree = ast.parse((CLI / f"{command}.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    from_cli = {name for name in imported if name == "remapdsl.cli" or name.startswith("remapdsl.cli.")}
    assert from_cli <= {"remapdsl.cli.options", "remapdsl.cli.workspace"}
