"""The server's own log records, sent to the client's log (window/logMessage) from whichever thread logs them.

Only the loggers of this project are forwarded: pygls logs every message it sends, and forwarding those would
send a message about each message without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

FORWARDED = ("remapdsl", "remapdsl_server")
_KINDS = ((logging.ERROR, types.MessageType.Error), (logging.WARNING, types.MessageType.Warning),
          (logging.INFO, types.MessageType.Info))


class ClientLog(logging.Handler):
    def __init__(self, server: LanguageServer, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.server = server
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sending = threading.local()  # a failure to send, if logged, must not be sent again
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start forwarding, on the loop the server talks to the client from."""
        self.loop = loop
        for name in FORWARDED:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)
            if logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)

    def detach(self) -> None:
        for name in FORWARDED:
            logging.getLogger(name).removeHandler(self)
        self.loop = None

    def emit(self, record: logging.LogRecord) -> None:
        loop = self.loop
        if loop is None or loop.is_closed() or getattr(self._sending, "active", False):
            return
        kind = next((k for level, k in _KINDS if record.levelno >= level), types.MessageType.Log)
        try:
            params = types.LogMessageParams(kind, self.format(record))
        except Exception:
            self.handleError(record)
            return
        if _running_loop() is loop:
            self._send(params)
        else:
            loop.call_soon_threadsafe(self._send, params)

    def _send(self, params: types.LogMessageParams) -> None:
        self._sending.active = True
        try:
            with contextlib.suppress(Exception):  # the client went away: nowhere to report it
                self.server.window_log_message(params)
        finally:
            self._sending.active = False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
