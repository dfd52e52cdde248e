"""Run with the wheel's own interpreter: every package imports from the wheel alone (no optional extra), and
every module of the source tree (given as the argument) is in the wheel."""

import importlib
import pkgutil
import sys
from pathlib import Path

import remapdsl_server

import remapdsl

assert "venv" in remapdsl.__file__, remapdsl.__file__
shipped = set()
for package in (remapdsl, remapdsl_server):
    for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        shipped.add(found.name)
        if found.ispkg:
            importlib.import_module(found.name)

source = Path(sys.argv[1])
expected = {".".join(p.relative_to(source).with_suffix("").parts) for p in source.glob("remapdsl/**/*.py")}
expected |= {"remapdsl_server." + ".".join(p.relative_to(source / "server").with_suffix("").parts)
             for p in (source / "server").glob("**/*.py")}
expected = {name.removesuffix(".__init__") for name in expected} - {"remapdsl", "remapdsl_server"}
missing = sorted(expected - shipped)
assert not missing, f"not in the wheel: {missing}"
print(f"wheel: {len(shipped)} modules, every package imports")
