"""The overview's reader of `.remap` files keeps the language's limits: a regular file of at most 8 MiB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remapdsl.jobs.files import FileProblem, read_text
from remapdsl.language.sourcefile import MAX_SOURCE_BYTES


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "m.remap"
    os.mkfifo(fifo)
    with pytest.raises(FileProblem, match="is a pipe"):
        read_text(fifo)


def test_a_file_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.remap"
    big.write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(FileProblem, match="may hold at most"):
        read_text(big)
    ok = tmp_path / "ok.remap"
    ok.write_bytes(b"\xef\xbb\xbf" + b"#" * 100)
    read = read_text(ok)
    assert read.bom and read.text == "#" * 100
