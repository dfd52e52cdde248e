"""A workspace's `.remap` files as the overview reads and rewrites them: whole, atomically, and never over
an edit made on disk since they were read.

An editor may save the file between the moment the overview read it and the moment it writes children
into it. The write therefore compares the file's bytes with those it read, right before replacing it
through a temporary file in the same folder; a file that changed is left alone and the caller reads it
again (`FileChanged`). A read-only file is refused rather than replaced by rename, which its folder's
permissions would allow. Problems are `FileProblem`s whose message names the file and what was wrong.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from remapdsl.language.sourcefile import SourceError, read_source_bytes

BOM = b"\xef\xbb\xbf"
NEW_FILE_MODE = 0o644


class FileProblem(Exception):
    """A file that cannot be read or written as asked; the message says which and why."""


class FileChanged(FileProblem):
    """The file on disk is not the one that was read: somebody saved it in between."""


@dataclass(frozen=True)
class FileText:
    """A file's text as read, with the bytes it was read from (what a later write compares against)."""

    path: Path
    text: str
    bom: bool
    raw: bytes


def read_text(path: str | os.PathLike[str]) -> FileText:
    """The text of a `.remap` file, its line endings as written: a regular file within the language's size limit
    (a pipe or a device is never read)."""
    p = Path(path)
    try:
        raw = read_source_bytes(p)
    except SourceError as e:
        raise FileProblem(str(e)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileProblem(f"{p} is not UTF-8 text (byte {e.start})") from None
    return FileText(p, text, raw.startswith(BOM), raw)


def replace_text(read: FileText, text: str) -> None:
    """Replace the file `read` came from by `text` (its byte order mark kept), unless it changed since.

    FileChanged when its bytes are no longer those read; FileProblem when it cannot be written. Either way
    the file is as it was.
    """
    path = read.path
    try:
        now = read_source_bytes(path)
    except SourceError as e:
        raise FileChanged(f"{path} cannot be read again before writing ({e})") from None
    if now != read.raw:
        raise FileChanged(f"{path} changed on disk since it was read")
    # a file nobody may write stays so, whoever runs this (root's access() says yes to anything)
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise FileProblem(f"{path} is read-only; nothing was written")
    write_new(path, text, bom=read.bom, replace=True)


def write_new(path: Path, text: str, *, bom: bool = False, replace: bool = False) -> None:
    """Write `text` to `path` through a temporary file in the same folder, so no reader sees half of it.

    Without `replace`, a file already at `path` is refused (the check and the rename are one `os.link`).
    """
    folder = path.parent
    try:
        # a new file gets the usual permissions, not mkstemp's owner-only ones
        mode = path.stat().st_mode & 0o777 if replace and path.exists() else NEW_FILE_MODE
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write((BOM if bom else b"") + text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, mode)
            if replace:
                os.replace(temp, path)
            else:
                os.link(temp, path)  # fails when `path` exists: a file made meanwhile is never overwritten
        finally:
            Path(temp).unlink(missing_ok=True)
    except FileExistsError:
        raise FileProblem(f"{path} exists already; choose another name") from None
    except OSError as e:
        raise FileProblem(f"cannot write {path}: {e.strerror or e}") from None
