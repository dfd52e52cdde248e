"""The executor options of `remap worker` and `remap train`: checked before anything runs, and without Ray
installed `--executor ray` says how to install it."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
from pathlib import Path

import pytest

from remapdsl.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse refuses a malformed value itself
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "remap.db")


@pytest.mark.parametrize("command", ["worker", "train"])
def test_without_ray_the_ray_executor_says_how_to_install_it(command: str, store: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed: find_spec answers None
    file = tmp_path / "m.remap"
    file.write_text("model m:\n    flatten\n    dense 10\n")
    argv = ["worker", "--store", store] if command == "worker" else ["train", str(file)]
    code, err = run(capsys, *argv, "--executor", "ray")
    assert code == 2
    assert "--executor ray needs ray, which is not installed" in err
    assert "pip install 'remapdsl[distributed]'" in err
    assert not Path(store).exists() and not (tmp_path / ".remap").exists()


@pytest.mark.parametrize(("flags", "words"), [
    (["--address", "auto"], "--address only apply with --executor ray"),
    (["--gpus-per-job", "0.5", "--max-in-flight", "3"], "--gpus-per-job, --max-in-flight only apply with"),
    (["--executor", "ray", "--gpus-per-job", "1.5"], "--gpus-per-job above 1 must be a whole number"),
    (["--executor", "ray", "--cpus-per-job", "0"], "--cpus-per-job must be more than 0"),
    (["--executor", "ray", "--gpus-per-job", "-1"], "expected a number from 0 to 1024"),
    (["--executor", "ray", "--cpus-per-job", "nan"], "expected a number from 0 to 1024"),
    (["--executor", "ray", "--cpus-per-job", "two"], "expected a number such as 0.25"),
    (["--executor", "ray", "--max-in-flight", "0"], "expected 1 or more"),
    (["--executor", "ray", "--max-in-flight", "20000"], "--max-in-flight must be at most 10,000"),
    (["--executor", "ray", "--address", " "], "the Ray address is empty"),
    (["--executor", "dask"], "invalid choice: 'dask'"),
])
def test_bad_executor_options_are_usage_errors(flags: list[str], words: str, store: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "worker", "--store", store, *flags)
    assert code == 2 and words in err, err
    assert not Path(store).exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray: pip install 'remapdsl[distributed]'")
def test_an_address_nothing_listens_on_is_refused_at_once(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    code, err = run(capsys, "worker", "--store", store, "--executor", "ray", "--address", f"127.0.0.1:{port}")
    assert code == 2 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err, err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("flags, expected", [
    ([], ["--executor", "local"]),
    (["--executor", "ray", "--address", "10.0.0.1:6379", "--gpus-per-job", "0.25", "--cpus-per-job", "2",
      "--max-in-flight", "8", "--shared-data"],
     ["--executor", "ray", "--address", "10.0.0.1:6379", "--gpus-per-job", "0.25", "--cpus-per-job", "2",
      "--max-in-flight", "8", "--shared-data"]),
])
def test_serve_hands_its_executor_flags_to_the_worker_it_starts(flags: list[str], expected: list[str]) -> None:
    pytest.importorskip("ray", reason="the ray executor's options are checked against an installed ray")
    from remapdsl.cli import build_parser
    from remapdsl.cli.options import executor_argv

    args = build_parser().parse_args(["serve", ".", *flags])
    assert executor_argv(args) == expected
    # what the worker is given, it parses to the same options
    worker = build_parser().parse_args(["worker", "--store", "x.db", *expected])
    assert executor_argv(worker) == expected


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_refuse_bad_executor_flags_before_anything_starts(command: str, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    argv = [command, str(folder), "--no-browser"] if command == "serve" else [command, "--dir", str(folder),
                                                                               "--no-serve"]
    code, err = run(capsys, *argv, "--cpus-per-job", "2")
    assert code == 2
    assert "--cpus-per-job only apply with --executor ray" in err
    assert list(folder.iterdir()) == []  # nothing written
