"""Diagnostics: published on open and save, and after a quiet spell on change; measured budgets from the store."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types

from remapdsl.onnx.budgets import measured_budget_diagnostics

from ..convert import to_lsp_diagnostic

if TYPE_CHECKING:
    from ..server import RemapServer


class Publisher:
    """Computes and publishes one document's diagnostics; a newer request replaces a pending one."""

    def __init__(self, ls: RemapServer) -> None:
        self.ls = ls
        self.pending: dict[str, asyncio.Task[None]] = {}

    def schedule(self, uri: str, delay: float = 0.0) -> None:
        if (task := self.pending.pop(uri, None)) is not None:
            task.cancel()
        self.pending[uri] = asyncio.get_event_loop().create_task(self._publish(uri, delay))

    async def _publish(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            state = await self.ls.run_blocking(self.ls.document_state, uri)
            if state is None:
                return
            found = list(state.analysis.diagnostics)
            try:
                found += await self.ls.run_blocking(
                    lambda: measured_budget_diagnostics(self.ls.store(uri), state.analysis.document))
            except Exception as e:  # a store being migrated or locked costs the measured budgets, not the rest
                self.ls.log(f"measured budgets of {uri} not checked: {e}", types.MessageType.Warning)
            codec, lines = self.ls.workspace.position_codec, state.lines
            self.ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=uri, version=state.version, diagnostics=[to_lsp_diagnostic(codec, lines, d) for d in found]))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.ls.log(f"diagnostics of {uri} failed: {e!r}", types.MessageType.Error)
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    def clear(self, uri: str) -> None:
        if (task := self.pending.pop(uri, None)) is not None:
            task.cancel()
        self.ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def register(server: RemapServer) -> None:
    publisher = Publisher(server)
    server.refreshers.append(publisher.schedule)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RemapServer, params: types.DidOpenTextDocumentParams) -> None:
        publisher.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RemapServer, params: types.DidChangeTextDocumentParams) -> None:
        publisher.schedule(params.text_document.uri, ls.settings.debounce_ms / 1000)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RemapServer, params: types.DidSaveTextDocumentParams) -> None:
        publisher.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RemapServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.documents.forget(params.text_document.uri)
        publisher.clear(params.text_document.uri)
