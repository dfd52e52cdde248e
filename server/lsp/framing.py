"""Messages read from the client's byte stream (stdio or a TCP connection): bounded, and found again after a
broken frame.

pygls's reader trusts every header. A Content-Length that is not a plain number (`abc`, `-5`) is never matched,
so the body is read as header lines and the next header is glued onto it: the server hears nothing again. A
wrong length leaves the stream misaligned for good, and a huge one is read whole (a MemoryError over stdio, an
unbounded buffer over TCP). Here every frame is checked before it is read:

- its header block ends within `MAX_HEADER_BYTES` and names a Content-Length of digits;
- the length is at most `MAX_FRAME_BYTES` (64 MiB): a larger message is skipped, not buffered;
- its body holds no other frame's header. `Content-Length: N` followed by CR LF cannot occur inside JSON (a raw
  CR LF may not stand in a JSON string, and those words may not stand outside one), so when one turns up
  before the declared length is reached the length was wrong, and the next message starts there.

What breaks these rules is dropped and said in the log (`log`, which the client hears as window/logMessage once
it is initialized, and stderr), and reading goes on at the next `Content-Length:` header: later requests are
answered. Memory stays bounded by the frame limit whatever the stream declares.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol

MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 8 * 1024
CHUNK_BYTES = 64 * 1024

# A header that can start a frame, spelt as the specification and every client spell it. The digits and the CR LF
# make it impossible inside a JSON body (see above).
_HEADER = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r\n")
# Enough of a stream's tail to hold the start of a header cut by a chunk boundary.
_HEADER_TAIL = 64

log = logging.getLogger(__name__)

# Up to n bytes of the stream; b"" at its end.
Read = Callable[[int], Awaitable[bytes]]
ErrorHandler = Callable[[Exception, type[JsonRpcException]], Any]


class FrameReader:
    """The bodies of the well-framed messages of a stream, one at a time (`next`)."""

    def __init__(self, read: Read, *, limit: int = MAX_FRAME_BYTES) -> None:
        self._read = read
        self.limit = limit
        self._buffer = bytearray()
        self._ended = False

    async def next(self) -> bytes | None:
        """The body of the next message; None when the stream has ended."""
        buffer = self._buffer
        while True:
            # line ends between frames are harmless
            blank = len(buffer) - len(buffer.lstrip(b"\r\n"))
            del buffer[:blank]
            if not buffer:
                if not await self._fill():
                    return None
                continue
            end = buffer.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    await self._skip(f"a message header longer than {MAX_HEADER_BYTES} bytes")
                elif not await self._fill():
                    log.warning("the stream ended inside a message header (%d bytes); dropped them", len(buffer))
                    return None
                continue
            length, problem = content_length(bytes(buffer[:end]), self.limit)
            if length is None:
                await self._skip(problem)
                continue
            start = end + 4
            body = await self._body(start, length)
            if body is not None:
                return body

    async def _body(self, start: int, length: int) -> bytes | None:
        """The body of `length` bytes at `start`, consumed with its header; None when the frame turned out broken
        (dropped, and said) or the stream ended."""
        buffer = self._buffer
        scanned = start
        while True:
            stop = min(len(buffer), start + length)
            cut = _HEADER.search(buffer, max(start, scanned - _HEADER_TAIL), stop)
            if cut is not None:
                log.warning("a message declared %d bytes, but the next message began after %d; dropped it", length,
                            cut.start() - start)
                del buffer[:cut.start()]
                return None
            if len(buffer) >= start + length:
                body = bytes(buffer[start:start + length])
                del buffer[:start + length]
                return body
            scanned = len(buffer)
            if not await self._fill():
                log.warning("the stream ended inside a message (%d of its %d bytes); dropped it",
                            len(buffer) - start, length)
                del buffer[:]
                return None

    async def _skip(self, problem: str) -> None:
        """Drop what is broken at the start of the buffer, up to the next header that can start a frame (reading
        on, in bounded memory, until one comes or the stream ends), and say so."""
        buffer = self._buffer
        skipped = 0
        while True:
            found = _HEADER.search(buffer, 1)
            if found is not None:
                skipped += found.start()
                del buffer[:found.start()]
                break
            keep = min(len(buffer) - 1, _HEADER_TAIL)
            skipped += len(buffer) - keep
            del buffer[:len(buffer) - keep]
            if not await self._fill():
                skipped += len(buffer)
                del buffer[:]
                break
        log.warning("%s; skipped %d bytes to the next Content-Length header", problem, skipped)

    async def _fill(self) -> bool:
        """Read more of the stream into the buffer; False at its end."""
        if self._ended:
            return False
        chunk = await self._read(CHUNK_BYTES)
        if not chunk:
            self._ended = True
            return False
        self._buffer += chunk
        return True


def content_length(block: bytes, limit: int = MAX_FRAME_BYTES) -> tuple[int, str] | tuple[None, str]:
    """The Content-Length a header block (its lines, without the blank line ending it) declares, or None and what
    is wrong with it."""
    length: int | None = None
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None, f"an unreadable message header line {_shown(line)}"
        if name.lower() != b"content-length":
            continue  # Content-Type, or a header of the client's own
        text = value.strip()
        if not text.isdigit():
            return None, f"a message header with Content-Length {_shown(text)}, not a number of bytes"
        if len(text) > 18 or int(text) > limit:  # 18 digits: int() stays cheap whatever the header says
            return None, (f"a message of {int(text) if len(text) <= 30 else 'more than 10^30'} bytes, over the "
                          f"limit of {limit // (1024 * 1024)} MiB")
        length = int(text)
    if length is None:
        return None, "a message header without Content-Length"
    return length, ""


def _shown(data: bytes) -> str:
    text = data[:40].decode("latin-1")
    return repr(text + ("..." if len(data) > 40 else ""))


async def serve_messages(frames: FrameReader, protocol: JsonRPCProtocol, stop: threading.Event | None = None,
                         error_handler: ErrorHandler | None = None) -> None:
    """Hand each message of `frames` to the pygls protocol until the stream ends (pygls's `run_async`, over
    checked frames). A body that is not JSON is dropped and said; the `exit` notification's SystemExit passes
    through to the caller."""
    while stop is None or not stop.is_set():
        body = await frames.next()
        if body is None:
            return
        try:
            message = json.loads(body, object_hook=protocol.structure_message)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            log.warning("a message of %d bytes is not JSON (%s); dropped it", len(body), e)
            continue
        except Exception as e:  # what pygls's own loop does with a message it cannot structure
            log.warning("a message cannot be read: %s", e)
            if error_handler is not None:
                error_handler(e, JsonRpcException)
            continue
        try:
            protocol.handle_message(message)
        except Exception as e:
            log.exception("unable to handle a message")
            if error_handler is not None:
                error_handler(e, JsonRpcException)
