"""`remap serve`: what it refuses in one line (exit 2, nothing written), and two of them with their workers on one
store, which never train a job twice."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remapdsl.cli import main
from remapdsl.cli.workspace import read_models
from remapdsl.jobs.enqueue import queue_document
from remapdsl.store.db import Store
from remapdsl.store.queue import Queue
from remapdsl.store.services import OVERVIEW, running_service

GOOD = "data digits\ntrain epochs=1 batch=64 seed=0\n\nmodel lin:\n    flatten\n    dense 10\n"


def files_under(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def serve(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["serve", *argv, "--no-browser", "--no-worker"])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_folder_without_a_store_is_refused_and_nothing_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, said = serve(capsys, str(tmp_path))
    assert code == 2
    assert said.strip().splitlines() == [f"remap serve: error: no store at {tmp_path / '.remap' / 'remap.db'}: "
                                         "nothing has been queued or trained there yet (run `remap train` or "
                                         "`remap demo`), or pass --store DB"]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_path_and_a_file_that_is_not_a_store_are_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, said = serve(capsys, str(tmp_path / "nowhere.remap"))
    assert code == 2 and said.strip() == f"remap serve: error: {tmp_path / 'nowhere.remap'}: no such file or folder"
    other = tmp_path / "other.db"
    other.write_bytes(b"not a database at all" * 100)
    before = files_under(tmp_path)
    code, said = serve(capsys, str(tmp_path), "--store", str(other))
    assert code == 2 and len(said.strip().splitlines()) == 1 and str(other) in said
    assert files_under(tmp_path) == before


def test_a_file_with_errors_is_refused_with_its_first_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.remap"
    path.write_text("data digits\n\nmodel a:\n    conv3d 8\n    dense 10\n", encoding="utf-8")
    with Store(tmp_path / ".remap" / "remap.db"):
        pass
    before = files_under(tmp_path)
    code, said = serve(capsys, str(path))
    assert code == 2
    assert said.strip().startswith(f"remap serve: error: {path}:4:5: error: expected a layer such as")
    assert len(said.strip().splitlines()) == 1
    assert files_under(tmp_path) == before


def test_a_port_in_use_is_refused_and_nothing_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "w.remap"
    path.write_text(GOOD, encoding="utf-8")
    with Store(tmp_path / ".remap" / "remap.db"):
        pass
    before = files_under(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, said = serve(capsys, str(path), "--port", str(port))
    assert code == 2
    assert said.strip() == (f"remap serve: error: port {port} on 127.0.0.1 is in use; pass another --port "
                            "(0 picks a free one)")
    assert files_under(tmp_path) == before
    with Store.open_read_only(tmp_path / ".remap" / "remap.db") as store:
        assert running_service(store, OVERVIEW) is None


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with Store(tmp_path / ".remap" / "remap.db"):
        pass
    code, said = serve(capsys, str(tmp_path), "--port", "70000")
    assert code == 2 and said.strip() == "remap serve: error: --port must be from 0 to 65535; found 70000"


def start_serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "remapdsl", "serve", str(folder), "--port", "0", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+/)", first)
    assert found, first
    second = process.stdout.readline()
    pid = re.search(r"pid (\d+)", second)
    assert pid, second
    return process, pid.group(1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_two_serves_with_their_workers_never_train_a_job_twice(tmp_path: Path) -> None:
    path = tmp_path / "w.remap"
    models = "".join(f"\nmodel m{i}:\n    flatten\n    dense {8 + 4 * i}\n    relu\n    dense 10\n" for i in range(6))
    path.write_text("data digits\ntrain epochs=2 batch=64 seed=0\n" + models, encoding="utf-8")
    store_path = tmp_path / ".remap" / "remap.db"
    with Store(store_path) as store:
        plan = queue_document(store, read_models(path, None), epochs=None, device="cpu", force=False)
    job_ids = [j.id for j in plan.jobs]
    first, first_worker = start_serve(tmp_path)
    second, second_worker = start_serve(tmp_path)
    try:
        with Store.open_read_only(store_path) as store:
            assert (running_service(store, OVERVIEW) or "").startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 600
        while True:
            with Store.open_read_only(store_path) as store:
                jobs = [Queue(store).require(i) for i in job_ids]
            if all(j.status == "done" for j in jobs):
                break
            assert time.monotonic() < deadline, [j.status for j in jobs]
            time.sleep(0.5)
        with Store.open_read_only(store_path) as store:
            queue = Queue(store)
            for job in jobs:
                assert job.attempts == 1, job
                assert [e.epoch for e in store.epochs(job.run_id)] == [1, 2]
            # every job was trained by the worker of one of the two serves (a worker is named host:pid:thread)
            assert {str(queue.require(i).worker).split(":")[1] for i in job_ids} <= {first_worker, second_worker}
            assert len(store.runs()) == len(job_ids)
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGINT)
        for process in (first, second):
            process.wait(60)
    assert first.returncode == 0 and second.returncode == 0
    for pid in (first_worker, second_worker):
        assert not alive(int(pid)), "a worker outlived its serve"
    with Store.open_read_only(store_path) as store:
        assert running_service(store, OVERVIEW) is None


def test_only_loopback_pages_open_the_websocket_unless_a_host_is_named() -> None:
    from remapdsl_server.overview.serve import origins, url_of

    assert origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    assert origins("192.168.1.7", 8000) == ["192.168.1.7:8000"]
    assert url_of("127.0.0.1", 5006) == "http://127.0.0.1:5006/"
    assert url_of("::1", 5006) == "http://[::1]:5006/"


@pytest.mark.slow
def test_the_demo_ends_by_serving_its_population_until_stopped(tmp_path: Path) -> None:
    import urllib.request

    process = subprocess.Popen([sys.executable, "-m", "remapdsl", "demo", "--dir", str(tmp_path / "demo"), "--models",
                                "2", "--epochs", "1", "--jobs", "1", "--device", "cpu", "--no-onnx", "--no-browser",
                                "--no-worker", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"remap overview of .*demo\.remap at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                with urllib.request.urlopen(found.group(1), timeout=120) as reply:
                    assert reply.status == 200 and b"remap overview" in reply.read()
                break
        else:
            pytest.fail("".join(lines))
        assert any(line.startswith("results:") for line in lines)
    finally:
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0]
    assert process.returncode == 0, "".join(lines) + out
    assert "overview stopped" in out
