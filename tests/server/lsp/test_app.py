"""The factory: every command registered, and each server with state of its own."""

from __future__ import annotations

from remapdsl_server.lsp import commands
from remapdsl_server.lsp.app import build_server


def test_the_server_registers_every_command() -> None:
    server = build_server()
    registered = set(server.protocol.fm.commands)
    assert {commands.TRAIN, commands.ENQUEUE, commands.ABLATE, commands.VARY} <= registered


def test_two_servers_in_one_process_share_no_state() -> None:
    first, second = build_server(), build_server()
    for name in ("settings", "documents", "neighbours", "spawned", "workers", "watcher", "refreshers"):
        assert getattr(first, name) is not getattr(second, name), name
    assert first.spawned.new_token() == second.spawned.new_token()
    first.spawned.remember("t", "file:///a.remap", ["child"])
    assert second.spawned.recall("t", "file:///a.remap") == ()
    assert first.spawned.recall("t", "file:///a.remap") == ("child",)
    first.shutdown_pool()
    second.shutdown_pool()
