"""A store in a read-only folder, or a read-only store file, is read by every command that only reads (results,
queue list, layout of kept positions, distance, neighbours, check); a command that must write says in one line
that it cannot, and exits 2. Run as a separate process on files it truly cannot write (see tests/read_only.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.read_only import read_only
from tests.samples import TRAINED, finished_store

pytestmark = pytest.mark.slow

READERS = {
    "results": ["results", "{file}"],
    "queue list": ["queue", "list", "--all"],
    "layout kept": ["layout", "{file}", "--json"],
    "distance": ["distance", "{file}", "small", "wide", "--json"],
    "neighbours": ["neighbours", "{file}", "small", "--json"],
    "distance by predictions": ["distance", "{file}", "small", "wide", "--space", "predictions", "--json"],
    "neighbours by predictions": ["neighbours", "{file}", "small", "--space", "predictions", "--json"],
    "check": ["check", "{file}"],
}
WRITERS = {
    "train": ["train", "{file}", "--no-onnx", "--force"],
    "worker": ["worker", "--until-empty", "--no-onnx"],
    "layout of new positions": ["layout", "{file}", "--space", "predictions"],
    "relayout": ["layout", "{file}", "--relayout"],
    "queue cancel": ["queue", "cancel", "1"],
}
# Each command run with main() in one process, with what it printed.
RUNNER = """
import contextlib, io, json, sys
from remapdsl.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except BaseException as e:
            import traceback; traceback.print_exc(file=stderr); code = -1
    out[name] = [code, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(out))
"""


def run_all(commands: dict[str, list[str]], file: Path, store: Path, wrap) -> dict[str, list]:
    argvs = {name: [a.format(file=file) for a in argv] + ["--store", str(store)] for name, argv in commands.items()}
    for argv in argvs.values():
        if argv[0] == "queue":  # the store option goes before the action
            argv[1:1] = argv[-2:]
            del argv[-2:]
    result = subprocess.run(wrap([sys.executable, "-c", RUNNER, json.dumps(argvs)]), capture_output=True, text=True,
                            timeout=600, cwd=file.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("what", ["folder", "file"])
def test_readers_read_a_read_only_store_and_writers_say_why_they_cannot_write(tmp_path: Path, what: str) -> None:
    file = tmp_path / "models.remap"
    file.write_text(TRAINED)
    store = tmp_path / ".remap" / "remap.db"
    finished_store(file, store)
    before = store.read_bytes()
    with read_only(store.parent if what == "folder" else store) as wrap:
        found = run_all({**READERS, **WRITERS}, file, store, wrap)
    for name in READERS:
        code, _, err = found[name]
        assert code == 0 and "Traceback" not in err, (name, err)
    assert "small" in found["results"][1] and "40.0%" in found["results"][1]
    assert found["queue list"][1].count("done") == 3
    assert {p["status"] for p in json.loads(found["layout kept"][1])["points"]} == {"kept"}
    assert 0 < json.loads(found["distance by predictions"][1])["distance"] < 1
    assert len(json.loads(found["neighbours"][1])["neighbours"]) == 2
    for name in WRITERS:
        code, _, err = found[name]
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (name, err)
        assert str(store) in lines[0] and "read-only" in lines[0] and "Traceback" not in err, (name, err)
    assert store.read_bytes() == before
