"""The progress watcher: tells the editor about training as it happens, whoever trains.

Twice a second, in the thread pool, it asks each store's poller (`remapdsl.store.poller`, a read-only
connection of its own) whether another connection committed, so an idle store costs one tiny query. When
it changed, the queue's counts and the jobs in training are read, and when those changed the client hears:
`remap/queueProgress` (counts and the model in training, for a status bar), work-done progress per
training ("Training M", "epoch k of n"), a code lens refresh, and, when a training ended, fresh
diagnostics and hovers (`refresh_all`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from remapdsl.store.poller import StorePoller
from remapdsl.store.status import QueueProgress, Training, queue_progress

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from pygls.lsp.server import LanguageServer

QUEUE_PROGRESS = "remap/queueProgress"
POLL_SECONDS = 0.5
# How long a client may take to answer a refresh or a progress creation before the watcher goes on.
CLIENT_TIMEOUT = 5.0

log = logging.getLogger(__name__)


def poll_progress(poller: StorePoller) -> QueueProgress | None:
    """The queue's progress when the store changed since the last poll; None when it did not (or does not
    exist yet)."""
    if not poller.changed() or poller.store is None:
        return None
    return queue_progress(poller.store)


class ProgressWatcher:
    """Polls the stores that `stores()` names (those of the open documents), in `run_blocking`, and reports
    changes to the client; `on_progress(store, progress)` hears each store's progress on every tick, and
    `on_finished()` (which may return an awaitable) is called when a training ended."""

    def __init__(self, ls: LanguageServer, run_blocking: Callable[..., Awaitable[Any]],
                 stores: Callable[[], set[Path]],
                 on_progress: Callable[[Path, QueueProgress], object] = lambda s, p: None,
                 on_finished: Callable[[], object] = lambda: None) -> None:
        self.ls = ls
        self.run_blocking = run_blocking
        self.stores = stores
        self.on_progress = on_progress
        self.on_finished = on_finished
        self.pollers: dict[Path, StorePoller] = {}
        self.progress: dict[Path, QueueProgress] = {}
        self.last = QueueProgress()
        # job id -> its work-done progress token (None: the client refused it) and the last message
        self.tokens: dict[int, tuple[str | None, str]] = {}
        self.attempts = itertools.count(1)
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if self.task is None:
            self.loop = asyncio.get_running_loop()
            self.task = self.loop.create_task(self.run())

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except RuntimeError as e:
                if "shutdown" in str(e):  # the server shut its thread pool down: it is going away
                    self.stop()
                    return
                log.warning("progress watcher: %s", e)
            except Exception as e:  # a locked or broken store must not end the watching
                log.warning("progress watcher: %s", e)
                self._close(list(self.pollers))
            await asyncio.sleep(POLL_SECONDS)

    async def tick(self) -> None:
        stores = self.stores()
        self._close([p for p in self.pollers if p not in stores])
        for path in stores:
            poller = self.pollers.setdefault(path, StorePoller(path))
            changed = await self.run_blocking(poll_progress, poller)
            if changed is not None:
                self.progress[path] = changed
            if path in self.progress:
                self.on_progress(path, self.progress[path])
        progress = combined(self.progress[p] for p in stores if p in self.progress)
        if progress == self.last:
            return
        finished = (progress.done, progress.failed, progress.cancelled) != (self.last.done, self.last.failed,
                                                                            self.last.cancelled)
        self.last = progress
        self.ls.protocol.notify(QUEUE_PROGRESS, progress.to_json())
        await self._report(progress.training)
        await self._refresh_lenses()
        if finished:
            result = self.on_finished()
            if inspect.isawaitable(result):
                await result

    def _close(self, paths: list[Path]) -> None:
        for path in paths:
            self.pollers.pop(path).close()
            self.progress.pop(path, None)

    async def _report(self, training: tuple[Training, ...]) -> None:
        """Work-done progress: begin for a new training, report a new epoch, end what stopped training."""
        window = self.ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return
        progress = self.ls.work_done_progress
        running = {t.job_id: t for t in training}
        for job_id in [j for j in self.tokens if j not in running]:
            token = self.tokens.pop(job_id)[0]
            if token is not None:
                progress.end(token, types.WorkDoneProgressEnd(message="finished"))
        for t in training:
            message = f"epoch {t.epoch} of {t.epochs}" if t.epochs else "training"
            percentage = int(100 * t.epochs_done / t.epochs) if t.epochs else None
            if t.job_id not in self.tokens:
                # a token of its own per attempt: a job queued again trains under a new one
                offered = f"remap-training-{t.job_id}-{next(self.attempts)}"
                accepted: str | None = offered
                try:
                    await asyncio.wait_for(progress.create_async(offered), CLIENT_TIMEOUT)
                except Exception:  # the client refused the token (or never answered): no progress for this one
                    accepted = None
                self.tokens[t.job_id] = (accepted, message)
                if accepted is not None:
                    progress.begin(accepted, types.WorkDoneProgressBegin(title=f"Training {t.model}", message=message,
                                                                      percentage=percentage))
            elif self.tokens[t.job_id][1] != message:
                token = self.tokens[t.job_id][0]
                self.tokens[t.job_id] = (token, message)
                if token is not None:
                    progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    async def _refresh_lenses(self) -> None:
        workspace = self.ls.client_capabilities.workspace
        if not (workspace and workspace.code_lens and workspace.code_lens.refresh_support):
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ls.workspace_code_lens_refresh_async(None), CLIENT_TIMEOUT)

    def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._close(list(self.pollers))


def combined(progresses: Iterable[QueueProgress]) -> QueueProgress:
    """The progress of several stores as one."""
    out = QueueProgress()
    for p in progresses:
        out = QueueProgress(out.queued + p.queued, out.running + p.running, out.done + p.done,
                            out.failed + p.failed, out.cancelled + p.cancelled, out.training + p.training)
    return out
