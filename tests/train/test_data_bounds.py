"""The loaders read hostile data files within bounded memory: each load runs in a fresh interpreter whose address
space is capped at 1 GiB (RLIMIT_AS), with files that decompress or decode to more than that, so a loader that
trusted them would fail there with an allocation error instead of the refusal each test expects."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from remapdsl.language.datafiles import MAX_DATA_BYTES, MAX_IMAGE_PIXELS
from remapdsl.language.datasets import DataError
from remapdsl.language.model import Arg, DataSpec
from remapdsl.train.data import load_dataset
from tests.bombs import capped, gzip_zeros, idx_header, npz_bomb, png_header_only

LOAD = """
import json
from remapdsl.language.datasets import DataError
from remapdsl.language.model import DataSpec, Arg
from remapdsl.train.data import load_dataset
for name, path, options in json.loads({specs!r}):
    try:
        d = load_dataset(DataSpec(name, path, tuple(Arg(k, v) for k, v in options.items())))
        print("loaded", len(d.y_train), len(d.y_val))
    except DataError as e:
        print("refused:", e)
"""


def loads_capped(tmp_path: Path, *specs: tuple[str, str, dict[str, object]]) -> list[str]:
    """What a 1 GiB-capped interpreter says loading each data set: `refused: ...`, or `loaded N M`."""
    done = capped(LOAD.format(specs=json.dumps(specs)), tmp_path)
    assert done.returncode == 0 and done.stdout, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def load_capped(tmp_path: Path, name: str, path: str, **options: object) -> str:
    return loads_capped(tmp_path, (name, path, options))[0]


def test_an_npz_over_the_limit_is_refused_before_it_is_decompressed(tmp_path):
    npz_bomb(tmp_path / "bomb.npz", 2 * MAX_DATA_BYTES // 64)  # 2 GiB of zeros in about 2 MB
    assert (tmp_path / "bomb.npz").stat().st_size < 4 << 20
    said = load_capped(tmp_path, "npz", "bomb.npz")
    assert said.startswith("refused: ") and "bomb.npz (array 'x'): an array of shape (33554432, 8, 8) and type uint8 "\
        "would take 2.0 GiB, over the limit of 1.0 GiB" in said, said


def test_an_npz_member_the_archive_says_is_larger_than_its_header_is_refused(tmp_path):
    npz_bomb(tmp_path / "liar.npz", 100, declared_x=3 << 30)
    said = load_capped(tmp_path, "npz", "liar.npz")
    assert "the archive says the member holds 3,221,225,472 bytes, its .npy header promises" in said, said


def test_an_npz_within_the_limit_loads(tmp_path):
    npz_bomb(tmp_path / "ok.npz", 3000)
    assert load_capped(tmp_path, "npz", "ok.npz", classes=3).startswith("loaded ")


def mnist(folder: Path, train_images: bytes) -> None:
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(train_images)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_header(0x08, (10,)) + bytes(range(10)))
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_header(0x08, (4, 28, 28)) + bytes(4 * 784))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_header(0x08, (4,)) + bytes(4))


def test_a_gzip_idx_file_is_decompressed_no_further_than_its_header_promises(tmp_path):
    # ten images promised, followed by 1.5 GiB of zeros in about 1.5 MB
    mnist(tmp_path / "m", gzip_zeros(idx_header(0x08, (10, 28, 28)), 10 * 784 + (3 << 29)))
    said = load_capped(tmp_path, "mnist", "m")
    assert said.startswith("refused: ") and \
        "train-images-idx3-ubyte.gz: the file holds more data than the 7,840 bytes its header promises" in said, said


def test_a_gzip_idx_file_promising_more_than_the_limit_is_refused_from_its_header(tmp_path):
    mnist(tmp_path / "m", gzip_zeros(idx_header(0x08, (2_000_000, 28, 28)), 2_000_000 * 784))
    said = load_capped(tmp_path, "mnist", "m")
    assert "its header's 2000000 x 28 x 28 values would take 1.5 GiB, over the limit of 1.0 GiB" in said, said


def test_idx_dimensions_that_overflow_64_bits_are_refused(tmp_path):
    mnist(tmp_path / "m", gzip_zeros(idx_header(0x0E, (2**32 - 1, 2**32 - 1, 2**32 - 1)), 64))
    said = load_capped(tmp_path, "mnist", "m")
    assert "4294967295 x 4294967295 x 4294967295 values would take" in said and "over the limit" in said, said


def image_folder(root: Path, classes: int = 3, per_class: int = 2) -> None:
    from PIL import Image

    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (8, 8), color=i * 40 + c).save(root / f"c{c}" / f"{i}.png")


@pytest.mark.parametrize("pixels", [(10_000, 10_000), (100_000, 100_000)])  # Pillow's warning, and its error
def test_a_decompression_bomb_image_in_any_class_folder_is_refused_naming_it(tmp_path, pixels):
    image_folder(tmp_path / "imgs")
    bomb = tmp_path / "imgs" / "c2" / "1.png"  # neither the first class nor a class's first image
    bomb.write_bytes(png_header_only(*pixels))
    said = load_capped(tmp_path, "folder", "imgs")
    assert said.startswith(f"refused: {bomb}") and f"limit of {MAX_IMAGE_PIXELS:,}" in said, said


@pytest.mark.slow
def test_an_image_folder_decoding_to_more_than_the_limit_is_refused_before_decoding(tmp_path):
    # 60 images of 5,000 x 5,000 grey pixels, each under the pixel limit and together 1.4 GiB
    for c in range(2):
        (tmp_path / "imgs" / f"c{c}").mkdir(parents=True)
        for i in range(30):
            (tmp_path / "imgs" / f"c{c}" / f"{i}.png").write_bytes(png_header_only(5000, 5000))
    said = load_capped(tmp_path, "folder", "imgs")
    assert "imgs: 60 images of 5000x5000 (L) would take 1.4 GiB, over the limit of 1.0 GiB" in said, said
    # with size= each is decoded and resized on its own: what is kept is 60 images of 8 x 8
    assert load_capped(tmp_path, "folder", "imgs", size=8) == "loaded 48 12"


def test_a_fifo_or_a_device_is_refused_and_never_read(tmp_path):
    os.mkfifo(tmp_path / "d.npz")
    said = loads_capped(tmp_path, *((name, "d.npz", {}) for name in ("npz", "mnist", "cifar10", "folder", "quickdraw")),
                        *(("npz", path, {}) for path in ("/dev/stdin", "/proc/self/fd/0", "/dev/zero")))
    assert said[0] == "refused: d.npz is a pipe (FIFO); expected a .npz file with arrays x and y (a regular file)"
    assert all(s.startswith("refused: d.npz is a pipe (FIFO), not a folder; expected ") for s in said[1:5]), said
    for path, s in zip(("/dev/stdin", "/proc/self/fd/0", "/dev/zero"), said[5:], strict=True):
        assert s.startswith(f"refused: {path} is a ") and "expected a .npz file" in s, said


def test_data_sets_without_examples_are_refused(tmp_path):
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(DataError, match=r"none\.npz holds no examples; there is nothing to train on"):
        load_dataset(DataSpec("npz", str(tmp_path / "none.npz"), (Arg("classes", 3),)))
    (tmp_path / "m").mkdir()
    for prefix, n in (("train", 0), ("t10k", 3)):
        (tmp_path / "m" / f"{prefix}-images-idx3-ubyte").write_bytes(idx_header(0x08, (n, 28, 28)) + bytes(n * 784))
        (tmp_path / "m" / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_header(0x08, (n,)) + bytes(n))
    with pytest.raises(DataError, match="train-images-idx3-ubyte holds no images; there is nothing to train on"):
        load_dataset(DataSpec("mnist", str(tmp_path / "m")))
