"""The background threads that check and run CSV imports, and their live progress.

A job's thread is started once the transaction that changed its status commits, runs with
its own database connection, and closes it at the end. Its progress lives in this
process's memory (`live_progress`), because while an import writes, its transaction holds
SQLite's write lock and no other connection could record progress in the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, transaction

from postroom.core.errors import PostroomError

logger = logging.getLogger(__name__)

# Identifies this process, so a job it ran whose thread is gone is known to be dead.
RUNNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
# Progress is saved at most this often: often enough for a bar polled every 500 ms.
PROGRESS_INTERVAL_SECONDS = 0.25


class ImportCancelledError(PostroomError):
    code = "import_cancelled"


@dataclass
class LiveProgress:
    phase: str
    processed: int = 0
    total: int = 0


_registry_lock = threading.Lock()
_threads: dict[int, threading.Thread] = {}
_live: dict[int, LiveProgress] = {}
_cancel_requested: set[int] = set()


class ProgressReporter:
    """A job's progress: in memory always, and through `save` (at most every
    PROGRESS_INTERVAL_SECONDS) when given. Each step is also where a cancel takes effect."""

    def __init__(
        self, job_id: int, phase: str, *, save: Callable[[LiveProgress], None] | None = None
    ) -> None:
        self.job_id = job_id
        self.live = LiveProgress(phase=phase)
        self._save_to = save
        self._saved_at = 0.0
        with _registry_lock:
            _live[job_id] = self.live

    def close(self) -> None:
        with _registry_lock:
            _live.pop(self.job_id, None)

    def phase(self, phase: str, *, total: int | None = None) -> None:
        self.live.phase = phase
        self.live.processed = 0
        if total is not None:
            self.live.total = total
        self._save(force=True)

    def step(self, processed: int) -> None:
        self.live.processed = processed
        if self.job_id in _cancel_requested:
            raise ImportCancelledError("The import was cancelled; nothing was imported.")
        self._save(force=False)

    def _save(self, *, force: bool) -> None:
        now = time.monotonic()
        if self._save_to is not None and (
            force or now - self._saved_at >= PROGRESS_INTERVAL_SECONDS
        ):
            self._saved_at = now
            self._save_to(self.live)


def live_progress(job_id: int) -> LiveProgress | None:
    return _live.get(job_id)


def thread_is_running(job_id: int) -> bool:
    return job_id in _threads


def cancel_request(job_id: int) -> bool:
    """Ask a job running here to stop at its next step; False if it does not run here."""
    with _registry_lock:
        if job_id not in _threads:
            return False
        _cancel_requested.add(job_id)
        return True


def is_cancel_requested(job_id: int) -> bool:
    return job_id in _cancel_requested


def thread_start(job_id: int, target: Callable[..., None]) -> None:
    """Run `target(job_id=...)` in a thread once the current transaction commits, so the
    thread sees the job's new status."""

    def start() -> None:
        thread = threading.Thread(
            target=_thread_main,
            args=(job_id, target),
            name=f"contacts-import-{job_id}",
            daemon=True,
        )
        with _registry_lock:
            _threads[job_id] = thread
        thread.start()

    transaction.on_commit(start)


def _thread_main(job_id: int, target: Callable[..., None]) -> None:
    try:
        target(job_id=job_id)
    except Exception:
        # The targets report their own failures on the job; this is the last resort.
        logger.exception("contacts import thread %s crashed", job_id)
    finally:
        with _registry_lock:
            _threads.pop(job_id, None)
            _live.pop(job_id, None)
            _cancel_requested.discard(job_id)
        # The thread's connections are its own: close them, or they leak until exit.
        connections.close_all()


def import_job_wait(job_id: int, *, timeout: float) -> bool:
    """Wait for a job's thread (tests, commands); True if it finished in time."""
    thread = _threads.get(job_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()
