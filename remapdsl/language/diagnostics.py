"""Diagnostics: what is wrong, where, and — when it is obvious — how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from remapdsl.language.model import Range


class Severity(IntEnum):
    # Values match the Language Server Protocol's DiagnosticSeverity.
    ERROR = 1
    WARNING = 2
    INFO = 3
    HINT = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class TextEdit:
    range: Range
    new_text: str


@dataclass(frozen=True)
class Fix:
    """A quick fix: a title for the user and the text edits that carry it out."""

    title: str
    edits: tuple[TextEdit, ...]


@dataclass(frozen=True)
class Diagnostic:
    range: Range
    message: str
    severity: Severity = Severity.ERROR
    code: str = ""
    model: str | None = None
    fix: Fix | None = None

    def format(self, path: str) -> str:
        """Compiler-style `path:line:col: error: message`."""
        return f"{path}:{self.range}: {self.severity.label}: {self.message}"


def errors(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == Severity.ERROR]
