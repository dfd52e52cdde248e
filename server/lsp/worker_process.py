"""The training worker the language server starts when the user lets it (`start_worker`).

One `remap worker --until-empty` process at a time, started while jobs are queued: it trains them and
exits when the queue is empty, and the next queued job starts a new one. So no worker sits idle, and one
the server could not stop (the server killed outright) ends with the queue. When the server exits, the
worker is interrupted: it gives its job back to the queue, which the next worker resumes from its last
finished epoch. Its output goes to the client's log, never to the server's stdout (the protocol's channel).
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# Seconds an interrupted worker gets to give its job back before it is killed.
STOP_SECONDS = 5.0


class WorkerProcess:
    """Starts and stops the server's worker; `log` receives each line the worker prints (from a thread)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.store: Path | None = None
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure(self, store: Path) -> bool:
        """Start a worker on `store` unless one is running on it; True when one was started."""
        if self.running and self.store == store:
            return False
        self.stop()
        command = [sys.executable, "-m", "remapdsl", "worker", "--store", str(store), "--until-empty"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, cwd=store.parent)
        self.store = store
        threading.Thread(target=self._forward, args=(self.process,), name="remap-worker-log", daemon=True).start()
        return True

    def stop(self) -> None:
        """Interrupt the worker (it gives its job back), and kill it if it does not exit in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _forward(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.log(line)
        code = process.wait()
        self.log(f"worker exited ({code})" if code else "worker finished: the queue is empty")


class Workers:
    """The server's workers, one per store; `log` receives each line any of them prints (from a thread)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.by_store: dict[Path, WorkerProcess] = {}

    def ensure(self, store: Path) -> bool:
        """Start a worker on `store` unless one is running on it; True when one was started."""
        worker = self.by_store.get(store)
        if worker is None:
            worker = self.by_store[store] = WorkerProcess(self.log)
        return worker.ensure(store)

    def stop(self) -> None:
        """Interrupt every worker (each gives its job back to the queue)."""
        for worker in self.by_store.values():
            worker.stop()
