"""A client that writes raw bytes to `remap lsp` (over stdio or a TCP socket), for tests that send what a real
client's typing would refuse to: broken frames, huge lengths, a second connection."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVER = [sys.executable, "-m", "remapdsl", "lsp"]
TEXT = "data digits\n\nmodel m:\n    flatten\n    dense 10\n"


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def initialize(i: int = 0, root: Path | None = None, options: dict[str, Any] | None = None) -> bytes:
    params: dict[str, Any] = {"capabilities": {}, "initializationOptions": options or {"autoTrain": False}}
    if root is not None:
        params["rootUri"] = root.as_uri()
        params["workspaceFolders"] = [{"uri": root.as_uri(), "name": root.name}]
    return frame({"jsonrpc": "2.0", "id": i, "method": "initialize", "params": params}) + \
        frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})


def did_open(uri: str, text: str = TEXT) -> bytes:
    return frame({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                  "params": {"textDocument": {"uri": uri, "languageId": "remap", "version": 1, "text": text}}})


def symbols(i: int, uri: str) -> bytes:
    return frame({"jsonrpc": "2.0", "id": i, "method": "textDocument/documentSymbol",
                  "params": {"textDocument": {"uri": uri}}})


class Messages:
    """The messages the server sends, read on a thread from `read` (a blocking read of some bytes)."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self.read = read
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        buffer = b""
        try:
            while chunk := self.read():
                buffer += chunk
                while (m := re.match(rb"Content-Length: (\d+)\r\n(?:[^\r\n]+\r\n)*\r\n", buffer)) and \
                        len(buffer) >= m.end() + int(m[1]):
                    body = buffer[m.end():m.end() + int(m[1])]
                    buffer = buffer[m.end() + int(m[1]):]
                    self.queue.put(json.loads(body))
        except OSError:
            pass
        self.queue.put(None)

    def answer(self, i: int, timeout: float = 20.0) -> dict[str, Any]:
        """The response to request `i`."""
        return self.wait(lambda m: m.get("id") == i and "method" not in m, timeout)

    def wait(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        for m in self.seen:
            if wanted(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("the server did not send the message waited for") from None
            if m is None:
                raise EOFError("the server closed the stream")
            self.seen.append(m)
            if wanted(m):
                return m

    def logged(self, words: str) -> bool:
        return any(m.get("method") == "window/logMessage" and words in m["params"]["message"] for m in self.seen)


class StdioServer:
    def __init__(self) -> None:
        self.process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdout is not None
        stdout = self.process.stdout
        self.messages = Messages(lambda: stdout.read1(1 << 16))

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close(self) -> str:
        """Stop the server; what it wrote on stderr."""
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        return err.decode("utf-8", "replace")


class TcpServer:
    """`remap lsp --tcp ARGS...`, started and waited for until it says where it listens."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen([*SERVER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, cwd=cwd)
        assert self.process.stderr is not None
        self.lines: list[str] = []
        while True:
            line = self.process.stderr.readline()
            if not line:
                raise AssertionError(f"the server ended before listening: {''.join(self.lines)}")
            self.lines.append(line)
            found = re.search(r"listening on (\[[^\]]+\]|[^:\s,]+):(\d+)", line)
            if found:
                self.host, self.port = found[1].strip("[]"), int(found[2])
                break
        self._stderr = threading.Thread(target=self._drain, daemon=True)
        self._stderr.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def connect(self) -> Client:
        return Client(socket.create_connection((self.host, self.port), timeout=20))

    def stderr_says(self, words: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(words in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages = Messages(lambda: sock.recv(1 << 16))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()
