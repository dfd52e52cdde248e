"""All SQL lives in the store package: no other module of remapdsl or of the servers imports sqlite3 or
holds an SQL statement."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "remapdsl" / "store"
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN)\b")


def sources() -> list[Path]:
    files = [*(ROOT / "remapdsl").rglob("*.py"), *(ROOT / "server").rglob("*.py")]
    return sorted(f for f in files if STORE not in f.parents)


def test_the_sources_are_found() -> None:
    names = {f.relative_to(ROOT).as_posix() for f in sources()}
    assert {"remapdsl/space/model_space.py", "server/lsp/watcher.py"} <= names
    assert not any(name.startswith("remapdsl/store/") for name in names)


def test_no_module_outside_the_store_imports_sqlite3() -> None:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] == "sqlite3" for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_no_module_outside_the_store_holds_an_sql_statement() -> None:
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sources()
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)]
    assert found == []
