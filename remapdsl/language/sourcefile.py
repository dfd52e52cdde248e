"""A `.remap` file as the language reads it: a regular file of at most MAX_SOURCE_BYTES.

A path naming a device or a pipe (`/dev/zero`, `/dev/stdin`) would be read for ever or would swallow a stream
meant for something else, and a text of hundreds of megabytes would hold an editor's analysis for minutes: both
are refused before anything is read, the first by the file's type and the second by its size.
"""

from __future__ import annotations

import errno
import os
import stat

from remapdsl.language.datafiles import size_text

# The largest .remap text read or analysed: a file of a hundred thousand models is well under it.
MAX_SOURCE_BYTES = 8 << 20


class SourceError(ValueError):
    """A `.remap` path that cannot be read as one; the message says why, naming the path."""


def too_large(text: str) -> str | None:
    """Why `text` is too large to analyse, or None. Counted in UTF-8 bytes, as the file holds it."""
    if len(text) * 4 <= MAX_SOURCE_BYTES:
        return None
    size = len(text) if len(text) > MAX_SOURCE_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_SOURCE_BYTES:
        return None
    return (f"this text is {size_text(size)}; a .remap file may hold at most {size_text(MAX_SOURCE_BYTES)}, so it "
            "is not analysed")


def read_source_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the `.remap` file at `path`: a regular file of at most MAX_SOURCE_BYTES, else a SourceError.
    The file is opened without blocking (a FIFO does not hang the open) and checked once open."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SourceError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{os.fspath(path)} is a directory; expected a .remap file") from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # a socket, or a FIFO nobody writes to (opened for reading it does not fail)
            raise SourceError(f"{os.fspath(path)} is not a regular file; expected a .remap file") from None
        raise SourceError(f"cannot read {os.fspath(path)}: {e.strerror or e}") from None
    except ValueError as e:  # a NUL in the name
        raise SourceError(f"cannot read {os.fspath(path)!r}: {e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SourceError(f"{os.fspath(path)} is a directory; expected a .remap file")
        kind = "a pipe" if stat.S_ISFIFO(st.st_mode) else (
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise SourceError(f"{os.fspath(path)} is {kind}; expected a .remap file (a regular file)")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > MAX_SOURCE_BYTES:
            raise SourceError(f"{os.fspath(path)} is {size_text(st.st_size)}; a .remap file may hold at most "
                              f"{size_text(MAX_SOURCE_BYTES)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        try:
            data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as e:
            raise SourceError(f"cannot read {os.fspath(path)}: {e.strerror or e}") from None
        if len(data) > MAX_SOURCE_BYTES:  # grew since it was measured
            raise SourceError(f"{os.fspath(path)} is over {size_text(MAX_SOURCE_BYTES)}, the most a .remap file may "
                              "hold")
        return data
