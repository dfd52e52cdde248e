"""Load the data a document trains on: examples split into training and validation, normalised.

`load_dataset(spec, base_dir)` reads the data line's data set (digits when there is none), splits it
deterministically and normalises every channel with the training set's mean and standard deviation.
Relative paths resolve against `base_dir`, the folder of the `.remap` file. Every problem is a
`DataError` that names the path and what was expected there.

Splits: digits, image folders and `.npz` files hold out a stratified, seeded `val` fraction of each class.
CIFAR-10 and MNIST validate on their official test sets unless `val=` is written, which then holds out
that fraction of the training set instead. Quick Draw draws `train` and `val` examples of each class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import remapdsl.train.data_formats as formats
from remapdsl.language.datafiles import require_file, require_folder, status
from remapdsl.language.datasets import (
    DATASET_KINDS,
    DIGITS_CLASSES,
    NPZ_LAYOUT,
    QUICKDRAW_PREFIX,
    DataError,
    DatasetInfo,
    DatasetKind,
    locate,
    quickdraw_files,
)
from remapdsl.language.model import DataSpec, Value, as_float, as_int


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    # Identity of the data and its split, for the store: the same key means the same examples.
    key: str
    x_train: np.ndarray  # float32, N x C x H x W, normalised
    y_train: np.ndarray  # int64
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def info(self) -> DatasetInfo:
        """What the language core knows of this data: input shape and classes."""
        return DatasetInfo(self.name, self.input_shape, self.num_classes, self.class_names)


def load_dataset(spec: DataSpec | None, base_dir: Path | None = None) -> Dataset:
    """The examples of a data line (digits when None), split and normalised; DataError when unusable."""
    if spec is None:
        spec = DataSpec("digits")
    kind = DATASET_KINDS.get(spec.name)
    if kind is None:
        raise DataError(f"unknown data set '{spec.name}'; expected one of {', '.join(DATASET_KINDS)}")
    options = _options(spec, kind)
    if kind.name == "digits":
        if spec.path:
            raise DataError(f"data digits is bundled and takes no path; found \"{spec.path}\"")
        return _digits(options)
    path = resolve_path(spec, base_dir)
    if kind.name in ("cifar10", "mnist"):
        read = formats.read_cifar10 if kind.name == "cifar10" else formats.read_mnist
        return _official_split(kind.name, path, read(path), options, explicit_val=spec.option("val") is not None)
    if kind.name == "quickdraw":
        return _quickdraw(path, spec, options)
    if kind.name == "folder":
        channels, size = _declared(options, "channels"), _declared(options, "size")
        arrays, names = formats.read_image_folder(path, channels, size)
        _check_declared_classes(options, len(names), path)
        return _stratified(kind.name, path, arrays.x, arrays.y, names, options)
    return _npz(path, options)


def resolve_path(spec: DataSpec, base_dir: Path | None) -> Path:
    """The data line's path, absolute; a DataError when it names nothing or cannot even be probed."""
    path = locate(spec, base_dir)
    if status(path) is None:
        raise DataError(f"{path} does not exist; expected {DATASET_KINDS[spec.name].doc}")
    # said of the path as written: resolving would name /dev/stdin's target instead
    if spec.name == "npz":
        require_file(path, NPZ_LAYOUT)
    else:
        require_folder(path, DATASET_KINDS[spec.name].doc)
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # a loop of links
        raise DataError(f"cannot use {path}: {e}") from None


def stratified_split(y: np.ndarray, val: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation indices: each class gives `val` of its examples (at least one when it
    has two or more), chosen by a permutation seeded with `seed`."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = round(val * len(idx))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        held.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel of N x C x H x W images, accumulated in float64
    chunk by chunk so that a large uint8 set is never copied whole."""
    c = x.shape[1]
    total = np.zeros(c)
    squares = np.zeros(c)
    for i in range(0, len(x), 4096):
        chunk = x[i:i + 4096].astype(np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
    n = max(1, len(x) * x.shape[2] * x.shape[3])
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    # A constant channel carries no information; dividing by 1 keeps it finite.
    return mean, np.where(std > 1e-8, std, 1.0)


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(0, len(x), 4096):
        chunk = x[i:i + 4096].astype(np.float32)
        chunk -= mean.astype(np.float32)[None, :, None, None]
        chunk /= std.astype(np.float32)[None, :, None, None]
        out[i:i + 4096] = chunk
    return out


# --- the data sets -----------------------------------------------------------------------------------


def _digits(options: dict[str, Value]) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]  # 1,797 x 1 x 8 x 8, values 0..16
    y = bunch.target.astype(np.int64)
    return _stratified("digits", None, x, y, DIGITS_CLASSES, options)


def _official_split(name: str, path: Path, arrays: formats.SplitArrays, options: dict[str, Value],
                    explicit_val: bool) -> Dataset:
    if explicit_val:
        return _stratified(name, path, arrays.train.x, arrays.train.y, arrays.class_names, options)
    return _finish(name, f"{name}|{path}|val=test", arrays.train.x, arrays.train.y, arrays.test.x, arrays.test.y,
                   arrays.class_names)


def _quickdraw(path: Path, spec: DataSpec, options: dict[str, Value]) -> Dataset:
    files = quickdraw_files(path)
    names = _class_list(spec.option("classes")) or tuple(files)
    if not names:
        raise DataError(f"{path} holds no <class>.npy files; expected Quick Draw bitmaps, one .npy per class")
    missing = [n for n in names if n not in files]
    if missing:
        known = ", ".join(files) or "none"
        raise DataError(f"{path} has no {missing[0]}.npy or {QUICKDRAW_PREFIX}{missing[0]}.npy for class "
                        f"'{missing[0]}'; classes found: {known}")
    train, val, seed = as_int(options["train"]), as_int(options["val"]), as_int(options["seed"])
    xs_train, xs_val = [], []
    for name in names:
        a, b = formats.read_quickdraw_class(files[name], train, val, seed)
        xs_train.append(a)
        xs_val.append(b)
    y_train = np.repeat(np.arange(len(names), dtype=np.int64), train)
    y_val = np.repeat(np.arange(len(names), dtype=np.int64), val)
    key = f"quickdraw|{path}|classes={','.join(names)}|train={train}|val={val}|seed={seed}"
    return _finish("quickdraw", key, np.concatenate(xs_train), y_train, np.concatenate(xs_val), y_val, names)


def _npz(path: Path, options: dict[str, Value]) -> Dataset:
    x, labels = formats.read_npz(path)
    channels, size, declared = _declared(options, "channels"), _declared(options, "size"), _declared(options,
                                                                                                    "classes")
    if channels is not None:
        x = formats.convert_channels(x, channels, str(path))
    if size is not None:
        x = formats.resize(x, size)
    if declared is not None:
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= declared:
            raise DataError(f"{path}: with classes={declared}, y must hold class numbers 0..{declared - 1}; found "
                            f"{_label_range(labels)}")
        y, names = labels.astype(np.int64), tuple(str(i) for i in range(declared))
    else:
        values, y = np.unique(labels, return_inverse=True)
        if len(values) < 2:
            raise DataError(f"{path}: y holds {len(values)} distinct label(s); expected 2 or more classes")
        y, names = y.astype(np.int64).reshape(-1), tuple(str(v) for v in values)
    return _stratified("npz", path, x, y, names, options)


# --- helpers -------------------------------------------------------------------------------------------


def _options(spec: DataSpec, kind: DatasetKind) -> dict[str, Value]:
    """The data line's options with defaults filled in, each checked against its range."""
    known = {p.name: p for p in kind.options}
    for arg in spec.args:
        if arg.name not in known:
            raise DataError(f"data {kind.name} has no option '{arg.name}' (options: {', '.join(known) or 'none'})")
    out: dict[str, Value] = {}
    for p in kind.options:
        value = spec.option(p.name)
        if value is None:
            # defaults such as channels=0 ("read from the data") lie outside the range a user may write
            value = p.default
        elif p.type is not str and (msg := p.check(value)) is not None:
            raise DataError(f"data {kind.name}: {msg}")
        assert value is not None
        out[p.name] = p.type(value) if p.type is not str else value
    return out


def _declared(options: dict[str, Value], name: str) -> int | None:
    value = as_int(options.get(name, 0))
    return value or None


def _check_declared_classes(options: dict[str, Value], found: int, path: Path) -> None:
    declared = _declared(options, "classes")
    if declared is not None and declared != found:
        raise DataError(f"{path} has {found} class folders; the data line declares classes={declared}")


def _class_list(value: Value | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, tuple) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


def _label_range(labels: np.ndarray) -> str:
    if np.issubdtype(labels.dtype, np.number):
        return f"values from {labels.min()} to {labels.max()}"
    return f"{labels.dtype} labels"


def _stratified(name: str, path: Path | None, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...],
                options: dict[str, Value]) -> Dataset:
    val, seed = as_float(options["val"]), as_int(options["seed"])
    where = path if path is not None else name
    if len(y) == 0:
        raise DataError(f"{where} holds no examples; there is nothing to train on")
    train_idx, val_idx = stratified_split(y, val, seed)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DataError(f"{where}: val={val:g} of {len(y)} examples leaves an empty training or validation set")
    return _finish(name, _key(name, path, options), x[train_idx], y[train_idx], x[val_idx], y[val_idx], class_names)


def _key(name: str, path: Path | None, options: dict[str, Value]) -> str:
    """`name|path|option=value|...` with every option, defaults included, so that writing a default out
    gives the same key as leaving it implicit."""
    parts = [name, *([str(path)] if path is not None else [])]
    parts += [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()]
    return "|".join(parts)


def _finish(name: str, key: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            class_names: tuple[str, ...]) -> Dataset:
    for examples, which in ((y_train, "train on"), (y_val, "validate on")):
        if len(examples) == 0:
            # a training over no examples would end at once and look done
            raise DataError(f"data {name} ({key.split('|')[1]}) has no examples to {which}")
    mean, std = channel_stats(x_train)
    return Dataset(name, key, normalise(x_train, mean, std), np.ascontiguousarray(y_train, dtype=np.int64),
                   normalise(x_val, mean, std), np.ascontiguousarray(y_val, dtype=np.int64), tuple(class_names))
