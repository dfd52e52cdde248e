"""Readers for the data formats users keep on disk, all offline and all without running pickled code.

Each reader returns raw arrays (N x C x H x W images, int64 labels) and class names; splitting and
normalisation happen in `remapdsl.train.data`. Every problem is a DataError whose message names the file and
says what was expected there.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from remapdsl.language.datafiles import (
    Npz,
    check_size,
    exists,
    idx_file,
    open_regular,
    read_idx,
    require_file,
    require_folder,
)
from remapdsl.language.datasets import (
    CIFAR10_CLASSES,
    CIFAR10_LAYOUT,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    DIGITS_CLASSES,
    FOLDER_LAYOUT,
    IMAGE_SUFFIXES,
    MNIST_LAYOUT,
    MNIST_SIZE,
    NPZ_LAYOUT,
    DataError,
    check_labels,
    folder_classes,
    image_files,
    image_shape,
    opened_image,
)


@dataclass(frozen=True)
class Arrays:
    """Examples as read from disk: images N x C x H x W (any numeric dtype) and int64 labels."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class SplitArrays:
    """A format that ships its own split (CIFAR-10, MNIST): training and test examples."""

    train: Arrays
    test: Arrays
    class_names: tuple[str, ...]


# --- CIFAR-10 python batches ---------------------------------------------------------------------

CIFAR10_META_FILE = "batches.meta"
_CIFAR_LAYOUT = CIFAR10_LAYOUT

# What a CIFAR batch may be made of: numpy arrays (under either of numpy's module names) and, for files
# pickled by Python 3 at protocol 2, the codec call that carries byte strings. Nothing here runs code.
_PICKLE_ALLOWED = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a function or class outside the allowed set."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, strings, bytes, numbers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobal(
            f"refusing to load '{module}.{name}': only numpy arrays, lists, dicts and bytes are allowed"
        )


def restricted_load(path: Path) -> Any:
    """Unpickle `path` with RestrictedUnpickler (Python 2 strings read as bytes, as CIFAR's files need)."""
    try:
        with open_regular(path, "a pickle file") as f:
            return RestrictedUnpickler(f, encoding="bytes").load()
    except DataError:
        raise
    except RefusedGlobal as e:
        raise DataError(f"{path}: {e}") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    except Exception as e:  # a truncated or foreign file fails in many ways inside pickle
        raise DataError(f"{path} is corrupt or not a pickle file: {e}") from e


def _field(batch: dict[Any, Any], name: str) -> Any:
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    return None


def read_cifar10_batch(path: Path) -> Arrays:
    batch = restricted_load(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}; expected a CIFAR-10 batch dict with data and labels")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' is {found}; expected a uint8 array of N x 3072 (3 x 32 x 32 images)")
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: 'labels' must be a list of class numbers 0..9: {e}") from e
    if len(y) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(y)} labels; expected one label per image")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path}: labels range from {y.min()} to {y.max()}; expected class numbers 0..9")
    return Arrays(data.reshape(-1, 3, 32, 32), y)


def read_cifar10(folder: Path) -> SplitArrays:
    require_folder(folder, _CIFAR_LAYOUT)
    missing = [n for n in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not exists(folder / n)]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}; expected {_CIFAR_LAYOUT}")
    parts = [read_cifar10_batch(folder / n) for n in CIFAR10_TRAIN_FILES]
    train = Arrays(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    test = read_cifar10_batch(folder / CIFAR10_TEST_FILE)
    return SplitArrays(train, test, _cifar10_names(folder / CIFAR10_META_FILE))


def _cifar10_names(path: Path) -> tuple[str, ...]:
    if not exists(path):
        return CIFAR10_CLASSES
    meta = restricted_load(path)
    names = _field(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{path}: expected a dict whose 'label_names' lists the 10 class names")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


# --- MNIST / Fashion-MNIST idx files -----------------------------------------------------------------

_MNIST_LAYOUT = MNIST_LAYOUT


def _mnist_part(folder: Path, prefix: str) -> Arrays:
    images_at, labels_at = idx_file(folder, f"{prefix}-images-idx3-ubyte"), idx_file(folder,
                                                                                      f"{prefix}-labels-idx1-ubyte")
    if images_at is None or labels_at is None:
        missing = [n for n, p in ((f"{prefix}-images-idx3-ubyte", images_at),
                                  (f"{prefix}-labels-idx1-ubyte", labels_at)) if p is None]
        raise DataError(f"{folder} lacks {', '.join(missing)}; expected {_MNIST_LAYOUT}")
    x, y = read_idx(images_at, 3), read_idx(labels_at, 1).astype(np.int64)
    if x.shape[1:] != MNIST_SIZE:
        # the language gives mnist a fixed 1x28x28 input: other sizes would check shapes against the wrong data
        raise DataError(f"{images_at} holds {x.shape[1]}x{x.shape[2]} images; expected {MNIST_SIZE[0]}x"
                        f"{MNIST_SIZE[1]} (MNIST and Fashion-MNIST; use data npz or data folder for other sizes)")
    check_finite(x, images_at, "the images")
    if len(x) != len(y):
        raise DataError(f"{images_at} holds {len(x)} images but {labels_at} {len(y)} labels; expected one each")
    if prefix == "train" and len(x) == 0:
        raise DataError(f"{images_at} holds no images; there is nothing to train on")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{labels_at}: labels range from {y.min()} to {y.max()}; expected class numbers 0..9")
    return Arrays(x[:, None], y)


def read_mnist(folder: Path) -> SplitArrays:
    require_folder(folder, _MNIST_LAYOUT)
    return SplitArrays(_mnist_part(folder, "train"), _mnist_part(folder, "t10k"), DIGITS_CLASSES)


# --- Quick Draw numpy bitmaps (the files are found by `datasets.quickdraw_files`) -------------------------

NPY_MAGIC = b"\x93NUMPY"


def read_quickdraw_class(path: Path, train: int, val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`train` and `val` drawings (N x 1 x 28 x 28 uint8) of one class, drawn by a seeded permutation."""
    try:
        with open_regular(path, "Quick Draw bitmaps of one class (a .npy file)") as f:
            magic = f.read(len(NPY_MAGIC))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    # numpy reads any other file as a pickle and, with pickles refused, says to allow them: the wrong advice
    if magic != NPY_MAGIC:
        raise DataError(f"{path} is not a numpy .npy file (it does not start with \\x93NUMPY); expected a "
                        "numpy array of N x 784 uint8 bitmaps")
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}; expected a numpy array of N x 784 uint8 bitmaps") from e
    if bitmaps.ndim != 2 or bitmaps.shape[1] != 28 * 28 or not np.issubdtype(bitmaps.dtype, np.number):
        raise DataError(f"{path} holds a {bitmaps.dtype} array of shape {bitmaps.shape}; expected N x 784 bitmaps")
    if len(bitmaps) < train + val:
        raise DataError(f"{path} holds {len(bitmaps):,} drawings; train={train:,} plus val={val:,} need "
                        f"{train + val:,}")
    # Each class gets its own stream, so choosing other classes never changes this one's drawings.
    rng = np.random.default_rng([seed, zlib.crc32(path.stem.encode())])
    chosen = rng.permutation(len(bitmaps))[: train + val]
    # Sorted reads keep a memory-mapped file's access sequential.
    pick = [np.sort(chosen[:train]), np.sort(chosen[train:])]
    try:
        parts = [np.asarray(bitmaps[i]) for i in pick]
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is truncated or corrupt: {e}") from e
    if np.issubdtype(bitmaps.dtype, np.floating):  # uint8, as Quick Draw ships them, is always finite
        check_finite(np.concatenate(parts), path, "the chosen drawings", np.concatenate(pick))
    train_x, val_x = (p.astype(np.uint8, copy=False).reshape(-1, 1, 28, 28) for p in parts)
    return train_x, val_x


# --- image folders -------------------------------------------------------------------------------

_FOLDER_LAYOUT = FOLDER_LAYOUT
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
# Pillow modes read as one channel, as `remapdsl.language.datasets` counts them.
_GREY_MODES = ("1", "L", "I", "F", "I;16")


def read_image_folder(root: Path, channels: int | None, size: int | None) -> tuple[Arrays, tuple[str, ...]]:
    """Every image under root/<class>/, as `channels` channels (default: the first image's), resized to
    size x size when `size` is given, otherwise all of the first image's size. Each image's size is read
    from its header and refused over the limit before it is decoded, and so is the whole set's."""
    from PIL import Image

    classes = folder_classes(root)
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = image_files(root / name)
        if not found:
            raise DataError(f"{root / name} holds no images; expected files ending in {', '.join(IMAGE_SUFFIXES)}")
        files.extend((f, label) for f in found)
    images: list[np.ndarray] = []
    want: tuple[int, int] | None = (size, size) if size else None
    mode = _MODES.get(channels or 0)
    for f, _ in files:
        with opened_image(f) as im:
            if mode is None:
                mode = "L" if im.mode in _GREY_MODES else "RGB"
            if want is None:
                want = im.size
            if not images:
                check_size(len(files) * len(mode) * want[0] * want[1], root,
                           f"{len(files):,} images of {want[0]}x{want[1]} ({mode})")
            elif im.size != want and size is None:
                raise DataError(f"{f} is {im.size[0]}x{im.size[1]}, the first image {want[0]}x{want[1]}; "
                                "expected one size (or give size= to resize every image)")
            try:
                im = im.convert(mode)
                if im.size != want:
                    im = im.resize(want, Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
            except (OSError, ValueError, SyntaxError, EOFError) as e:  # the pixels are read here, after the header
                raise DataError(f"cannot read image {f}: {e}") from e
        images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return Arrays(np.stack(images), np.array([label for _, label in files], dtype=np.int64)), tuple(classes)


# --- .npz ----------------------------------------------------------------------------------------


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays x (N x H x W, N x H x W x C or N x C x H x W) as N x C x H x W, and y with one label each. Each
    array is read no further than its `.npy` header promises, and only once the headers agree."""
    require_file(path, NPZ_LAYOUT)
    with Npz(path) as z:
        z.require("x", "y")
        x_header, y_header = z.header("x"), z.header("y")
        if not np.issubdtype(x_header.dtype, np.number) or x_header.dtype == np.bool_:
            raise DataError(f"{path}: x is {x_header.dtype}; expected numbers (images)")
        c, h, w = image_shape(x_header.shape, str(path))
        if y_header.shape not in ((x_header.shape[0],), (x_header.shape[0], 1)):
            raise DataError(f"{path}: y has shape {y_header.shape} for {x_header.shape[0]} images; expected one "
                            "label per image")
        check_labels(y_header.dtype, str(path))
        if x_header.shape[0] == 0:
            raise DataError(f"{path} holds no examples; there is nothing to train on")
        x, y = z.array("x"), z.array("y")
    if x.ndim == 3:
        x = x[:, None]
    elif x.shape[1:] != (c, h, w):
        x = x.transpose(0, 3, 1, 2)
    y = y.reshape(-1)
    check_finite(x, path)
    return x, y


def check_finite(x: np.ndarray, where: Path | str, what: str = "x", rows: np.ndarray | None = None) -> None:
    """A DataError naming the first example with NaN or infinity (its row in the file: `rows[i]` when `x` holds
    some of the file's rows): normalising would spread it over its whole channel, and training would report
    NaN losses far from the cause."""
    if not np.issubdtype(x.dtype, np.floating):
        return  # integers are always finite
    chunks = [x[i:i + 4096] for i in range(0, len(x), 4096)]
    for start, chunk in zip(range(0, len(x), 4096), chunks, strict=True):
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
        if bad.any():
            total = sum(int(np.count_nonzero(~np.isfinite(c))) for c in chunks)
            first = start + int(np.argmax(bad))
            raise DataError(f"{where}: {total:,} non-finite value(s) (NaN or infinity) in {what}, the first in "
                            f"example {int(rows[first]) if rows is not None else first}; expected finite numbers")


def convert_channels(x: np.ndarray, channels: int, where: str) -> np.ndarray:
    """Images with `channels` channels: colour to grey by luminance, grey repeated to colour."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 3 and channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
        return (x.astype(np.float32) * weights).sum(axis=1, keepdims=True)
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=1)
    raise DataError(f"{where}: images have {have} channel(s) and cannot be converted to channels={channels}; "
                    "expected 1 or 3 on both sides")


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Images resized to size x size (bilinear, antialiased when shrinking), as float32."""
    if x.shape[2:] == (size, size):
        return x
    import torch
    from torch.nn import functional

    out = [functional.interpolate(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)), (size, size),
                                  mode="bilinear", antialias=True, align_corners=False).numpy()
           for chunk in _chunks(x, 4096)]
    return np.concatenate(out)


def _chunks(x: np.ndarray, n: int) -> Sequence[np.ndarray]:
    return [x[i:i + n] for i in range(0, len(x), n)]

