"""Code lenses and training progress over stdio: each model's params · accuracy · status with Train, Ablate
and Vary; a real CPU training by the worker the server starts, seen as work-done progress, queue progress
notifications and a code lens refresh; a client without lens refresh is not sent one."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from remapdsl.store.db import EpochRow, Store
from remapdsl.store.queue import Queue
from tests.server.lsp.editor import Editor
from tests.server.lsp.session import SERVER
from tests.server.lsp.session import start as start_session

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


TEXT = """\
data digits
train epochs=1 batch=256

model tiny:
    flatten
    dense 10

model small:
    conv2d 16 kernel=3
    relu
    maxpool 2
    flatten
    dense 10

model broken:
    dense 10
    conv2d 16
"""
TINY, SMALL, BROKEN = 3, 7, 14


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=["visual-studio-code", "neovim"],
                    scope="module")
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(request.param)
    lsp_client.root = root
    # VS Code gets the worker the server starts; for Neovim the test plays the worker
    start_worker = request.param == "visual-studio-code"
    lsp_client.session = await start_session(lsp_client, request.param, root,
                                             init={"autoTrain": False, "startWorker": start_worker})
    yield
    await lsp_client.shutdown_session()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(client: LanguageClient) -> Editor:
    return client.session.editor


async def lenses(editor: Editor, uri: str) -> dict[int, list[tuple[str, str, list | None]]]:
    result = await editor.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri)))
    out: dict[int, list[tuple[str, str, list | None]]] = {}
    for lens in result or []:
        assert lens.command is not None
        arguments = list(lens.command.arguments) if lens.command.arguments is not None else None
        out.setdefault(lens.range.start.line, []).append((lens.command.title, lens.command.command, arguments))
    return out


async def test_each_model_has_its_size_status_and_commands(client: LanguageClient, editor: Editor):
    uri = editor.open(client.root / "content" / "models.remap", TEXT)
    shown = await lenses(editor, uri)
    assert shown[TINY] == [("650 params · not trained", "", None), ("Train", "remap.train", [uri, ["tiny"]]),
                           ("Ablate", "remap.ablate", [uri, "tiny"]), ("Vary", "remap.vary", [uri, "tiny"])]
    assert shown[SMALL][0] == ("2.73k params · not trained", "", None)
    assert shown[BROKEN] == [("has errors: fix them to train or vary it", "", None)]
    editor.close(uri)


async def test_training_is_reported_as_it_goes_and_the_lenses_follow(client: LanguageClient, editor: Editor):
    uri = editor.open(client.root / "train" / "models.remap", TEXT)
    vscode = client.capabilities.workspace.code_lens is not None
    assert await editor.execute(types.Command("Train", "remap.train", arguments=[uri, ["tiny"]])) == [
        {"model": "tiny", "job": 1, "outcome": "queued"}]
    await editor.wait_for(lambda: any(p["queued"] == 1 for p in editor.queue_progress))
    assert (await lenses(editor, uri))[TINY][0] == ("650 params · queued", "", None)
    if not vscode:
        await play_the_worker(editor, client.root / "train" / ".remap" / "remap.db")
    await editor.wait_for(lambda: any(p["done"] == 1 for p in editor.queue_progress), timeout=60)
    # the status bar's notification: exactly these fields, the model named while it trains
    assert all(set(p) == {"queued", "running", "done", "failed", "current"} for p in editor.queue_progress)
    assert {"model": "tiny", "epoch": 1, "epochs": 1} in [p["current"] for p in editor.queue_progress]
    assert editor.queue_progress[-1] == {"queued": 0, "running": 0, "done": 1, "failed": 0, "current": None}
    # work-done progress: begun for the training, ended when it finished
    reports = [r for token, rs in client.progress_reports.items() if str(token).startswith("remap-training-")
               for r in rs]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Training tiny"
    assert reports[0].message == "epoch 1 of 1" and isinstance(reports[-1], types.WorkDoneProgressEnd)
    # lenses are refreshed where the client can be asked to, and show the result
    if vscode:
        await editor.wait_for(lambda: editor.lens_refreshes > 0)
    else:
        assert editor.lens_refreshes == 0
    title = (await lenses(editor, uri))[TINY][0][0]
    assert title.startswith("650 params · ") and title.endswith("% · done")
    assert [t for t, _, _ in (await lenses(editor, uri))[TINY]] == [title, "Ablate", "Vary"]
    editor.close(uri)


async def play_the_worker(editor: Editor, store_path: Path) -> None:
    """Train the queued job as a worker records it (claim, one epoch, done), a step at a time so that the
    server sees each."""
    with Store(store_path) as store:
        queue = Queue(store)
        job = queue.claim("test-worker")
        assert job is not None
        await editor.wait_for(lambda: any(p["running"] == 1 for p in editor.queue_progress))
        row = EpochRow(job.run_id, 1, 1.2, 0.6, 1.1, 0.625, 0.01)
        assert store.record_epoch(job.run_id, row, owner=(job.id, "test-worker"))
        assert queue.complete(job.id, "test-worker", "done")
