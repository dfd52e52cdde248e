"""What the language needs to know about a data set before training: input shape and classes.

Named data sets have fixed shapes; folders and `.npz` files are read (lightly, and cached by path and
modification time) unless their shape is declared with `channels=`, `size=` and `classes=`. The loaders
that read the actual examples live with the training backend.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from remapdsl.language.catalog import ParamSpec, Shape
from remapdsl.language.datafiles import (
    MAX_IMAGE_PIXELS,
    MNIST_FILES,
    DataError,
    Npz,
    exists,
    idx_file,
    idx_header,
    is_folder,
    is_regular,
    open_regular,
    require_file,
    require_folder,
    status,
)
from remapdsl.language.model import DataSpec, as_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_shape: Shape
    num_classes: int
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class DatasetKind:
    name: str
    doc: str
    needs_path: bool
    options: tuple[ParamSpec, ...]
    shape: Shape | None = None
    classes: tuple[str, ...] = ()


_VAL_FRACTION = ParamSpec("val", float, 0.2, 0, 1, open_low=True, open_high=True,
                          doc="fraction of examples held out for validation")
_SPLIT_SEED = ParamSpec("seed", int, 0, 0, 2**31 - 1, doc="seed of the train/validation split")
_DECLARED = (
    ParamSpec("channels", int, 0, 1, 4, doc="image channels (read from the data when omitted)"),
    ParamSpec("size", int, 0, 1, 4096, doc="images are resized to size x size (read from the data when omitted)"),
    ParamSpec("classes", int, 0, 2, 100000, doc="number of classes (read from the data when omitted)"),
)
DIGITS_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DATASET_KINDS: dict[str, DatasetKind] = {
    k.name: k
    for k in (
        DatasetKind("digits", "scikit-learn's 8x8 handwritten digits, bundled (1,797 images)", False,
                    (_VAL_FRACTION, _SPLIT_SEED), (1, 8, 8), DIGITS_CLASSES),
        DatasetKind("mnist", "MNIST or Fashion-MNIST idx files (plain or .gz) in a folder", True,
                    (_VAL_FRACTION, _SPLIT_SEED), (1, 28, 28), DIGITS_CLASSES),
        DatasetKind("cifar10", "CIFAR-10 python batches folder (data_batch_1..5, test_batch, batches.meta)", True,
                    (_VAL_FRACTION, _SPLIT_SEED), (3, 32, 32), CIFAR10_CLASSES),
        DatasetKind("quickdraw", "Quick Draw numpy bitmaps, one <class>.npy per class (N x 784)", True,
                    (
                        ParamSpec("classes", str, "", words=(), doc="comma-separated class names (default: all files)"),
                        ParamSpec("train", int, 16000, 1, 10_000_000, doc="training examples per class"),
                        ParamSpec("val", int, 4000, 1, 10_000_000, doc="validation examples per class"),
                        _SPLIT_SEED,
                    ),
                    (1, 28, 28)),
        DatasetKind("folder", "image folder: root/<class>/<image>", True,
                    (_VAL_FRACTION, _SPLIT_SEED, *_DECLARED)),
        DatasetKind("npz", ".npz file with arrays x (images) and y (labels)", True,
                    (_VAL_FRACTION, _SPLIT_SEED, *_DECLARED)),
    )
}


def describe(data: DataSpec | None, base_dir: Path | None = None) -> DatasetInfo:
    """Input shape and classes of the data a document trains on (digits when there is no data line).

    A relative path resolves against `base_dir`, the folder of the `.remap` file, as the loaders do. Only
    headers are read (see `remapdsl.language.datafiles`); a path that is not what the data set needs (a
    device, a pipe, a name too long) is a DataError, never opened.
    """
    if data is None:
        kind = DATASET_KINDS["digits"]
        assert kind.shape is not None
        return DatasetInfo("digits", kind.shape, len(kind.classes), kind.classes)
    kind = DATASET_KINDS[data.name]
    if kind.name == "quickdraw":
        return _quickdraw(data, base_dir)
    if kind.shape is not None:
        return DatasetInfo(kind.name, kind.shape, len(kind.classes), kind.classes)
    declared = {a.name: a.value for a in data.args if a.name in ("channels", "size", "classes")}
    for spec in _DECLARED:
        # before anything is sized by them: `classes=1e12` would otherwise name a trillion classes
        if spec.name in declared and (problem := spec.check(declared[spec.name])) is not None:
            raise DataError(problem)
    if {"channels", "size", "classes"} <= declared.keys():
        n, s, c = as_int(declared["classes"]), as_int(declared["size"]), as_int(declared["channels"])
        return DatasetInfo(kind.name, (c, s, s), n, tuple(str(i) for i in range(n)))
    path = _located(data, base_dir)
    if kind.name == "folder":
        require_folder(path, FOLDER_LAYOUT)
    else:
        require_file(path, NPZ_LAYOUT)
    stamp = os.stat(path).st_mtime_ns
    info = _folder_info(str(path), stamp) if kind.name == "folder" else _npz_info(str(path), stamp)
    c, h, w = info.input_shape
    if "size" in declared:
        h = w = as_int(declared["size"])
    if "channels" in declared:
        c = as_int(declared["channels"])
    return DatasetInfo(info.name, (c, h, w), info.num_classes, info.class_names)


FOLDER_LAYOUT = "an image folder root/<class>/<image>"
NPZ_LAYOUT = "a .npz file with arrays x and y"
CIFAR10_LAYOUT = "a CIFAR-10 python batches folder (data_batch_1..5, test_batch, batches.meta)"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
MNIST_LAYOUT = ("MNIST or Fashion-MNIST idx files: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz)")
MNIST_SIZE = (28, 28)


def locate(data: DataSpec, base_dir: Path | None) -> Path:
    """The data line's path, `~` expanded and relative to `base_dir`; not yet probed."""
    if not data.path:
        raise DataError(f"data {data.name} needs a path, e.g. data {data.name} \"~/data/{data.name}\"")
    if "\x00" in data.path:  # no file system names such a path, and expanduser would raise on it
        raise DataError(f"{data.path!r}: a path cannot hold a NUL character")
    try:
        path = Path(data.path).expanduser()
    except RuntimeError as e:  # "~someone" naming no user
        raise DataError(f"{data.path}: {e}") from e
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _located(data: DataSpec, base_dir: Path | None) -> Path:
    path = locate(data, base_dir)
    if status(path) is None:
        raise DataError(f"{data.path} does not exist")
    return path


@dataclass(frozen=True)
class FileProblem:
    """What is wrong with the files of a data set whose shapes are known without them: `missing` when they
    are simply not there yet (training fails until they are), otherwise they are there and unusable."""

    message: str
    missing: bool


def check_files(data: DataSpec, base_dir: Path | None) -> FileProblem | None:
    """For a data line whose shapes the language knows without reading (mnist, cifar10, or channels, size and
    classes all declared): whether its files are there and usable, read no further than their headers."""
    try:
        path = locate(data, base_dir)
        st = status(path)
        if st is None:
            return FileProblem(f"{data.path} does not exist", True)
        kind = DATASET_KINDS[data.name]
        if kind.name == "npz":
            require_file(path, NPZ_LAYOUT)
            _npz_info(str(path), st.st_mtime_ns)
        elif kind.name == "folder":
            require_folder(path, FOLDER_LAYOUT)
        elif kind.name == "cifar10":
            require_folder(path, CIFAR10_LAYOUT)
            for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE):
                if not exists(path / name):
                    return FileProblem(f"{path} lacks {name}; expected {CIFAR10_LAYOUT}", True)
                require_file(path / name, "a CIFAR-10 batch")
        elif kind.name == "mnist":
            require_folder(path, MNIST_LAYOUT)
            return mnist_problem(path)
        elif kind.name == "quickdraw":
            files = quickdraw_files(path)
            for name in _class_names(data):
                if name not in files:
                    return FileProblem(f"{path} has no {name}.npy or {QUICKDRAW_PREFIX}{name}.npy for class "
                                       f"'{name}'", True)
                require_file(files[name], "Quick Draw bitmaps of one class (a .npy file)")
    except DataError as e:
        return FileProblem(str(e), False)
    return None


def mnist_problem(folder: Path) -> FileProblem | None:
    """Missing MNIST files, or a DataError for files that are there and unusable: headers only are read (a few
    bytes, decompressed), so that sizes, counts and the limit on data are checked before any training."""
    found = {stem: idx_file(folder, stem) for stem in MNIST_FILES}
    missing = [stem for stem, p in found.items() if p is None]
    if missing:
        return FileProblem(f"{folder} lacks {', '.join(missing)}; expected {MNIST_LAYOUT}", True)
    stamps = tuple((str(p), os.stat(p).st_mtime_ns) for p in found.values() if p is not None)
    _mnist_headers(stamps)
    return None


@lru_cache(maxsize=32)
def _mnist_headers(files: tuple[tuple[str, int], ...]) -> None:
    for prefix, (images_at, labels_at) in (("train", files[:2]), ("t10k", files[2:])):
        images, labels = idx_header(Path(images_at[0]), 3), idx_header(Path(labels_at[0]), 1)
        if images.dims[1:] != MNIST_SIZE:
            # the language gives mnist a fixed 1x28x28 input: other sizes would check shapes against the wrong data
            raise DataError(f"{images_at[0]} holds {images.dims[1]}x{images.dims[2]} images; expected "
                            f"{MNIST_SIZE[0]}x{MNIST_SIZE[1]} (MNIST and Fashion-MNIST; use data npz or data folder "
                            "for other sizes)")
        if images.dims[0] != labels.dims[0]:
            raise DataError(f"{images_at[0]} holds {images.dims[0]:,} images but {labels_at[0]} "
                            f"{labels.dims[0]:,} labels; expected one each")
        if prefix == "train" and images.dims[0] == 0:
            raise DataError(f"{images_at[0]} holds no images; there is nothing to train on")


def _class_names(data: DataSpec) -> tuple[str, ...]:
    chosen = data.option("classes")
    # `classes=cat,dog` and `classes="cat,dog"` name the same classes, as the loader reads them
    items = chosen if isinstance(chosen, tuple) else str(chosen or "").split(",")
    return tuple(str(c).strip() for c in items if str(c).strip())


def _quickdraw(data: DataSpec, base_dir: Path | None) -> DatasetInfo:
    names = _class_names(data)
    if not names:
        path = _located(data, base_dir)
        names = tuple(quickdraw_files(path))
        if not names:
            raise DataError(f"{data.path} holds no <class>.npy files")
    return DatasetInfo("quickdraw", (1, 28, 28), len(names), names)


QUICKDRAW_PREFIX = "full_numpy_bitmap_"


def quickdraw_files(folder: Path) -> dict[str, Path]:
    """Class name -> file, for `<class>.npy` and `full_numpy_bitmap_<class>.npy`, in order of class name.

    The one place that decides what a Quick Draw folder's classes are: the loader trains on them and the
    language sizes the head by them, so the two never disagree. A class with both files reads `<class>.npy`.
    """
    require_folder(folder, "Quick Draw bitmaps, one <class>.npy per class")
    out: dict[str, Path] = {}
    try:
        for p in sorted(folder.glob("*.npy")):
            name = p.stem[len(QUICKDRAW_PREFIX):] if p.stem.startswith(QUICKDRAW_PREFIX) else p.stem
            out.setdefault(name, p)
    except OSError as e:
        raise DataError(f"cannot list {folder}: {e.strerror or e}") from None
    return dict(sorted(out.items()))


def image_files(folder: Path) -> list[Path]:
    """The images of one class folder, in order of name: regular files with an image suffix (a pipe or a device
    named like an image is never opened)."""
    try:
        return [f for f in sorted(folder.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES and is_regular(f)]
    except OSError as e:
        raise DataError(f"cannot list {folder}: {e.strerror or e}") from None


def first_image(folder: Path) -> Path | None:
    """The first image of one class folder in order of name, probing no more files than it takes."""
    try:
        names = sorted(folder.iterdir())
    except OSError as e:
        raise DataError(f"cannot list {folder}: {e.strerror or e}") from None
    return next((f for f in names if f.suffix.lower() in IMAGE_SUFFIXES and is_regular(f)), None)


def folder_classes(root: Path) -> list[str]:
    """The class folders of an image folder, in order of name (at least two)."""
    require_folder(root, FOLDER_LAYOUT)
    try:
        classes = sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and is_folder(p))
    except OSError as e:
        raise DataError(f"cannot list {root}: {e.strerror or e}") from None
    if len(classes) < 2:
        raise DataError(f"{root} has {len(classes)} class folder(s); expected {FOLDER_LAYOUT} with 2 or more")
    return classes


@contextmanager
def opened_image(path: Path) -> Iterator[Any]:
    """A Pillow image opened (its header read, nothing decoded), refusing one whose pixels exceed
    MAX_IMAGE_PIXELS before it is decoded: a small file can declare a gigapixel image."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with open_regular(path, "an image") as f, Image.open(f) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise DataError(f"{path} is a {w}x{h} image ({w * h:,} pixels), over the limit of "
                                    f"{MAX_IMAGE_PIXELS:,} pixels; refusing to decode it")
                yield im
        except DataError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataError(f"{path} declares more pixels than the limit of {MAX_IMAGE_PIXELS:,}; refusing to "
                            f"decode it ({e})") from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as e:
            # Pillow's plugins raise all of these for truncated or foreign files
            raise DataError(f"cannot read image {path}: {e}") from None


@lru_cache(maxsize=32)
def _folder_info(path: str, stamp: int) -> DatasetInfo:
    root = Path(path)
    classes = folder_classes(root)
    shape: Shape | None = None
    # the first image of every class is read (its header only): a bad one in any class is found here
    for name in classes:
        first = first_image(root / name)
        if first is None:
            raise DataError(f"{root / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        with opened_image(first) as im:
            w, h = im.size
            channels = 1 if im.mode in ("1", "L", "I", "F", "I;16") else 3
        shape = shape or (channels, h, w)
    assert shape is not None
    return DatasetInfo("folder", shape, len(classes), tuple(classes))


@lru_cache(maxsize=32)
def _npz_info(path: str, stamp: int) -> DatasetInfo:
    with Npz(Path(path)) as z:
        z.require("x", "y")
        x, y = z.header("x"), z.header("y")
        shape = image_shape(x.shape, path)
        if y.shape not in ((x.shape[0],), (x.shape[0], 1)):
            raise DataError(f"{path}: y has shape {y.shape} for {x.shape[0]} images; expected one label per image")
        check_labels(y.dtype, path)
        if x.shape[0] == 0:
            raise DataError(f"{path} holds no examples; there is nothing to train on")
        labels = z.distinct("y")
    return DatasetInfo("npz", shape, len(labels), tuple(str(v) for v in labels))


def check_labels(dtype: Any, where: str) -> None:
    """Labels are class numbers or class names; other numbers (1.5, NaN) name no class."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind not in "iubUS":
        raise DataError(f"{where}: y holds {dtype} values; labels must be integer class labels (0, 1, 2, ...) "
                        "or class names as strings")


def image_shape(x_shape: tuple[int, ...], where: str) -> Shape:
    """(C, H, W) of one example from an array's shape: N x H x W, N x H x W x C or N x C x H x W."""
    if len(x_shape) == 3:
        return (1, x_shape[1], x_shape[2])
    if len(x_shape) == 4:
        if x_shape[3] in (1, 3, 4) and x_shape[1] not in (1, 3, 4):
            return (x_shape[3], x_shape[1], x_shape[2])
        return (x_shape[1], x_shape[2], x_shape[3])
    raise DataError(f"{where}: x has shape {x_shape}; expected N x H x W, N x H x W x C or N x C x H x W")
