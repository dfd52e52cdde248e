"""Between remapdsl's positions (line, code point) and the protocol's (line, client code units)."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from remapdsl.language.diagnostics import Diagnostic
from remapdsl.language.model import Position, Range

SOURCE = "remap"


def to_lsp_range(codec: PositionCodec, lines: Sequence[str], r: Range) -> types.Range:
    return codec.range_to_client_units(lines, types.Range(types.Position(*r.start), types.Position(*r.end)))


def from_lsp_position(codec: PositionCodec, lines: Sequence[str], p: types.Position) -> Position:
    """A client position as remapdsl's, clamped into the document (clients may send positions past its end).
    A character past the end of its line means the end of the line, as the protocol says (pygls would take
    the last character instead)."""
    line = min(max(p.line, 0), len(lines))
    if line == len(lines):
        return Position(line, 0)
    text = lines[line]
    if p.character >= codec.client_num_units(text):
        return Position(line, len(text))
    inner = codec.position_from_client_units(lines, types.Position(line, max(p.character, 0)))
    return Position(line, min(inner.character, len(text)))


def to_lsp_diagnostic(codec: PositionCodec, lines: Sequence[str], d: Diagnostic) -> types.Diagnostic:
    return types.Diagnostic(range=to_lsp_range(codec, lines, d.range), message=d.message,
                            severity=types.DiagnosticSeverity(int(d.severity)), code=d.code or None, source=SOURCE)
