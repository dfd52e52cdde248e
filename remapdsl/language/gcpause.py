"""Pausing Python's cycle collector around work that allocates many small acyclic objects.

Parsing and analysing a big file builds a few hundred thousand tuples and frozen dataclasses, none of them
in a reference cycle. The collector would run many times meanwhile, each time walking every object alive
(the line caches hold tens of thousands), and take more time than the parse itself; it runs once, later,
instead.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cycle collection inside the block; nested blocks leave it to the outermost one."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
