"""Reading data files that may be hostile: what is read, and how much of it, is bounded before it is read.

A data path is probed with `stat` and never opened unless it is a regular file (or a folder where a folder is
expected): a device, a pipe or a FIFO (`/dev/stdin`, `/proc/self/fd/0`) would block or read a stream that is
not data, in the language server its own protocol stream. Every problem is a DataError naming the file.

Compressed data is decompressed no further than its header promises: a `.npz` member's `.npy` header and a
gzip idx file's idx header say how many bytes follow, and those must agree with the archive and stay within
`MAX_DATA_BYTES`, checked before anything is allocated and then read in bounded chunks. Only headers are read
when the language asks for shapes and classes; the training loaders read the arrays through the same checks.

numpy is imported on first use, so that the language core stays light for the editor.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    import numpy as np

# The most bytes one array of a data set may take once decompressed or decoded (a `.npz` member, an idx
# file, an image folder's stacked images); training holds a float32 copy, four times a uint8 array's size.
MAX_DATA_BYTES = 1 << 30
# The most pixels one image may have before it is decoded (Pillow's own warning threshold, made a refusal).
MAX_IMAGE_PIXELS = 89_478_485
# Distinct labels read from a data set at most (the language's limit on `classes=`).
MAX_CLASSES = 100_000
# Labels are read this many bytes at a time when only their distinct values are wanted.
_LABEL_CHUNK_BYTES = 1 << 23
_READ_CHUNK = 1 << 22


class DataError(ValueError):
    """The data line names something that cannot be used; the message says what and where."""


class _Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def size_text(n: int) -> str:
    """Bytes in the unit a reader takes in at a glance: 2.0 GiB, 512.0 KiB, 14 B."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "neither a file nor a folder"


def _os_problem(path: Path | str, e: OSError) -> DataError:
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return DataError(f"{path} does not exist")
    return DataError(f"cannot use {path}: {e.strerror or e}")


def status(path: Path) -> os.stat_result | None:
    """`stat` of `path` (following links) without opening it; None when it does not exist. Any other failure
    (a name too long, no permission, a loop of links) is a DataError that says so."""
    try:
        return os.stat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise _os_problem(path, e) from None
    except ValueError as e:  # a NUL byte in the name
        raise DataError(f"cannot use {str(path)!r}: {e}") from None


def exists(path: Path) -> bool:
    """Whether `path` names something, for messages; a name that cannot even be probed names nothing."""
    try:
        return status(path) is not None
    except DataError:
        return False


def require_folder(path: Path, expected: str) -> None:
    """A DataError unless `path` is a folder; `expected` says what should be there."""
    st = status(path)
    if st is None:
        raise DataError(f"{path} does not exist; expected {expected}")
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path} is {_what(st.st_mode)}, not a folder; expected {expected}")


def require_file(path: Path, expected: str) -> os.stat_result:
    """A DataError unless `path` is a regular file; `expected` says what should be there."""
    st = status(path)
    if st is None:
        raise DataError(f"{path} does not exist; expected {expected}")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path} is {_what(st.st_mode)}; expected {expected} (a regular file)")
    return st


def is_regular(path: Path) -> bool:
    try:
        st = status(path)
    except DataError:
        return False
    return st is not None and stat.S_ISREG(st.st_mode)


def is_folder(path: Path) -> bool:
    try:
        st = status(path)
    except DataError:
        return False
    return st is not None and stat.S_ISDIR(st.st_mode)


def open_regular(path: Path, expected: str) -> BinaryIO:
    """`path` opened for reading, refusing anything but a regular file. The open does not block on a FIFO, and
    the check is made on the opened file, so a file swapped for a pipe after a probe is refused too."""
    require_file(path, expected)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _os_problem(path, e) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"{path} is {_what(mode)}; expected {expected} (a regular file)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_size(nbytes: int, path: Path | str, what: str) -> None:
    """A DataError when `what` of `path` would take more than MAX_DATA_BYTES."""
    if nbytes > MAX_DATA_BYTES:
        raise DataError(f"{path}: {what} would take {size_text(nbytes)}, over the limit of "
                        f"{size_text(MAX_DATA_BYTES)} for one array of a data set; refusing to read it")


def read_exactly(stream: _Reader, out: np.ndarray, path: Path | str, what: str) -> None:
    """Fill the 1-D array `out` from `stream`, chunk by chunk, and make sure nothing follows: a stream that
    ends early or holds more than its header promised is a DataError."""
    view = out.view("u1").data
    total, done = len(view), 0
    while done < total:
        piece = stream.read(min(_READ_CHUNK, total - done))
        if not piece:
            raise DataError(f"{path}: {what} holds {done:,} data bytes; its header promises {total:,}")
        view[done:done + len(piece)] = piece
        done += len(piece)
    if stream.read(1):
        raise DataError(f"{path}: {what} holds more data than the {total:,} bytes its header promises; "
                        "refusing to read further")


# --- .npz: zip archives of .npy members -----------------------------------------------------------------


@dataclass(frozen=True)
class NpyHeader:
    """What a `.npy` member promises: its array's shape and type, and how many data bytes follow the header."""

    shape: tuple[int, ...]
    dtype: Any  # numpy.dtype
    fortran: bool
    nbytes: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)


class Npz:
    """An open `.npz` file whose members are read only through their headers' promises."""

    def __init__(self, path: Path) -> None:
        import zipfile

        self.path = path
        self._file = open_regular(path, "a .npz file with arrays x and y")
        try:
            self._zip = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            self._file.close()
            raise DataError(f"cannot read {path} as .npz: {e}") from None
        self.members = {(n[:-4] if n.endswith(".npy") else n): n for n in self._zip.namelist()}

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self) -> Npz:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.members]
        if missing:
            found = ", ".join(self.members) or "none"
            raise DataError(f"{self.path} must hold arrays {' and '.join(repr(n) for n in names)}; found {found}")

    @contextmanager
    def _member(self, name: str) -> Iterator[tuple[IO[bytes], NpyHeader]]:
        import zipfile

        import numpy as np

        where = f"{self.path} (array {name!r})"
        info = self._zip.getinfo(self.members[name])
        try:
            with self._zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise DataError(f"{where}: .npy format version {version} is not supported")
                if dtype.hasobject:
                    raise DataError(f"{where} holds Python objects; expected numbers (pickled data is never loaded)")
                if dtype.itemsize == 0:
                    raise DataError(f"{where} holds {dtype} values of no size; expected numbers")
                header = NpyHeader(tuple(int(d) for d in shape), dtype, bool(fortran),
                                   math.prod(int(d) for d in shape) * dtype.itemsize)
                check_size(header.nbytes, where, f"an array of shape {header.shape} and type {dtype}")
                if info.file_size != stream.tell() + header.nbytes:
                    raise DataError(f"{where}: the archive says the member holds {info.file_size:,} bytes, its "
                                    f".npy header promises {stream.tell() + header.nbytes:,}; refusing to read it")
                yield stream, header
        except DataError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
            # a corrupt archive or header, an unsupported compression, an encrypted member
            raise DataError(f"cannot read {where}: {e}") from None

    def header(self, name: str) -> NpyHeader:
        """The `.npy` header of member `name`, read without reading its data."""
        with self._member(name) as (_, header):
            return header

    def array(self, name: str) -> np.ndarray:
        """Member `name`, decompressed no further than its header promises."""
        import zipfile

        import numpy as np

        with self._member(name) as (stream, header):
            flat = np.empty(header.count, header.dtype)
            try:
                read_exactly(stream, flat, self.path, f"array {name!r}")
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DataError(f"cannot read {self.path} (array {name!r}): {e}") from None
            return flat.reshape(header.shape, order="F" if header.fortran else "C")

    def distinct(self, name: str, at_most: int = MAX_CLASSES) -> np.ndarray:
        """The sorted distinct values of member `name`, read a chunk at a time; a DataError when there are more
        than `at_most`."""
        import zipfile

        import numpy as np

        with self._member(name) as (stream, header):
            seen = np.empty(0, header.dtype)
            left = header.count
            try:
                while left:
                    chunk = np.empty(min(left, max(1, _LABEL_CHUNK_BYTES // header.dtype.itemsize)), header.dtype)
                    read_exactly(_Limited(stream, chunk.nbytes), chunk, self.path, f"array {name!r}")
                    seen = np.unique(np.concatenate([seen, np.unique(chunk)]))
                    if len(seen) > at_most:
                        raise DataError(f"{self.path}: array {name!r} holds more than {at_most:,} distinct labels; "
                                        f"expected class labels (at most {at_most:,} classes)")
                    left -= len(chunk)
                if stream.read(1):
                    raise DataError(f"{self.path}: array {name!r} holds more data than its header promises")
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DataError(f"cannot read {self.path} (array {name!r}): {e}") from None
            return seen


class _Limited:
    """The next `n` bytes of a stream, as a stream of its own (for reading one chunk exactly)."""

    def __init__(self, stream: IO[bytes], n: int) -> None:
        self._stream, self._left = stream, n

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._stream.read(n) if n else b""
        self._left -= len(data)
        return data


# --- idx files (MNIST), plain or gzip ------------------------------------------------------------------

# idx type codes and the big-endian numpy types they stand for.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
IDX_EXPECTED = "an idx file (plain or .gz)"


@dataclass(frozen=True)
class IdxHeader:
    dims: tuple[int, ...]
    type_code: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * _IDX_ITEMSIZE[self.type_code]


@contextmanager
def open_idx(path: Path, ndim: int) -> Iterator[tuple[_Reader, IdxHeader]]:
    """An idx file (gzip when its name ends in .gz) positioned after its header, which is checked to have `ndim`
    dimensions and to promise no more than MAX_DATA_BYTES (dimensions multiplied exactly: no overflow)."""
    import gzip
    import zlib

    f = open_regular(path, IDX_EXPECTED)
    try:
        stream: _Reader = gzip.GzipFile(fileobj=f, mode="rb") if path.suffix == ".gz" else f
        try:
            head = stream.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise DataError(f"{path} does not start with an idx header; expected {IDX_EXPECTED}")
            if head[3] != ndim:
                raise DataError(f"{path} has {head[3]} dimension(s); expected {ndim}")
            raw = stream.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise DataError(f"{path} is truncated inside its header")
            dims = tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
            header = IdxHeader(dims, head[2])
            check_size(header.nbytes, path, f"its header's {' x '.join(map(str, dims))} values")
            if stream is f and (st := os.fstat(f.fileno())).st_size != 4 + 4 * ndim + header.nbytes:
                raise DataError(f"{path} holds {st.st_size - 4 - 4 * ndim} data bytes; its header "
                                f"{dims} promises {header.nbytes}")
            yield stream, header
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"cannot read {path}: {e}; expected {IDX_EXPECTED}") from None
    finally:
        f.close()


def idx_header(path: Path, ndim: int) -> IdxHeader:
    """The header of an idx file, checked as `open_idx` checks it, without reading its data."""
    with open_idx(path, ndim) as (_, header):
        return header


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One idx file (plain or gzip), checked to have `ndim` dimensions; decompressed no further than its header
    promises."""
    import numpy as np

    with open_idx(path, ndim) as (stream, header):
        dtype = np.dtype(IDX_TYPES[header.type_code])
        flat = np.empty(math.prod(header.dims), dtype)
        read_exactly(stream, flat, path, "the file")
    return flat.reshape(header.dims).astype(dtype.newbyteorder("="))


def idx_file(folder: Path, stem: str) -> Path | None:
    """The idx file called `stem` in an MNIST folder: both spellings are in circulation (train-images-idx3-ubyte,
    train-images.idx3-ubyte), some in raw/, plain or .gz. A name that is there but not a regular file is
    returned too, so that reading it says what it is."""
    prefix, kind = stem.rsplit("-", 1)
    for where in (folder, folder / "raw"):
        for name in (stem, f"{prefix}.{kind}"):
            for candidate in (where / name, where / f"{name}.gz"):
                if exists(candidate) and not is_folder(candidate):
                    return candidate
    return None


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
