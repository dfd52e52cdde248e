"""What an editor asks of a document, in plain data and free of any protocol: completion, navigation
(definition, references, rename) and hovers, with the facts the store holds about each model."""

from __future__ import annotations

from remapdsl.editor.completion import complete, token_start
from remapdsl.editor.facts import StoreFacts, store_facts
from remapdsl.editor.hover import HEADER_HELP, layer_hover, model_hover, plain_text, planned_batch, planned_epochs
from remapdsl.editor.navigation import RenameError, definition, name_at, references, rename

__all__ = [
    "HEADER_HELP",
    "RenameError",
    "StoreFacts",
    "complete",
    "definition",
    "layer_hover",
    "model_hover",
    "name_at",
    "plain_text",
    "planned_batch",
    "planned_epochs",
    "references",
    "rename",
    "store_facts",
    "token_start",
]
