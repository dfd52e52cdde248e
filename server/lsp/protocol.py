"""The protocol side of the server, where pygls needs two corrections.

Every request gets an answer. pygls reads each incoming message into lsprotocol types as it is decoded;
when a request's params do not fit (a missing position, a string for a number) it only logs the failure,
and the client waits for a response that never comes. Here such a request is answered with an InvalidParams
error naming what was wrong, and a client response that cannot be read fails the request the server was
waiting on instead of leaving it pending for ever.

Documents are kept in lines as the client counts them. The protocol ends lines only at \\n, \\r\\n and \\r;
pygls splits with str.splitlines, which also breaks at form feeds, U+2028 and other separators, so an
incremental change to a file holding one would land on the wrong line and the server's copy would drift
from the editor's.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import Any

from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.workspace import TextDocument, Workspace

# What structure_message gives for a message already dealt with; handle_message drops it.
_ANSWERED = object()


class RemapProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "jsonrpc" not in data or "id" not in data:
                raise  # a notification: nobody waits for it
            message = f"{error.message}: {'; '.join(_problems(error))}" if _problems(error) else error.message
            if "method" in data:
                self._send_response(data["id"], error=types.ResponseError(error.code, message))
            else:
                future = self._request_futures.pop(data["id"], None)
                self._result_types.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_exception(JsonRpcException(message=f"the client's response cannot be read: {message}",
                                                          code=error.code))
            return _ANSWERED

    def handle_message(self, message: Any) -> None:
        if message is not _ANSWERED:
            super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        # no document is open before initialize returns: the workspace can still be exchanged
        workspace = self.workspace
        self._workspace = ProtocolLinesWorkspace(workspace.root_uri, workspace._sync_kind,
                                                 list(workspace.folders.values()), workspace.position_encoding)
        return result


def _problems(error: JsonRpcException) -> list[str]:
    """What did not fit, in cattrs' words (`expected int @ $.params.position.line`)."""
    cause = error.__cause__
    if cause is None:
        return []
    try:
        return transform_error(cause, path="$")
    except Exception:  # not a cattrs error: its own words
        return [str(cause)]


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class ProtocolLinesDocument(TextDocument):
    @property
    def lines(self) -> Sequence[str]:
        """The lines with their ends, as str.splitlines(True) gives them but broken only where the protocol
        breaks lines."""
        return tuple(_LINE.findall(self.source))


class ProtocolLinesWorkspace(Workspace):
    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return ProtocolLinesDocument(doc_uri, source=source, version=version, language_id=language_id,
                                     sync_kind=self._sync_kind, position_codec=self.position_codec)
