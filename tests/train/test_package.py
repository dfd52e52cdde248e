"""The training package's face: its names load on first use, so importing it or its data modules needs no torch."""

from __future__ import annotations

import subprocess
import sys

import remapdsl.train
from tests.paths import ROOT


def test_importing_the_package_and_its_data_modules_leaves_torch_unloaded():
    code = ("import sys, remapdsl.train, remapdsl.train.data, remapdsl.train.data_formats\n"
            "from remapdsl.train import Dataset, load_dataset\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_name_of_the_face_loads_from_its_module():
    for name in remapdsl.train.__all__:
        value = getattr(remapdsl.train, name)
        assert value.__module__.startswith("remapdsl.train."), name
    try:
        remapdsl.train.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must be an AttributeError")
