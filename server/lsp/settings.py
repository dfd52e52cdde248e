"""The language server's settings: parsed once from initialization options or `workspace/configuration`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

# JSON name → field name. The flat names are the initialization options; the dotted ones are the VS Code
# settings (`remap.store.path`, ...), which `workspace/configuration` returns as nested objects.
_NAMES = {
    "storePath": "store_path",
    "autoTrain": "auto_train",
    "startWorker": "start_worker",
    "debounceMs": "debounce_ms",
    "hoverImages": "hover_images",
    "store.path": "store_path",
    "training.autoTrain": "auto_train",
    "training.startWorker": "start_worker",
    "diagnostics.debounceMs": "debounce_ms",
    "hover.images": "hover_images",
}


@dataclass(frozen=True)
class Settings:
    store_path: str | None = None  # None: `.remap/remap.db` beside each file
    auto_train: bool = True  # spawned children are queued for training
    start_worker: bool = False  # the server runs a `remap worker` while jobs are queued
    debounce_ms: int = 300  # quiet time after a change before diagnostics are recomputed
    hover_images: bool | None = None  # SNAC chips as images in hovers; None: unless the client is a terminal editor


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a JSON object (flat, or nested under "remap", or VS Code's nested sections such as
    {"training": {"autoTrain": false}}), and a message for each bad value.

    A bad value keeps the value in `base`; unknown keys are ignored, as clients send settings of their own.
    """
    settings = base or Settings()
    if raw is None:
        return settings, []
    if not isinstance(raw, Mapping):
        return settings, [f"remap settings must be an object; got {type(raw).__name__}"]
    if isinstance(raw.get("remap"), Mapping):
        raw = raw["remap"]
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for key, value in _flattened(raw):
        name = _NAMES.get(key, key if key in {f.name for f in fields(Settings)} else None)
        if name is None:
            continue
        problem = _check(name, value)
        if problem:
            problems.append(f"remap setting '{key}': {problem}; keeping {getattr(settings, name)!r}")
        else:
            changes[name] = (value or None) if name == "store_path" else value  # "" means the default
    return replace(settings, **changes), problems


def _flattened(raw: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """("training.autoTrain", False) for {"training": {"autoTrain": False}}; flat keys stay as they are."""
    out: list[tuple[str, Any]] = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in _NAMES:
            out += _flattened(value, f"{dotted}.")
        else:
            out.append((dotted, value))
    return out


def _check(name: str, value: Any) -> str | None:
    if name == "store_path":
        return None if value is None or isinstance(value, str) else f"expected a path, got {value!r}"
    if name == "debounce_ms":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000
        return None if ok else f"expected milliseconds from 0 to 10000, got {value!r}"
    if value is None and name == "hover_images":
        return None
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def confined_store(configured: str, folders: Sequence[Path]) -> tuple[Path | None, str]:
    """The store file a `storePath` names (a relative one against the first workspace folder), or None and why it
    is refused: a client may put the store only inside a workspace folder, so that it cannot make the server
    create files, or start a worker on a queue, anywhere else. Symbolic links are followed before the check."""
    path = Path(configured).expanduser()
    if not path.is_absolute():
        if not folders:
            return None, f"'{configured}' is relative and the editor opened no workspace folder to read it against"
        path = folders[0] / path
    resolved = path.resolve()
    roots = [folder.resolve() for folder in folders]
    if any(resolved != root and resolved.is_relative_to(root) for root in roots):
        return resolved, ""
    where = ", ".join(str(root) for root in roots) if roots else "none is open"
    return None, f"{resolved} is outside the workspace folders ({where}); the store must lie inside one of them"
