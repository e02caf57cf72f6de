"""Wake the worker when a message is queued, so a person's email leaves within a second.

Polling would trade latency for load; instead an enqueue pokes the worker:
- in the same process (`postroom run`), through a registered callback;
- on PostgreSQL, with NOTIFY on the `postroom_outbox` channel, which every worker on every
  host LISTENs to (delivered at commit, so a worker never wakes before the row is visible);
- on SQLite, with a datagram to the worker's socket in the data directory (SQLite means one
  host, one worker process).
The worker still wakes on its own at the next due time, so a lost poke only costs latency.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

CHANNEL = "postroom_outbox"

_local_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def socket_path() -> Path:
    return Path(settings.DATA_DIR) / "worker.wake"


def add_local_listener(callback: Callable[[], None]) -> None:
    with _lock:
        _local_listeners.append(callback)


def remove_local_listener(callback: Callable[[], None]) -> None:
    with _lock:
        if callback in _local_listeners:
            _local_listeners.remove(callback)


def notify_workers() -> None:
    """Poke every worker. Never raises: a missed poke delays mail, it does not lose it."""
    with _lock:
        listeners = list(_local_listeners)
    for callback in listeners:
        callback()
    if listeners and connection.vendor != "postgresql":
        return  # SQLite has one worker, and it is in this process: it has been poked.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
        return
    path = socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"!", str(path))
    except (ConnectionRefusedError, FileNotFoundError, BlockingIOError):
        pass  # No worker listening (or it is busy and will look at the queue anyway).
    except OSError as error:
        logger.warning("Could not wake the worker through %s: %s", path, error)


class WakeListener:
    """Receive pokes from other processes and call `callback` in the worker's event loop."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._sock: socket.socket | None = None
        self._task: Any = None

    async def start(self) -> None:
        import asyncio

        if connection.vendor == "postgresql":
            self._task = asyncio.create_task(self._listen_postgres())
            return
        path = socket_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a stale socket of a dead worker
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._drain)

    def _drain(self) -> None:
        assert self._sock is not None
        try:
            while self._sock.recv(64):
                pass
        except BlockingIOError:
            pass
        self._callback()

    async def _listen_postgres(self) -> None:
        import asyncio

        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **params, autocommit=True
                ) as listen_connection:
                    await listen_connection.execute(f"LISTEN {CHANNEL}")
                    self._callback()  # anything queued while we were not listening
                    async for _ in listen_connection.notifies():
                        self._callback()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database restarted: listen again shortly
                logger.warning("Lost the PostgreSQL LISTEN connection (%s); reconnecting", error)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        import asyncio

        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            socket_path().unlink(missing_ok=True)
