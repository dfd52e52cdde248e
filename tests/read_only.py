"""Running a command on files it cannot write, as an unprivileged user meets them.

Permission bits do not stop root, so for root the files are bound read-only over themselves in a mount namespace
of the command's own (`unshare -m`): even root gets "read-only file system" there, and nothing outside the
command sees the change. Other users get the permission bits, put back afterwards. Where neither works (root
without the right to make a mount namespace), the tests that need it are skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Wrap = Callable[[list[str]], list[str]]

_BIND = 'for p in "$@"; do [ "$p" = -- ] && break; mount --bind -o ro "$p" "$p" || exit 97; done; ' \
        'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'


def _namespaces_work(probe: Path) -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe.mkdir(exist_ok=True)
    result = subprocess.run([unshare, "-m", "sh", "-c", _BIND, "sh", str(probe), "--", "true"],
                            capture_output=True, timeout=30)
    return result.returncode == 0


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[Wrap]:
    """Make `paths` (files or folders) read-only for the commands wrapped by the function this yields."""
    if os.geteuid() == 0:
        if not _namespaces_work(paths[0].parent / ".namespace-probe"):
            pytest.skip("running as root without the right to make a mount namespace: cannot make files read-only")
        unshare = shutil.which("unshare")
        assert unshare is not None
        yield lambda command: [unshare, "-m", "sh", "-c", _BIND, "sh", *map(str, paths), "--", *command]
        return
    modes = {p: p.stat().st_mode for p in paths}
    try:
        for p in paths:
            p.chmod(stat.S_IMODE(modes[p]) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        yield lambda command: command
    finally:
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode))
