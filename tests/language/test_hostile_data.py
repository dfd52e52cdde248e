"""Data lines written by a careless user or an attacker: every one ends in a diagnostic at the data line, never an
exception; a path is probed without being opened unless it is a regular file (or a folder where one is expected);
data files are read no further than their headers (memory bounds under a cap: tests/cli/test_hostile_input.py);
a data set with nothing to train on is refused before training."""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.catalog import LAYER_TYPES
from remapdsl.language.datafiles import MAX_DATA_BYTES, MAX_IMAGE_PIXELS
from remapdsl.language.datasets import DATASET_KINDS
from remapdsl.language.diagnostics import Severity
from remapdsl.language.header import TRAIN_OPTIONS, TrainSettings
from remapdsl.language.parser import parse
from remapdsl.language.sourcefile import MAX_SOURCE_BYTES
from tests.bombs import gzip_zeros, idx_header, npz_bomb, png_header_only

HEAD = "model m:\n    flatten\n    dense 3\n"
PATH_KINDS = [k for k, kind in DATASET_KINDS.items() if kind.needs_path]


def check(text: str, base: Path) -> Analysis:
    result = parse(text)
    return analyze(result.document, result.diagnostics, base)


def data_errors(analysis: Analysis) -> list[str]:
    return [d.message for d in analysis.diagnostics if d.code == "data" and d.range.start.line == 0]


def within(seconds: float, fn, *args):  # type: ignore[no-untyped-def]
    """fn(*args), failing the test when it has not returned after `seconds` (it blocked on a pipe)."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"{fn.__name__}{args[:1]} blocked for {seconds} s"
    return out[0]


# --- paths that cannot be probed ---------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "options"), [
    *((k, "") for k in PATH_KINDS), ("npz", " channels=1 size=8 classes=3"),
    ("folder", " channels=1 size=8 classes=3"), ("quickdraw", " classes=cat,dog")])
def test_a_path_component_over_255_bytes_is_a_diagnostic_at_the_data_line(tmp_path, kind, options):
    long = "a" * 300
    (tmp_path / "sub").mkdir()
    for path in (long, f"{long}/x.npz", f"sub/{long}"):
        analysis = check(f'data {kind} "{path}"{options}\n{HEAD}', tmp_path)
        messages = data_errors(analysis)
        assert any("File name too long" in m for m in messages), (kind, path, analysis.diagnostics)


def test_a_loop_of_links_is_a_diagnostic(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for kind in PATH_KINDS:
        messages = data_errors(check(f'data {kind} "a/x"\n{HEAD}', tmp_path))
        assert any("Too many levels of symbolic links" in m for m in messages), (kind, messages)


def test_a_nul_character_in_a_path_is_a_diagnostic_even_after_a_tilde(tmp_path):
    for kind in PATH_KINDS:
        for path in ("~\x00/d", "d\x00.npz"):
            messages = data_errors(check(f'data {kind} "{path}"\n{HEAD}', tmp_path))
            assert any("NUL" in m for m in messages), (kind, path, messages)


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind the superuser")
def test_a_folder_that_cannot_be_entered_is_a_diagnostic(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        messages = data_errors(check(f'data npz "locked/d.npz"\n{HEAD}', tmp_path))
        assert any("Permission denied" in m for m in messages)
    finally:
        locked.chmod(0o700)


# --- list values where one number is expected ---------------------------------------------------------


def _number_options() -> list[tuple[str, str]]:
    """(header or layer line, option) for every option that takes one number."""
    out = [(f"data {k}" + (' "d"' if kind.needs_path else ""), p.name)
           for k, kind in DATASET_KINDS.items() for p in kind.options if p.type is not str]
    out += [("train", name) for name, p in TRAIN_OPTIONS.items() if p.type is not str]
    out += [(f"    {k}", p.name) for k, t in LAYER_TYPES.items() for p in t.params if p.type is not str]
    return out


@pytest.mark.parametrize(("line", "option"), _number_options())
def test_a_list_where_a_number_is_expected_is_a_diagnostic_at_the_value(tmp_path, line, option):
    written = f"{line} {option}=4,5"
    text = f"{written}\n{HEAD}" if not line.startswith(" ") else f"model m:\n{written}\n    flatten\n    dense 10\n"
    analysis = check(text, tmp_path)
    at = 0 if not line.startswith(" ") else 1
    found = [d for d in analysis.diagnostics if d.range.start.line == at and "found 4,5" in d.message]
    assert found and found[0].severity == Severity.ERROR, analysis.diagnostics
    start = written.index("4,5")
    assert any((d.range.start.character, d.range.end.character) == (start, start + 3) for d in found)
    if line == "train":
        with pytest.raises(ValueError, match=f"{option} must be"):
            TrainSettings.from_document(analysis.document)


@pytest.mark.parametrize("budget", ["params <= 4,5", "params <= 4,5k", "latency <= 1,2ms", "size <= 1,2MB"])
def test_a_list_as_a_budget_is_a_diagnostic_at_its_line(tmp_path, budget):
    analysis = check(f"budget {budget}\n{HEAD}", tmp_path)
    assert any(d.range.start.line == 0 and d.severity == Severity.ERROR for d in analysis.diagnostics), \
        analysis.diagnostics


# --- devices, pipes and FIFOs are never opened ----------------------------------------------------------


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path
    # a reader that blocked on it (a regression) is let go, so the test run can end
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_a_device_a_pipe_or_a_fifo_is_a_diagnostic_and_never_opened(tmp_path, fifo, kind):
    # the test run's own standard input is a device or a pipe, unless whatever ran it gave it a file
    own = [p for p in ("/dev/stdin", "/proc/self/fd/0") if not stat.S_ISREG(os.stat(p).st_mode)]
    for path in (*own, "/dev/zero", str(fifo)):
        for options in ("", " channels=1 size=8 classes=3"):
            analysis = within(10, check, f'data {kind} "{path}"{options}\n{HEAD}', tmp_path)
            messages = data_errors(analysis)
            assert any(("a device" in m or "a pipe" in m or "not a folder" in m) for m in messages), \
                (kind, path, analysis.diagnostics)


def test_a_fifo_inside_a_data_folder_is_never_opened(tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "b").mkdir()
    os.mkfifo(tmp_path / "imgs" / "a" / "0.png")
    os.mkfifo(tmp_path / "q.npy")
    analysis = within(10, check, f'data folder "imgs"\n{HEAD}', tmp_path)
    assert any("holds no images" in m for m in data_errors(analysis))
    analysis = within(10, check, f'data quickdraw "." classes=q,r\n{HEAD}', tmp_path)
    assert any("q.npy is a pipe" in m for m in data_errors(analysis))
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        os.mkfifo(mnist / stem)
    analysis = within(10, check, f'data mnist "mnist"\n{HEAD}', tmp_path)
    assert any("train-images-idx3-ubyte is a pipe" in m for m in data_errors(analysis))


# --- headers that promise too much ---------------------------------------------------------------------


def test_an_npz_over_the_limit_is_refused_from_its_header(tmp_path):
    npz_bomb(tmp_path / "bomb.npz", MAX_DATA_BYTES // 64 + 1)
    assert (tmp_path / "bomb.npz").stat().st_size < 2 << 20
    messages = data_errors(check(f'data npz "bomb.npz"\n{HEAD}', tmp_path))
    assert any("bomb.npz (array 'x'): an array of shape" in m and "over the limit of 1.0 GiB" in m
               for m in messages), messages


def test_an_npz_whose_archive_and_header_disagree_is_refused(tmp_path):
    npz_bomb(tmp_path / "liar.npz", 10, declared_x=1 << 30)
    messages = data_errors(check(f'data npz "liar.npz"\n{HEAD}', tmp_path))
    assert any("the archive says the member holds 1,073,741,824 bytes, its .npy header promises 768" in m
               for m in messages), messages


def test_an_npz_within_bounds_gives_its_shape_and_classes(tmp_path):
    npz_bomb(tmp_path / "ok.npz", 1000)
    analysis = check(f'data npz "ok.npz"\n{HEAD}', tmp_path)
    assert analysis.dataset is not None and analysis.dataset.input_shape == (1, 8, 8)
    assert analysis.dataset.class_names == ("0", "1", "2")


def write_mnist_headers(folder: Path, train: int = 5, dims: tuple[int, int] = (28, 28), gz: bool = False,
                        extra: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    for prefix, n in (("train", train), ("t10k", 3)):
        images = idx_header(0x08, (n, *dims))
        labels = idx_header(0x08, (n,))
        if gz:
            (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip_zeros(images, n * dims[0] * dims[1] + extra))
            (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels + bytes(n)))
        else:
            (folder / f"{prefix}-images-idx3-ubyte").write_bytes(images + bytes(n * dims[0] * dims[1]))
            (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(labels + bytes(n))


def test_idx_headers_are_checked_when_the_file_is(tmp_path):
    write_mnist_headers(tmp_path / "ok", gz=True)
    assert data_errors(check(f'data mnist "ok"\n{HEAD}', tmp_path)) == []
    # a gzip idx file promising more than the limit: refused from its first bytes
    write_mnist_headers(tmp_path / "big", train=1_400_000, gz=True)
    messages = data_errors(check(f'data mnist "big"\n{HEAD}', tmp_path))
    assert any("train-images-idx3-ubyte.gz: its header's 1400000 x 28 x 28 values would take 1.0 GiB, over the "
               "limit" in m for m in messages), messages
    # dimensions whose product overflows 64 bits
    over = tmp_path / "over"
    write_mnist_headers(over)
    (over / "train-images-idx3-ubyte").write_bytes(idx_header(0x0E, (2**32 - 1, 2**32 - 1, 2**32 - 1)))
    messages = data_errors(check(f'data mnist "over"\n{HEAD}', tmp_path))
    assert any("4294967295 x 4294967295 x 4294967295 values would take" in m for m in messages), messages


def test_a_data_set_with_nothing_to_train_on_is_refused_at_check_time(tmp_path):
    write_mnist_headers(tmp_path / "empty", train=0)
    messages = data_errors(check(f'data mnist "empty"\n{HEAD}', tmp_path))
    assert any("train-images-idx3-ubyte holds no images; there is nothing to train on" in m for m in messages)
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    for options in ("", " channels=1 size=8 classes=3"):
        messages = data_errors(check(f'data npz "none.npz"{options}\n{HEAD}', tmp_path))
        assert any("none.npz holds no examples; there is nothing to train on" in m for m in messages), messages


def image_folder(root: Path, bomb_in: str, bomb: bytes) -> Path:
    from PIL import Image

    for name in ("ant", "bee", "cat"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8)).save(root / name / f"{i}.png")
    (root / bomb_in / "9.png").write_bytes(bomb)
    return root / bomb_in / "9.png"


@pytest.mark.parametrize("pixels", [(10_000, 10_000), (100_000, 100_000)])  # Pillow's warning, and its error
def test_a_decompression_bomb_image_in_any_class_folder_is_refused_at_check_time(tmp_path, pixels):
    bomb = image_folder(tmp_path / "imgs", "cat", png_header_only(*pixels))
    # the first image of a class sorts first: put the bomb there
    bomb.rename(bomb.with_name("0.png"))
    messages = data_errors(check(f'data folder "imgs"\n{HEAD}', tmp_path))
    assert any(f"{bomb.with_name('0.png')}" in m and f"limit of {MAX_IMAGE_PIXELS:,}" in m for m in messages), messages


# --- .remap texts over the size limit ----------------------------------------------------------------


def test_a_text_over_the_size_limit_gives_one_diagnostic_and_no_analysis():
    text = "model m:\n    dense 10\n" * (MAX_SOURCE_BYTES // 20)
    result = parse(text)
    assert len(result.diagnostics) == 1 and result.document.models == ()
    assert "a .remap file may hold at most 8.0 MiB" in result.diagnostics[0].message
    assert len(analyze(result.document, result.diagnostics).diagnostics) == 1
    # counted in bytes, as the file holds it: two-byte characters reach the limit at half as many
    assert parse("é" * (MAX_SOURCE_BYTES // 2 + 1)).diagnostics[0].code == "too-large"
    assert parse("#" + "é" * (MAX_SOURCE_BYTES // 2 - 1)).diagnostics == ()
