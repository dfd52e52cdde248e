"""The command line given what is not a `.remap` file, or data that would take more memory than it weighs: one line
and exit status 2, or the data line's diagnostic, within a 1 GiB address-space cap (RLIMIT_AS)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from remapdsl.language.sourcefile import MAX_SOURCE_BYTES
from tests.bombs import capped, npz_bomb

COMMANDS = ["check F", "fmt F", "show F m", "ablate F m", "vary F m", "train F --no-onnx", "results F", "layout F",
            "neighbours F m", "distance F m n", "snac F m", "export F m -o out.onnx", "bench F"]

RUN = """
import contextlib, io, json, sys
from remapdsl.cli import main
out = []
for argv in json.loads({argvs!r}):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    out.append([rc, err.getvalue()])
print(json.dumps(out))
"""


def run_capped(tmp_path: Path, *argvs: list[str], limit: int = 1 << 30) -> list[tuple[int, str]]:
    """Exit status and standard error of `remap ARGV` for each argv, in one 1 GiB-capped interpreter."""
    done = capped(RUN.format(argvs=json.dumps(argvs)), tmp_path, limit, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [(rc, err) for rc, err in json.loads(done.stdout.splitlines()[-1])]


@pytest.mark.slow
def test_every_command_refuses_a_device_or_a_pipe_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "fifo.remap")
    argvs = [c.replace("F", path).split() for path in ("/dev/zero", "fifo.remap", "/dev/stdin") for c in COMMANDS]
    for argv, (rc, err) in zip(argvs, run_capped(tmp_path, *argvs), strict=True):
        assert rc == 2 and len(err.splitlines()) == 1, (argv, rc, err)
        assert err.startswith(f"remap {argv[0]}: error: {argv[1]} is a ") and "expected a .remap file" in err, err


def test_a_remap_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    (tmp_path / "big.remap").write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    (tmp_path / "ok.remap").write_bytes(b"#" * MAX_SOURCE_BYTES)
    big, ok = run_capped(tmp_path, ["check", "big.remap"], ["check", "ok.remap"])
    assert big == (2, "remap check: error: big.remap is 8.0 MiB; a .remap file may hold at most 8.0 MiB\n")
    assert ok[0] == 0, ok


BOMB = 'data npz "bomb.npz"\nmodel m:\n    flatten\n    dense 3\n'


@pytest.mark.slow
def test_check_and_train_refuse_an_npz_bomb_from_its_header_within_the_cap(tmp_path):
    npz_bomb(tmp_path / "bomb.npz", (2 << 30) // 64)  # 2 GiB of zeros in about 2 MB
    (tmp_path / "bomb.remap").write_text(BOMB)
    done = capped("from remapdsl.cli import main; raise SystemExit(main(['check', 'bomb.remap']))", tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stdout.startswith("bomb.remap:1:1: error: ") and "bomb.npz (array 'x'): an array of shape " \
        "(33554432, 8, 8) and type uint8 would take 2.0 GiB, over the limit of 1.0 GiB" in done.stdout, done.stdout
    done = capped("from remapdsl.cli import main; raise SystemExit(main(['train', 'bomb.remap', '--no-onnx']))",
                  tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("remap train: error: bomb.remap:1:1: error: "), done.stderr
    assert "over the limit of 1.0 GiB" in done.stderr and "Traceback" not in done.stderr
