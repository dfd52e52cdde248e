"""Frames read from a client's stream: a broken one is dropped and said, reading goes on at the next header, and
memory stays bounded whatever a header declares."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from remapdsl_server.lsp.framing import MAX_FRAME_BYTES, FrameReader, content_length


def frame(body: bytes | dict[str, object], length: object = None) -> bytes:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return b"Content-Length: %s\r\n\r\n" % str(len(data) if length is None else length).encode() + data


def request(i: int) -> bytes:
    return frame({"jsonrpc": "2.0", "id": i, "method": "textDocument/hover"})


class Stream:
    """A byte stream handed out in chunks of `chunk` bytes, counting what was read."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self.data, self.chunk, self.at = data, chunk, 0

    async def read(self, n: int) -> bytes:
        piece = self.data[self.at:self.at + min(n, self.chunk)]
        self.at += len(piece)
        return piece


def bodies(data: bytes, chunk: int = 7) -> list[bytes]:
    async def all_of() -> list[bytes]:
        reader = FrameReader(Stream(data, chunk).read)
        out = []
        while (body := await reader.next()) is not None:
            out.append(body)
        return out

    return asyncio.run(all_of())


def ids(found: list[bytes]) -> list[int]:
    return [json.loads(b)["id"] for b in found]


def test_well_formed_frames_come_through_whatever_the_chunks() -> None:
    data = b"".join(request(i) for i in range(5))
    data += b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + request(5)
    for chunk in (1, 3, 64, 1 << 16):
        assert ids(bodies(data, chunk)) == [0, 1, 2, 3, 4, 5]


BROKEN = {
    "not a number": frame({"jsonrpc": "2.0", "id": 99, "method": "shutdown"}, "abc"),
    "negative": frame({"jsonrpc": "2.0", "id": 99, "method": "shutdown"}, -5),
    "too short": frame({"jsonrpc": "2.0", "id": 99, "method": "shutdown"}, 10),
    "too long": frame({"jsonrpc": "2.0", "id": 99, "method": "shutdown"}, 400),
    "huge": frame(b"{}", 99999999999999),
    "no length": b"Content-Type: text/plain\r\n\r\n{}",
    "garbage": b"\x00\xffhello\r\n\r\n",
    "not JSON": frame(b"{nope"),
}


@pytest.mark.parametrize("broken", list(BROKEN), ids=list(BROKEN))
def test_after_a_broken_frame_the_next_ten_are_read(broken: str, caplog: pytest.LogCaptureFixture) -> None:
    later = b"".join(request(i) for i in range(1, 11))
    with caplog.at_level(logging.WARNING, logger="remapdsl_server.lsp.framing"):
        found = bodies(BROKEN[broken] + later)
    readable = [b for b in found if b.startswith(b"{") and b.endswith(b"}") and b != b"{nope"]
    assert ids(readable)[-10:] == list(range(1, 11))
    if broken == "not JSON":
        assert found[0] == b"{nope"  # framed well: the message loop says it is not JSON
    else:
        assert 99 not in ids(readable)
        assert caplog.records, "the broken frame is said in the log"


def test_a_frame_too_long_for_what_follows_is_given_up_when_the_next_header_arrives() -> None:
    """A client sends one request and waits for its answer: the server must not wait for the bytes a wrong length
    promised before reading the next request."""
    async def scenario() -> bytes | None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for piece in (frame(b'{"id": 1}', 1000), request(2)):
            queue.put_nowait(piece)
        reader = FrameReader(lambda n: queue.get())
        return await asyncio.wait_for(reader.next(), 2)

    body = asyncio.run(scenario())
    assert body is not None and json.loads(body)["id"] == 2


def test_a_declared_size_over_the_limit_is_skipped_in_bounded_memory() -> None:
    junk = b"x" * (3 * (1 << 20))
    stream = Stream(frame(b"{}", 99999999999999)[:-2] + junk + request(7), chunk=1 << 16)

    async def first() -> tuple[bytes | None, int]:
        reader = FrameReader(stream.read, limit=1 << 20)
        body = await reader.next()
        return body, len(reader._buffer)

    body, left = asyncio.run(first())
    assert body is not None and json.loads(body)["id"] == 7
    assert stream.at == len(stream.data) and left == 0


def test_content_length_names_what_is_wrong() -> None:
    assert content_length(b"Content-Length: 12") == (12, "")
    assert content_length(b"content-length:12\r\nContent-Type: x") == (12, "")
    assert "'abc', not a number" in content_length(b"Content-Length: abc")[1]
    assert "'-5', not a number" in content_length(b"Content-Length: -5")[1]
    assert "over the limit of 64 MiB" in content_length(b"Content-Length: 99999999999999")[1]
    assert "over the limit" in content_length(b"Content-Length: " + b"9" * 5000)[1]
    assert content_length(b"Content-Length: %d" % MAX_FRAME_BYTES)[0] == MAX_FRAME_BYTES
    assert "without Content-Length" in content_length(b"Content-Type: x")[1]
    assert "unreadable" in content_length(b"garbage")[1]


@pytest.mark.slow
def test_over_stdio_every_broken_frame_is_said_and_the_next_ten_requests_are_answered(tmp_path) -> None:
    """One server over stdio meets each broken frame in turn; after each, ten requests are answered."""
    from tests.server.lsp.raw import StdioServer, did_open, initialize, symbols

    uri = (tmp_path / "m.remap").as_uri()
    server = StdioServer()
    try:
        server.send(initialize() + did_open(uri))
        server.messages.answer(0)
        next_id = 1
        for name, broken in BROKEN.items():
            server.send(broken)
            for _ in range(10):
                server.send(symbols(next_id, uri))
                answer = server.messages.answer(next_id)
                assert "m" in [s["name"] for s in answer["result"]], name
                next_id += 1
        assert server.process.poll() is None
        assert server.messages.logged("Content-Length 'abc', not a number of bytes")
        assert server.messages.logged("a message of 99999999999999 bytes, over the limit of 64 MiB")
        assert server.messages.logged("a message declared 400 bytes, but the next message began after")
    finally:
        err = server.close()
    assert "Content-Length '-5', not a number of bytes; skipped" in err
    assert "Traceback" not in err
