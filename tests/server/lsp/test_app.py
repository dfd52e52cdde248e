"""The factory: every command registered, and each server with state of its own."""

from __future__ import annotations

from remapdsl_server.lsp import commands
from remapdsl_server.lsp.app import build_server
from remapdsl_server.lsp.spawned import REMEMBERED, REMEMBERED_CHARACTERS, SpawnedChildren


def test_the_server_registers_every_command() -> None:
    server = build_server()
    registered = set(server.protocol.fm.commands)
    assert {commands.TRAIN, commands.ENQUEUE, commands.ABLATE, commands.VARY} <= registered


def test_two_servers_in_one_process_share_no_state() -> None:
    first, second = build_server(), build_server()
    for name in ("settings", "documents", "neighbours", "spawned", "workers", "watcher", "refreshers"):
        assert getattr(first, name) is not getattr(second, name), name
    assert first.spawned.new_token() == second.spawned.new_token()
    first.spawned.remember("t", "file:///a.remap", ["child"], "model child:\n")
    assert second.spawned.recall("t", "file:///a.remap") is None
    recalled = first.spawned.recall("t", "file:///a.remap")
    assert recalled is not None and recalled.names == ("child",)
    first.shutdown_pool()
    second.shutdown_pool()


def test_remembered_spawns_are_bounded_in_number_and_in_characters() -> None:
    spawned = SpawnedChildren()
    for i in range(REMEMBERED + 10):
        spawned.remember(f"t{i}", "file:///a.remap", ["c"], "x")
    assert spawned.recall("t0", "file:///a.remap") is None  # the oldest went first
    assert spawned.recall(f"t{REMEMBERED + 9}", "file:///a.remap") is not None
    assert spawned.recall(f"t{REMEMBERED + 9}", "file:///b.remap") is None  # another document's token
    big = "x" * (REMEMBERED_CHARACTERS // 2 + 1)
    spawned.remember("big1", "file:///a.remap", ["c"], big)
    spawned.remember("big2", "file:///a.remap", ["c"], big)
    assert spawned.recall("big1", "file:///a.remap") is None and spawned.recall("big2", "file:///a.remap")
