"""Quick fixes: the fixes the language core attaches to its diagnostics, as code actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from remapdsl.language.diagnostics import TextEdit
from remapdsl.language.model import Position, Range

from .convert import SOURCE, to_lsp_range

if TYPE_CHECKING:
    from .documents import DocumentState


def quick_fixes(state: DocumentState, range: types.Range, diagnostics: Sequence[types.Diagnostic],
                codec: PositionCodec | None = None) -> list[types.CodeAction]:
    """A quick fix for each diagnostic in the request that the analysis can fix (matched by range,
    code and message: the client sends back what it was given)."""
    codec = codec or PositionCodec()
    sent = {(d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, str(d.code or ""),
             d.message): d for d in diagnostics if d.source in (SOURCE, None)}
    out: list[types.CodeAction] = []
    for found in state.analysis.diagnostics:
        if found.fix is None:
            continue
        r = to_lsp_range(codec, state.lines, found.range)
        key = (r.start.line, r.start.character, r.end.line, r.end.character, found.code, found.message)
        if key not in sent:
            continue
        edits = [_text_edit(codec, state.lines, e) for e in found.fix.edits]
        out.append(types.CodeAction(title=found.fix.title, kind=types.CodeActionKind.QuickFix,
                                    diagnostics=[sent[key]], is_preferred=True,
                                    edit=types.WorkspaceEdit(changes={state.uri: edits})))
    return out


def _text_edit(codec: PositionCodec, lines: Sequence[str], edit: TextEdit) -> types.TextEdit:
    """The edit for the client. A line inserted after the last line of a file that does not end with a line
    break goes at the end of that line, after a line break of its own: the client has no line there."""
    if edit.range.start.line >= len(lines) and edit.range.start == edit.range.end:
        last = len(lines) - 1
        end = to_lsp_range(codec, lines, Range(Position(last, len(lines[last])), Position(last, len(lines[last]))))
        return types.TextEdit(end, "\n" + edit.new_text.removesuffix("\n"))
    return types.TextEdit(to_lsp_range(codec, lines, edit.range), edit.new_text)
