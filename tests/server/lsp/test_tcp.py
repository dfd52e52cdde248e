"""`remap lsp --tcp`: loopback unless allowed, one client at a time with a server of its own, serving on after a
client leaves, and bounded frames; clear one-line errors for addresses it cannot use."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from remapdsl_server.lsp.tcp import is_loopback, resolve

from remapdsl.cli import main
from tests.server.lsp.raw import Client, TcpServer, did_open, frame, initialize, symbols


@pytest.mark.parametrize(("text", "message"), [
    ("localhost", "the port must be a number from 0 to 65535; found 'localhost'"),
    ("127.0.0.1:99999", "the port must be a number from 0 to 65535; found '99999'"),
    ("127.0.0.1:-1", "found '-1'"),
    ("127.0.0.1:", "found ''"),
    (":2087", "the host is empty"),
    ("::1:2087", "an IPv6 host goes in brackets, as in [::1]:2087"),
    ("no-such-host.invalid:2087", "cannot resolve the host 'no-such-host.invalid'"),
    ("0.0.0.0:2087", "pass --allow-remote to allow it"),
    ("[::]:2087", "pass --allow-remote to allow it"),
])
def test_addresses_it_will_not_use_are_one_line_usage_errors(text: str, message: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lsp", "--tcp", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("remap lsp: error: ") and message in err, err


def test_allow_remote_without_tcp_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lsp", "--allow-remote"]) == 2
    assert "--allow-remote applies to --tcp only" in capsys.readouterr().err


def test_loopback_is_told_apart() -> None:
    assert is_loopback(resolve("127.0.0.1", 1)) and is_loopback(resolve("::1", 1))
    assert is_loopback([(socket.AF_INET6, ("::ffff:127.0.0.1", 1, 0, 0))])
    assert is_loopback(resolve("localhost", 1))
    assert not is_loopback(resolve("0.0.0.0", 1)) and not is_loopback(resolve("::", 1))


def test_a_port_in_use_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["lsp", "--tcp", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"remap lsp: error: cannot listen on 127.0.0.1:{port}: address already in use\n"


def answered_symbols(client: Client, i: int, uri: str) -> list[str]:
    client.send(symbols(i, uri))
    return [s["name"] for s in client.messages.answer(i)["result"]]


@pytest.mark.slow
def test_port_alone_is_loopback_one_client_at_a_time_and_a_new_client_starts_afresh(tmp_path: Path) -> None:
    server = TcpServer("--tcp", "0")
    try:
        assert server.host == "127.0.0.1"
        first = server.connect()
        secret = (tmp_path / "secret.remap").as_uri()
        first.send(initialize(root=tmp_path) + did_open(secret))
        first.messages.answer(0)
        assert "m" in answered_symbols(first, 1, secret)

        # a second client is closed at once, hears nothing of the first's session, and cannot speak in its name
        second = server.connect()
        second.send(initialize(7) + symbols(8, secret))
        with pytest.raises(EOFError):
            second.messages.answer(8, timeout=10)
        first.send(did_open(secret.replace("secret", "more")))
        assert "m" in answered_symbols(first, 2, secret)
        assert second.messages.seen == []
        assert server.stderr_says("refused a connection from 127.0.0.1:")
        second.close()

        # the first leaves without a word; the server serves on, and the next client has none of its documents
        first.close()
        assert server.stderr_says("left; waiting for the next")
        third = server.connect()
        third.send(initialize(root=tmp_path) + symbols(1, secret))
        third.messages.answer(0)
        assert answered_symbols(third, 1, secret) == []
        third.send(did_open(secret, "model mine:\n    flatten\n    dense 10\n"))
        assert "mine" in answered_symbols(third, 2, secret)

        # `exit` ends the session, not the server
        third.send(frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}) +
                   frame({"jsonrpc": "2.0", "method": "exit"}))
        third.messages.answer(3)
        with pytest.raises(EOFError):
            third.messages.wait(lambda m: False, timeout=10)
        fourth = server.connect()
        fourth.send(initialize() + did_open(secret) + symbols(1, secret))
        assert "m" in [s["name"] for s in fourth.messages.answer(1)["result"]]
        fourth.close()
        assert server.process.poll() is None
    finally:
        server.close()
    assert not any("Traceback" in line for line in server.lines), "".join(server.lines)


def memory_kib(pid: int, field: str = "VmHWM") -> int:
    """The process's peak (VmHWM) or current (VmRSS) resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def settled(pid: int) -> int:
    """The peak memory once the server is done warming up (it imports POT on a thread after initialize)."""
    last = memory_kib(pid, "VmRSS")
    for _ in range(60):
        time.sleep(0.5)
        now = memory_kib(pid, "VmRSS")
        if abs(now - last) < 1024:
            break
        last = now
    return memory_kib(pid)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc")
def test_an_oversized_content_length_over_tcp_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    server = TcpServer("--tcp", "0")
    try:
        client = server.connect()
        uri = (tmp_path / "m.remap").as_uri()
        client.send(initialize() + did_open(uri))
        client.messages.answer(0)
        client.messages.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        before = settled(server.process.pid)
        junk = b"x" * (1 << 20)
        client.send(b"Content-Length: 99999999999999\r\n\r\n")
        for _ in range(128):  # 128 MiB that a server trusting the header would buffer
            client.send(junk)
        assert "m" in answered_symbols(client, 1, uri)
        grown = memory_kib(server.process.pid) - before
        assert grown < 48 * 1024, f"the server's peak memory grew by {grown} KiB"
        assert client.messages.logged("a message of 99999999999999 bytes, over the limit of 64 MiB; skipped")
        client.close()
    finally:
        server.close()


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_in_brackets_and_a_remote_host_only_when_allowed_with_a_warning(tmp_path: Path) -> None:
    server = TcpServer("--tcp", "[::1]:0")
    try:
        assert server.host == "::1"
        client = server.connect()
        client.send(initialize())
        assert client.messages.answer(0)["result"]["serverInfo"]["name"] == "remap"
        client.close()
    finally:
        server.close()
    remote = TcpServer("--tcp", "0.0.0.0:0", "--allow-remote")
    try:
        warning = "".join(remote.lines)
        assert "warning: listening on 0.0.0.0:" in warning and "no authentication" in warning
        start = time.monotonic()
        client = Client(socket.create_connection(("127.0.0.1", remote.port), timeout=20))
        client.send(initialize())
        client.messages.answer(0)
        client.close()
        assert time.monotonic() - start < 20
    finally:
        remote.close()
