"""A client cannot choose where a store is created outside the workspace, nor make the server start a worker on a
store elsewhere: a `storePath` outside the workspace folders is refused with a message, and nothing is made there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from remapdsl_server.lsp.settings import confined_store

from remapdsl.store.db import Store
from tests.server.lsp.session import Session, own_session

TEXT = "data digits\ntrain epochs=1\n\nmodel m:\n    flatten\n    dense 10\n"


def test_a_store_path_is_confined_to_the_workspace_folders(tmp_path: Path) -> None:
    ws, other = tmp_path / "ws", tmp_path / "other"
    ws.mkdir()
    other.mkdir()
    (ws / "link").symlink_to(other)
    assert confined_store("stores/s.db", [ws]) == ((ws / "stores" / "s.db").resolve(), "")
    assert confined_store(str(ws / "a" / "b.db"), [other, ws])[0] == (ws / "a" / "b.db").resolve()
    for outside in (str(other / "s.db"), "../other/s.db", str(ws / "link" / "s.db"), str(ws), "~/s.db"):
        path, why = confined_store(outside, [ws])
        assert path is None and "outside the workspace folders" in why, outside
    assert confined_store("s.db", [])[0] is None
    assert "no workspace folder" in confined_store("s.db", [])[1]


def shown(session: Session, words: str) -> bool:
    return any(words in m.message for m in session.client.messages)


def queue_jobs(file: Path, store: Path) -> None:
    """Queue the file's models as `remap train` does, without training them."""
    from remapdsl.cli.workspace import read_models
    from remapdsl.jobs.enqueue import queue_document

    with Store(store) as opened:
        queue_document(opened, read_models(file, None), epochs=None, device="cpu", force=False)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_store_path_outside_the_workspace_is_refused_and_nothing_is_created_there(tmp_path: Path) -> None:
    ws, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    ws.mkdir()
    (ws / "escape").symlink_to(tmp_path)
    outside = elsewhere / "stores" / "remap.db"
    init = {"storePath": str(outside), "autoTrain": False, "startWorker": False, "debounceMs": 20}
    async with own_session(ws, init=init) as session:
        assert shown(session, f"remap setting 'storePath': {outside} is outside the workspace folders")
        uri = session.editor.open(ws / "m.remap", TEXT)
        queued = await session.editor.execute(types.Command("train", "remap.train", arguments=[uri, ["m"]]))
        assert queued == [{"model": "m", "job": 1, "outcome": "queued"}]
        # the default store beside the file took the job
        with Store.open_read_only(ws / ".remap" / "remap.db") as store:
            assert [r.model_name for r in store.runs()] == ["m"]

        # a change of settings is refused alike, through a link out of the workspace too
        for path in (str(elsewhere / "again.db"), str(ws / "escape" / "elsewhere" / "linked.db")):
            session.client.set_configuration({"remap": {"storePath": path}})
            session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
            await session.editor.wait_for(lambda: shown(session, "elsewhere") and
                                          sum("is outside the workspace folders" in m.message
                                              for m in session.client.messages) >= 2)
    assert not elsewhere.exists()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_no_store_is_created_or_trained_outside_the_workspace_folders(tmp_path: Path) -> None:
    """A document the client opens outside its workspace folders has its store beside it: the server reads it
    but neither creates it, queues into it, nor starts a worker on the jobs waiting there."""
    ws, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    ws.mkdir()
    elsewhere.mkdir()
    outside_file = elsewhere / "m.remap"
    init = {"autoTrain": False, "startWorker": True, "debounceMs": 20}
    async with own_session(ws, init=init) as session:
        uri = session.editor.open(outside_file, TEXT)
        with pytest.raises(Exception, match="outside the workspace folders"):
            await session.editor.execute(types.Command("train", "remap.train", arguments=[uri, ["m"]]))
        assert not (elsewhere / ".remap").exists()

        # jobs already waiting in a store there get no worker from the server
        store = elsewhere / ".remap" / "remap.db"
        await asyncio.to_thread(queue_jobs, outside_file, store)
        await session.editor.wait_for(
            lambda: any("no training worker started" in m.message for m in session.client.log_messages), 15)
        with Store.open_read_only(store) as opened:
            assert [r.status for r in opened.runs()] == ["queued"]
