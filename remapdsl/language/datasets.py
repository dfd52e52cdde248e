"""What the language needs to know about a data set before training: input shape and classes.

Named data sets have fixed shapes; folders and `.npz` files are read (lightly, and cached by path and
modification time) unless their shape is declared with `channels=`, `size=` and `classes=`. The loaders
that read the actual examples live with the training backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from remapdsl.language.catalog import ParamSpec, Shape
from remapdsl.language.model import DataSpec, as_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """The data line names something that cannot be used; the message says what and where."""


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

    A relative path resolves against `base_dir`, the folder of the `.remap` file, as the loaders do.
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
    path = _existing(data, base_dir)
    stamp = os.stat(path).st_mtime_ns
    info = _folder_info(str(path), stamp) if kind.name == "folder" else _npz_info(str(path), stamp)
    c, h, w = info.input_shape
    if "size" in declared:
        h = w = as_int(declared["size"])
    if "channels" in declared:
        c = as_int(declared["channels"])
    return DatasetInfo(info.name, (c, h, w), info.num_classes, info.class_names)


def _existing(data: DataSpec, base_dir: Path | None) -> Path:
    if not data.path:
        raise DataError(f"data {data.name} needs a path, e.g. data {data.name} \"~/data/{data.name}\"")
    try:
        path = Path(data.path).expanduser()
    except RuntimeError as e:  # "~someone" naming no user
        raise DataError(f"{data.path}: {e}") from e
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.exists():
        raise DataError(f"{data.path} does not exist")
    return path


def _quickdraw(data: DataSpec, base_dir: Path | None) -> DatasetInfo:
    chosen = data.option("classes")
    # `classes=cat,dog` and `classes="cat,dog"` name the same classes, as the loader reads them
    items = chosen if isinstance(chosen, tuple) else str(chosen or "").split(",")
    names = tuple(str(c).strip() for c in items if str(c).strip())
    if not names:
        path = _existing(data, base_dir)
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
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; expected Quick Draw bitmaps, one <class>.npy per class")
    out: dict[str, Path] = {}
    for p in sorted(folder.glob("*.npy")):
        name = p.stem[len(QUICKDRAW_PREFIX):] if p.stem.startswith(QUICKDRAW_PREFIX) else p.stem
        out.setdefault(name, p)
    return dict(sorted(out.items()))


@lru_cache(maxsize=32)
def _folder_info(path: str, stamp: int) -> DatasetInfo:
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{path} is not a folder; expected root/<class>/<image>")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{path} has {len(classes)} class folder(s); expected root/<class>/<image> with 2 or more")
    first = next((f for f in sorted((root / classes[0]).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES), None)
    if first is None:
        raise DataError(f"{root / classes[0]} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    try:
        from PIL import Image

        with Image.open(first) as im:
            w, h = im.size
            channels = 1 if im.mode in ("1", "L", "I", "F", "I;16") else 3
    except Exception as e:  # Pillow raises many types for unreadable files
        raise DataError(f"cannot read image {first}: {e}") from e
    return DatasetInfo("folder", (channels, h, w), len(classes), tuple(classes))


@lru_cache(maxsize=32)
def _npz_info(path: str, stamp: int) -> DatasetInfo:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise DataError(f"{path} must hold arrays 'x' and 'y'; found {', '.join(z.files) or 'none'}")
            x_shape = z["x"].shape
            check_labels(z["y"].dtype, path)
            labels = np.unique(z["y"])
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"cannot read {path} as .npz: {e}") from e
    return DatasetInfo("npz", image_shape(x_shape, path), len(labels), tuple(str(v) for v in labels))


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
