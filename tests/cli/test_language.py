"""`remap check` and `remap fmt`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remapdsl.cli import main
from tests.paths import EXAMPLES

GOOD = "data digits\n\nmodel small:\n    conv2d 16 kernel=3\n    relu\n    maxpool 2\n    flatten\n    dense 10\n"
MESSY = "data digits\nmodel small:\n  conv2d 16   kernel=3\n  relu\n  maxpool 2\n  flatten\n  dense 10\n"
BAD = "model m:\n    conv2d 16 kernel=\n    flatten\n    flatten\n    dense 12\n"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_ok_prints_a_summary(tmp_path, capsys):
    path = write(tmp_path, "good.remap", GOOD)
    assert main(["check", path]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "ok: 1 model in 1 file"


def test_check_gives_each_space_its_size_and_parameter_range(tmp_path, capsys):
    text = ("data digits\nbudget params <= 3k\n\nspace s:\n    conv2d 8|16 kernel=3\n    relu\n    choice:\n"
            "        maxpool 2\n        skip\n    flatten\n    dense 10\n")
    path = write(tmp_path, "space.remap", text)
    assert main(["check", path]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}:4:7: info: 2 of 4 valid paths are over the budget of 3k parameters and are left out"
    assert f"{path}: space s: 4 paths, 1,370 to 10,410 parameters, 2 over the budget" in err


def test_check_prints_every_diagnostic_compiler_style(tmp_path, capsys):
    good = write(tmp_path, "good.remap", GOOD)
    bad = write(tmp_path, "bad.remap", BAD)
    assert main(["check", good, bad]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{bad}:2:15: error: expected a value after 'kernel='",
        f"{bad}:4:5: warning: flatten does nothing here: the tensor is already flat",
        f"{bad}:5:11: error: the classifier head must have 10 units, one per class; found 12",
    ]
    assert err.strip() == "2 errors, 1 warning in 2 files"


def test_check_reports_missing_files_and_directories(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.remap")]) == 2
    assert "missing.remap: no such file" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    binary = tmp_path / "binary.remap"
    binary.write_bytes(b"\xff\xfe\x00model")
    assert main(["check", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_fmt_rewrites_in_place(tmp_path, capsys):
    path = write(tmp_path, "m.remap", MESSY)
    assert main(["fmt", path]) == 0
    assert Path(path).read_text(encoding="utf-8") == GOOD
    assert "1 file reformatted" in capsys.readouterr().err
    assert main(["fmt", path]) == 0
    assert Path(path).read_text(encoding="utf-8") == GOOD



def test_fmt_replaces_the_file_whole_and_keeps_its_mark_and_mode(tmp_path, capsys):
    path = Path(write(tmp_path, "m.remap", ""))
    path.write_bytes(b"\xef\xbb\xbf" + MESSY.encode())
    path.chmod(0o640)
    with path.open("rb") as reader:  # opened before: it goes on reading the old file, whole
        assert main(["fmt", str(path)]) == 0
        assert reader.read() == b"\xef\xbb\xbf" + MESSY.encode()
    assert path.read_bytes() == b"\xef\xbb\xbf" + GOOD.encode()
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.remap"]


def test_fmt_check_lists_files_that_would_change_and_changes_nothing(tmp_path, capsys):
    messy = write(tmp_path, "messy.remap", MESSY)
    good = write(tmp_path, "good.remap", GOOD)
    assert main(["fmt", "--check", messy, good]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [messy]
    assert Path(messy).read_text(encoding="utf-8") == MESSY
    assert main(["fmt", "--check", good]) == 0


def test_fmt_leaves_files_with_syntax_errors_untouched(tmp_path, capsys):
    bad = write(tmp_path, "bad.remap", BAD)
    assert main(["fmt", bad]) == 1
    assert Path(bad).read_text(encoding="utf-8") == BAD
    err = capsys.readouterr().err
    assert f"{bad}:2:15: error: expected a value after 'kernel='" in err
    assert "1 with syntax errors left unchanged" in err


def test_console_script_checks_the_bundled_example():
    # the script next to this interpreter first (a virtual environment), then PATH
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    remap = shutil.which("remap", path=search)
    assert remap is not None, "the remap console script is not installed (pip install -e .)"
    example = EXAMPLES / "digits.remap"
    done = subprocess.run([remap, "check", str(example)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "ok: 4 models in 1 file"


def test_a_missing_optional_dependency_names_the_extra(monkeypatch, capsys, tmp_path):
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")] or ["scipy"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "remapdsl.space.projection", raising=False)
    path = tmp_path / "m.remap"
    path.write_text("data digits\n\nmodel m:\n    flatten\n    dense 10\n")
    assert main(["layout", str(path)]) == 2
    err = capsys.readouterr().err
    assert "needs scipy" in err and "remapdsl[distance]" in err


def test_output_into_a_closed_pipe_is_quiet():
    script = ("import subprocess, sys\n"
              "p = subprocess.Popen([sys.executable, '-m', 'remapdsl', 'sample', '20'],"
              " stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
              "p.stdout.close(); err = p.stderr.read(); p.wait()\n"
              "sys.stdout.write(err.decode())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stdout and "BrokenPipe" not in out.stdout


def test_an_unreadable_file_is_reported_and_the_others_still_checked(tmp_path, capsys):
    bad = write(tmp_path, "bad.remap", BAD)
    missing = str(tmp_path / "missing.remap")
    assert main(["check", missing, bad]) == 2
    out, err = capsys.readouterr()
    assert f"{bad}:5:11: error: the classifier head must have 10 units" in out
    assert f"remap check: error: {missing}: no such file" in err


def test_a_missing_path_of_a_data_set_with_known_shapes_is_a_warning(tmp_path, capsys):
    path = write(tmp_path, "c.remap", 'data cifar10 "nowhere"\nmodel a:\n    flatten\n    dense 10\n')
    assert main(["check", path]) == 0
    out, _ = capsys.readouterr()
    assert out.strip() == (f"{path}:1:1: warning: nowhere does not exist: training will fail until it does "
                           "(shapes are checked as cifar10's 3x32x32)")
    (tmp_path / "nowhere").mkdir()  # resolved beside the file
    assert main(["check", path]) == 0
    assert f"warning: {tmp_path / 'nowhere'} lacks data_batch_1; expected a CIFAR-10" in capsys.readouterr().out
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (tmp_path / "nowhere" / name).write_bytes(b"")
    assert main(["check", path]) == 0
    assert capsys.readouterr().out == ""


def test_an_unknown_flag_is_reported_by_its_subcommand(tmp_path, capsys):
    path = write(tmp_path, "good.remap", GOOD)
    with pytest.raises(SystemExit) as e:
        main(["check", path, "--bogus"])
    assert e.value.code == 2
    _, err = capsys.readouterr()
    assert "usage: remap check" in err and "remap check: error: unrecognized arguments: --bogus" in err
