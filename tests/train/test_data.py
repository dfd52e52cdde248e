"""Loading data: every format is written here in its real on-disk layout, then read back."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from remapdsl.language.datasets import CIFAR10_CLASSES, DataError
from remapdsl.language.model import Arg, DataSpec
from remapdsl.train.data import Dataset, channel_stats, load_dataset, stratified_split
from remapdsl.train.data_formats import RestrictedUnpickler, read_idx


def spec(name: str, path: str | Path | None = None, **options: object) -> DataSpec:
    return DataSpec(name, None if path is None else str(path), tuple(Arg(k, v) for k, v in options.items()))


def assert_normalised(d: Dataset) -> None:
    assert d.x_train.dtype == np.float32 and d.x_val.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_val.dtype == np.int64
    mean = d.x_train.mean(axis=(0, 2, 3))
    std = d.x_train.std(axis=(0, 2, 3))
    np.testing.assert_allclose(mean, 0, atol=1e-4)
    np.testing.assert_allclose(std, 1, atol=1e-3)


# --- digits --------------------------------------------------------------------------------------------


def test_digits_is_the_default_and_is_split_stratified_and_normalised() -> None:
    d = load_dataset(None)
    assert d.name == "digits" and d.key == "digits|val=0.2|seed=0"
    assert d.input_shape == (1, 8, 8) and d.class_names == tuple("0123456789")
    assert len(d.y_train) + len(d.y_val) == 1797
    assert abs(len(d.y_val) - 0.2 * 1797) <= 10
    # every class keeps about a fifth of its examples for validation
    per_class = np.bincount(d.y_val, minlength=10) / (np.bincount(d.y_val, minlength=10)
                                                      + np.bincount(d.y_train, minlength=10))
    assert np.all(np.abs(per_class - 0.2) < 0.02)
    assert_normalised(d)


def test_digits_split_is_deterministic_and_follows_the_seed() -> None:
    a, b = load_dataset(None), load_dataset(spec("digits"))
    np.testing.assert_array_equal(a.x_val, b.x_val)
    c = load_dataset(spec("digits", seed=7, val=0.3))
    assert c.key == "digits|val=0.3|seed=7"
    assert len(c.y_val) > len(a.y_val)
    assert not np.array_equal(np.sort(c.x_val.reshape(len(c.x_val), -1), axis=0)[:5],
                              np.sort(a.x_val.reshape(len(a.x_val), -1), axis=0)[:5])


def test_stratified_split_keeps_one_of_each_class_on_both_sides() -> None:
    y = np.array([0] * 10 + [1] * 2 + [2] * 1)
    train, val = stratified_split(y, 0.01, seed=3)
    assert sorted(set(y[val])) == [0, 1]  # class 2 has one example: it trains
    assert set(y[train]) == {0, 1, 2}
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)


def test_channel_stats_match_numpy() -> None:
    x = np.random.default_rng(0).integers(0, 255, (5000, 3, 4, 4)).astype(np.uint8)
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), rtol=1e-6)


def test_unknown_options_and_bad_values_are_named() -> None:
    with pytest.raises(DataError, match="no option 'vall'"):
        load_dataset(spec("digits", vall=0.1))
    with pytest.raises(DataError, match=r"val must be a number in \(0, 1\)"):
        load_dataset(spec("digits", val=1.5))
    with pytest.raises(DataError, match="unknown data set 'imagenet'"):
        load_dataset(spec("imagenet"))


# --- CIFAR-10 -------------------------------------------------------------------------------------


def write_cifar(folder: Path, per_batch: int = 20, protocol: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    meta = {b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_batches_load_with_the_test_batch_as_validation(tmp_path: Path, protocol: int) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    d = load_dataset(spec("cifar10", "cifar-10-batches-py"), base_dir=tmp_path)
    assert d.input_shape == (3, 32, 32)
    assert len(d.y_train) == 100 and len(d.y_val) == 20
    assert d.class_names == CIFAR10_CLASSES
    assert d.key == f"cifar10|{(tmp_path / 'cifar-10-batches-py').resolve()}|val=test"
    assert_normalised(d)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())
    np.testing.assert_array_equal(d.y_val, raw[b"labels"])


def test_cifar10_with_val_holds_out_part_of_the_training_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    d = load_dataset(spec("cifar10", tmp_path / "c", val=0.25))
    assert len(d.y_train) + len(d.y_val) == 100
    assert d.key.endswith("|val=0.25|seed=0")


def test_a_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_3: refusing to load '(posix|os|nt)\.system'"):
        load_dataset(spec("cifar10", tmp_path / "c"))
    assert not marker.exists()


def test_restricted_unpickler_refuses_builtins_too(tmp_path: Path) -> None:
    import io

    payload = pickle.dumps(eval, protocol=4)  # a global reference to builtins.eval
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_cifar10_missing_files_and_corrupt_batches_are_named(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_2").unlink()
    with pytest.raises(DataError, match=r"lacks data_batch_2; expected a CIFAR-10 python batches folder"):
        load_dataset(spec("cifar10", tmp_path / "c"))
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "test_batch").write_bytes(b"\x80\x02}q\x00(X")  # truncated
    with pytest.raises(DataError, match=r"test_batch is corrupt or not a pickle file"):
        load_dataset(spec("cifar10", tmp_path / "c"))
    (tmp_path / "c" / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8),
                                                               b"labels": [0, 1]}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: 'data' is uint8 array of shape \(2, 10\); expected"):
        load_dataset(spec("cifar10", tmp_path / "c"))


def test_missing_path_names_the_resolved_path_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere does not exist; expected CIFAR-10 python batches folder"):
        load_dataset(spec("cifar10", "nowhere"), base_dir=tmp_path)
    with pytest.raises(DataError, match="needs a path"):
        load_dataset(spec("mnist"))


# --- MNIST idx ------------------------------------------------------------------------------------------


def idx_bytes(a: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(">u1").tobytes()


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = False) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        raw = idx_bytes(a)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_plain_or_gzip(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path / "mnist", gz=gz)
    d = load_dataset(spec("mnist", tmp_path / "mnist"))
    assert d.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(d.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(d.y_val, arrays["t10k-labels-idx1-ubyte"])
    # normalisation is one affine map per channel: the order of pixel values survives
    raw = arrays["t10k-images-idx3-ubyte"].reshape(10, -1)
    assert np.array_equal(np.argsort(raw[0], kind="stable"), np.argsort(d.x_val[0].reshape(-1), kind="stable"))
    assert_normalised(d)


def test_idx_header_and_size_problems_are_named(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m")
    bad = tmp_path / "m" / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds \d+ data bytes; its header"):
        load_dataset(spec("mnist", tmp_path / "m"))
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataError, match="does not start with an idx header"):
        load_dataset(spec("mnist", tmp_path / "m"))
    labels = tmp_path / "labels.gz"
    labels.write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(DataError, match=r"cannot read .*labels.gz"):
        read_idx(labels, 1)
    write_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte; expected MNIST or Fashion-MNIST idx files"):
        load_dataset(spec("mnist", tmp_path / "m"))


@pytest.mark.parametrize("part", ["train", "t10k"])
def test_mnist_images_must_be_28x28(tmp_path: Path, part: str) -> None:
    write_mnist(tmp_path / "m")
    # the language gives mnist a 1x28x28 input: any other size, in either split, is refused by file name
    (tmp_path / "m" / f"{part}-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((30 if part == "train" else 10,
                                                                                   32, 32))))
    with pytest.raises(DataError) as e:
        load_dataset(spec("mnist", tmp_path / "m"))
    assert str(e.value).startswith(f"{tmp_path / 'm' / f'{part}-images-idx3-ubyte'} holds 32x32 images; "
                                   "expected 28x28")


def test_float_idx_images_must_be_finite(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m")
    images = np.zeros((10, 28, 28), dtype=">f4")
    images[7, 3, 3] = np.nan
    raw = struct.pack(">BBBB", 0, 0, 0x0D, 3) + struct.pack(">3I", 10, 28, 28) + images.tobytes()
    (tmp_path / "m" / "t10k-images-idx3-ubyte").write_bytes(raw)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: 1 non-finite value\(s\) \(NaN or infinity\) in "
                                        r"the images, the first in example 7; expected finite numbers"):
        load_dataset(spec("mnist", tmp_path / "m"))


# --- Quick Draw ------------------------------------------------------------------------------------------


def write_quickdraw(folder: Path, counts: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, n) in enumerate(counts.items()):
        # the class index is painted into every drawing, so tests can tell classes apart
        a = np.full((n, 784), i * 40, dtype=np.uint8)
        a[:, :10] = np.arange(n)[:, None] % 256
        file = f"full_numpy_bitmap_{name}.npy" if i % 2 else f"{name}.npy"
        np.save(folder / file, a)


def test_quickdraw_picks_classes_and_per_class_counts(tmp_path: Path) -> None:
    write_quickdraw(tmp_path / "qd", {"cat": 50, "dog": 40, "tree": 30})
    d = load_dataset(spec("quickdraw", tmp_path / "qd", classes=("dog", "cat"), train=20, val=5))
    assert d.class_names == ("dog", "cat")
    assert np.bincount(d.y_train).tolist() == [20, 20] and np.bincount(d.y_val).tolist() == [5, 5]
    assert d.input_shape == (1, 28, 28)
    # no drawing is in both sets
    def ids(x: np.ndarray, y: np.ndarray) -> set[tuple[int, int]]:
        return {(int(c), round(float(v), 4)) for c, v in zip(y, x[:, 0, 0, 0], strict=True)}
    assert not ids(d.x_train, d.y_train) & ids(d.x_val, d.y_val)
    again = load_dataset(spec("quickdraw", tmp_path / "qd", classes=("dog", "cat"), train=20, val=5))
    np.testing.assert_array_equal(d.x_val, again.x_val)
    every = load_dataset(spec("quickdraw", tmp_path / "qd", train=10, val=10))
    assert every.class_names == ("cat", "dog", "tree")


def test_quickdraw_problems_are_named(tmp_path: Path) -> None:
    write_quickdraw(tmp_path / "qd", {"cat": 50, "dog": 10})
    with pytest.raises(DataError, match=r"full_numpy_bitmap_dog.npy holds 10 drawings; train=20 plus val=5 need 25"):
        load_dataset(spec("quickdraw", tmp_path / "qd", train=20, val=5))
    with pytest.raises(DataError, match=r"no owl.npy or full_numpy_bitmap_owl.npy for class 'owl'; classes found: "
                                        r"cat, dog"):
        load_dataset(spec("quickdraw", tmp_path / "qd", classes="owl", train=5, val=5))
    np.save(tmp_path / "qd" / "cat.npy", np.zeros((60, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"cat.npy holds a uint8 array of shape \(60, 28, 28\); expected N x 784"):
        load_dataset(spec("quickdraw", tmp_path / "qd", train=5, val=5))


def test_a_quickdraw_file_that_is_not_npy_is_named_as_such(tmp_path: Path) -> None:
    write_quickdraw(tmp_path / "qd", {"cat": 20, "dog": 20})
    (tmp_path / "qd" / "cat.npy").write_bytes(b"<html>rate limited</html>" * 40)
    with pytest.raises(DataError) as e:
        load_dataset(spec("quickdraw", tmp_path / "qd", train=5, val=5))
    assert str(e.value).startswith(f"{tmp_path / 'qd' / 'cat.npy'} is not a numpy .npy file")
    assert "pickle" not in str(e.value)


def test_quickdraw_drawings_must_be_finite(tmp_path: Path) -> None:
    write_quickdraw(tmp_path / "qd", {"cat": 20, "dog": 20})
    drawings = np.zeros((20, 784), np.float32)
    drawings[:, 5] = np.inf
    np.save(tmp_path / "qd" / "cat.npy", drawings)
    with pytest.raises(DataError, match=r"cat.npy: 10 non-finite value\(s\) \(NaN or infinity\) in the chosen "
                                        r"drawings, the first in example \d+; expected finite numbers"):
        load_dataset(spec("quickdraw", tmp_path / "qd", train=5, val=5))


def test_the_language_and_the_loader_agree_on_quickdraw_classes(tmp_path: Path) -> None:
    from remapdsl.language.datasets import describe

    folder = tmp_path / "qd"
    write_quickdraw(folder, {"dog": 20, "cat": 20, "owl": 20})  # dog.npy, full_numpy_bitmap_cat.npy, owl.npy
    np.save(folder / "full_numpy_bitmap_dog.npy", np.zeros((20, 784), np.uint8))  # dog a second time
    info = describe(spec("quickdraw", folder))
    loaded = load_dataset(spec("quickdraw", folder, train=5, val=5))
    assert info.class_names == loaded.class_names == ("cat", "dog", "owl")
    assert info.num_classes == loaded.num_classes == 3


# --- image folders -------------------------------------------------------------------------------------------


def write_folder(root: Path, per_class: int = 6, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(2)
    for name in ("ant", "bee"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{i}.png")


def test_image_folder_reads_classes_from_subfolders(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "ant" / "notes.txt").write_text("not an image")
    d = load_dataset(spec("folder", "imgs", val=0.5), base_dir=tmp_path)
    assert d.class_names == ("ant", "bee")
    assert d.input_shape == (3, 10, 12)
    assert np.bincount(d.y_val).tolist() == [3, 3]
    assert_normalised(d)
    grey = load_dataset(spec("folder", tmp_path / "imgs", channels=1, size=8))
    assert grey.input_shape == (1, 8, 8)


def test_image_folder_problems_are_named(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    from PIL import Image

    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "imgs" / "bee" / "odd.png")
    with pytest.raises(DataError) as e:
        load_dataset(spec("folder", tmp_path / "imgs"))
    # said once, not wrapped in "cannot read image ..." as if the file were unreadable
    assert str(e.value) == (f"{tmp_path / 'imgs' / 'bee' / 'odd.png'} is 5x5, the first image 12x10; expected one "
                            "size (or give size= to resize every image)")
    (tmp_path / "imgs" / "bee" / "odd.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"cannot read image .*odd.png"):
        load_dataset(spec("folder", tmp_path / "imgs"))
    (tmp_path / "single" / "only").mkdir(parents=True)
    with pytest.raises(DataError, match=r"single has 1 class folder\(s\); expected an image folder"):
        load_dataset(spec("folder", tmp_path / "single"))
    with pytest.raises(DataError, match=r"declares classes=3"):
        (tmp_path / "imgs" / "bee" / "odd.png").unlink()
        load_dataset(spec("folder", tmp_path / "imgs", classes=3))


# --- .npz -------------------------------------------------------------------------------------------------


def test_npz_with_channels_last_images_and_string_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((40, 9, 9, 3)).astype(np.float32)
    y = np.array(["no", "yes"] * 20)
    np.savez(tmp_path / "set.npz", x=x, y=y)
    d = load_dataset(spec("npz", "set.npz", val=0.25), base_dir=tmp_path)
    assert d.input_shape == (3, 9, 9) and d.class_names == ("no", "yes")
    assert len(d.y_val) == 10 and np.bincount(d.y_val).tolist() == [5, 5]
    assert_normalised(d)
    small = load_dataset(spec("npz", tmp_path / "set.npz", size=4, channels=1))
    assert small.input_shape == (1, 4, 4)


def test_npz_declared_classes_need_class_numbers(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", x=np.zeros((10, 4, 4)), y=np.arange(10) % 3)
    assert load_dataset(spec("npz", tmp_path / "s.npz", classes=5)).class_names == ("0", "1", "2", "3", "4")
    with pytest.raises(DataError, match=r"with classes=2, y must hold class numbers 0..1; found values from 0 to 2"):
        load_dataset(spec("npz", tmp_path / "s.npz", classes=2))


def test_npz_problems_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", images=np.zeros((4, 2, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"a.npz must hold arrays 'x' and 'y'; found images, y"):
        load_dataset(spec("npz", tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x=np.zeros((4, 2, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"b.npz: y has shape \(3,\) for 4 images; expected one label per image"):
        load_dataset(spec("npz", tmp_path / "b.npz"))
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"cannot read .*c.npz as .npz"):
        load_dataset(spec("npz", tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"d.npz: x has shape \(4, 2\); expected N x H x W"):
        load_dataset(spec("npz", tmp_path / "d.npz"))


def test_npz_labels_must_be_integer_class_labels(tmp_path: Path) -> None:
    from remapdsl.language.datasets import describe

    np.savez(tmp_path / "f.npz", x=np.zeros((8, 4, 4)), y=np.array([0.0, 1.0, 0.5, 1.0] * 2))
    message = r"f.npz: y holds float64 values; labels must be integer class labels"
    with pytest.raises(DataError, match=message):
        load_dataset(spec("npz", tmp_path / "f.npz"))
    with pytest.raises(DataError, match=message):  # the language reads the same file the same way
        describe(spec("npz", tmp_path / "f.npz"))
    np.savez(tmp_path / "i.npz", x=np.zeros((8, 4, 4)), y=np.array([0, 1] * 4, dtype=np.uint8))
    assert load_dataset(spec("npz", tmp_path / "i.npz")).class_names == ("0", "1")


def test_npz_images_must_be_finite(tmp_path: Path) -> None:
    x = np.ones((12, 4, 4), np.float32)
    x[9, 0, 0], x[10, 1, 1] = np.nan, -np.inf
    np.savez(tmp_path / "n.npz", x=x, y=np.arange(12) % 2)
    with pytest.raises(DataError, match=r"n.npz: 2 non-finite value\(s\) \(NaN or infinity\) in x, the first in "
                                        r"example 9; expected finite numbers"):
        load_dataset(spec("npz", tmp_path / "n.npz"))
