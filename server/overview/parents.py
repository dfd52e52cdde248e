"""Which model of a workspace file a stored model is: the Generate tab derives children from a model of a
file, and the overview selects models by architecture hash.

The file is the one `remap serve` was given, else the file that last named the model in the store. The
model is the file's first one with the same architecture, preferring the name the store knows it by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remapdsl_server.overview.state import OverviewState

from remapdsl.jobs.files import FileProblem, read_text
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.parser import parse


@dataclass(frozen=True)
class FileModel:
    path: Path
    name: str  # the model's name in the file
    text: str  # the file's text, as read


def file_of(state: OverviewState, model_hash: str | None) -> Path | None:
    """The workspace file for `model_hash`: the served file, else the file that named the model."""
    if state.config.file is not None:
        return state.config.file
    if model_hash is None or model_hash not in state.population.index:
        return None
    source = str(state.population.source[state.population.index[model_hash]])
    return Path(source) if source.endswith(".remap") else None


def find(state: OverviewState, model_hash: str) -> FileModel | str:
    """The model of the workspace file with this architecture, or why there is none (in words)."""
    path = file_of(state, model_hash)
    if path is None:
        return "no .remap file is known for this model: serve a file (remap serve FILE) to generate from it"
    try:
        source = read_text(path)
    except FileProblem as e:
        return str(e)
    models = parse(source.text).document.models
    known = ""
    if model_hash in state.population.index:
        known = str(state.population.name[state.population.index[model_hash]])
    same = [m.name for m in models if architecture_hash(m) == model_hash]
    if not same:
        what = f"'{known}'" if known else model_hash[:12]
        return f"{what} is not a model of {path.name}; append it to the file first (DSL tab: Append to file)"
    return FileModel(path, known if known in same else same[0], source.text)
