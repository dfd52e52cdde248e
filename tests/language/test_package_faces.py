"""The package faces: each re-exports what the rest of the toolkit uses, and the language and the editor
import nothing heavy."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from types import FunctionType, ModuleType

import pytest

from tests.paths import ROOT

HEAVY = ("torch", "numpy", "pygls", "lsprotocol", "bokeh", "scipy", "sklearn", "ot")


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def top_packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_language_imports_lark_and_nothing_heavy_nor_above_it():
    loaded = modules_after("import remapdsl.language")
    assert "lark" in top_packages(loaded)
    assert top_packages(loaded).isdisjoint(HEAVY)
    assert {m for m in loaded if m.startswith("remapdsl.")} <= {"remapdsl.language"} | {
        m for m in loaded if m.startswith("remapdsl.language.")}


def test_the_editor_search_and_snac_import_no_torch_and_no_protocol():
    loaded = top_packages(modules_after("import remapdsl.editor, remapdsl.search, remapdsl.snac"))
    assert loaded.isdisjoint({"torch", "pygls", "lsprotocol", "bokeh"})


@pytest.mark.parametrize("package", ["language", "search", "snac", "editor", "store"])
def test_a_face_holds_its_re_exports_and_nothing_else(package: str):
    face = importlib.import_module(f"remapdsl.{package}")
    submodules = {n for n, v in vars(face).items() if isinstance(v, ModuleType)}
    public = {n for n in vars(face) if not n.startswith("_")} - submodules - {"annotations"}
    assert sorted(public) == sorted(face.__all__)
    # no logic of its own: every function and class comes from a module of the package
    assert not [n for n in face.__all__ if getattr(getattr(face, n), "__module__", None) == face.__name__]


LAZY_FACES = ("train", "space", "onnx", "jobs")


def test_the_lazy_faces_import_none_of_their_extras():
    loaded = top_packages(modules_after("; ".join(f"import remapdsl.{p}" for p in LAZY_FACES)))
    assert loaded.isdisjoint({"torch", "scipy", "ot", "onnx", "onnxruntime", "sklearn"})


@pytest.mark.parametrize("package", LAZY_FACES)
def test_a_lazy_face_finds_each_name_in_a_module_of_its_package(package: str):
    face = importlib.import_module(f"remapdsl.{package}")
    defined = [getattr(face, name) for name in face.__all__]
    homes = {value.__module__ for value in defined if isinstance(value, type | FunctionType)}
    assert homes and all(home.startswith(f"remapdsl.{package}.") for home in homes)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = face.missing
