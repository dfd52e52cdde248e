"""Parsed and analysed documents, computed once per version of each open file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from remapdsl.language.analysis import Analysis, analyze
from remapdsl.language.gcpause import collection_paused
from remapdsl.language.parser import ParseResult, parse, split_lines
from remapdsl.language.reanalysis import reanalyze
from remapdsl.language.sourcefile import too_large


@dataclass(frozen=True)
class DocumentState:
    uri: str
    version: int | None
    text: str
    parse: ParseResult
    analysis: Analysis
    lines: tuple[str, ...]


def analyze_document(uri: str, version: int | None, text: str, path: str | None,
                     previous: DocumentState | None = None) -> DocumentState:
    """Parse and analyse one version of a document; relative data paths resolve beside its file. With the
    `previous` version, models the edit did not touch keep their analysis."""
    base_dir = Path(path).parent if path else None
    oversized = too_large(text) is not None
    with collection_paused():
        result = parse(text)
        # a text over the size limit parses to its one diagnostic: nothing of the previous version to keep
        if previous is None or oversized:
            analysis = analyze(result.document, result.diagnostics, base_dir)
        else:
            analysis = reanalyze(previous.analysis, previous.text, text, result, base_dir)
    # lines as the parser and the protocol count them, so that ranges index them (over the size limit, only the
    # first line holds a range: splitting megabytes would cost seconds for nothing)
    lines = split_lines(text[:_first_break(text)] if oversized else text)
    return DocumentState(uri, version, text, result, analysis, tuple(lines))


def _first_break(text: str) -> int:
    found = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
    return min(found, default=len(text))


class DocumentCache:
    """The latest analysed version of each document, keyed by URI."""

    def __init__(self) -> None:
        self._states: dict[str, DocumentState] = {}

    def get(self, uri: str, version: int | None, text: str, path: str | None) -> DocumentState:
        state = self._states.get(uri)
        if state is None or state.version != version or state.text != text:
            state = analyze_document(uri, version, text, path, state)
            self._states[uri] = state
        return state

    def latest(self, uri: str) -> DocumentState | None:
        """The last version analysed, possibly older than the text: for cheap features such as completion."""
        return self._states.get(uri)

    def forget(self, uri: str) -> None:
        self._states.pop(uri, None)
