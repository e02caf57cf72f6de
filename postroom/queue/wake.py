"""Wake a queue's loop when there is work for it, instead of polling often.

A loop sleeps until its next due row (`seconds_until`), at most a few seconds, and wakes at
once when poked. A poke is only a hint: a lost one costs latency, never work, because the
loop looks at its table on its own anyway. Pokes come
- from this process, through a `WakeRegistry` of callbacks (the worker's own jobs queue
  messages, a campaign's expansion among them);
- from other processes, through a `WakeChannel`: on PostgreSQL a NOTIFY on the channel, which
  every loop on every host LISTENs to (delivered at commit, so a loop never wakes before the
  row is visible); on SQLite a datagram to a socket in the data directory (SQLite means one
  host, and one process runs the loops).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)

Callback = Callable[[], None]
# Binding the socket is retried this often when another process takes the path at once.
_BIND_TRIES = 5


def seconds_until(when: dt.datetime | None, *, cap: float) -> float:
    """How long to sleep until `when`: never negative, at most `cap` (also for no `when`)."""
    if when is None:
        return cap
    return max(0.0, min(cap, (when - timezone.now()).total_seconds()))


class WakeRegistry:
    """The callbacks of this process's loops that want a poke. Each callback must be
    thread-safe and must not raise: it is called from whatever thread pokes."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()

    def add(self, callback: Callback) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def remove(self, callback: Callback) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def notify(self) -> bool:
        """Call every callback; return whether there was one."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()
        return bool(callbacks)


class WakeChannel:
    """Pokes for one queue, in this process and across processes."""

    def __init__(self, *, channel: str, socket_name: str) -> None:
        self.channel = channel  # a PostgreSQL identifier: it is put in NOTIFY and LISTEN as is
        self.socket_name = socket_name
        self.local = WakeRegistry()

    def socket_path(self) -> Path:
        return Path(settings.DATA_DIR) / self.socket_name

    def notify(self) -> None:
        """Poke every loop of this queue. Never raises: a missed poke delays, loses nothing."""
        has_local = self.local.notify()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"NOTIFY {self.channel}")
            return
        if has_local:
            return  # SQLite runs the loops in one process, this one: they have been poked.
        path = self.socket_path()
        if not path.exists():
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(b"!", str(path))
        except (ConnectionRefusedError, FileNotFoundError, BlockingIOError):
            pass  # No loop listening (or it is busy and will look at its table anyway).
        except OSError as error:
            logger.warning("Could not poke %s through %s: %s", self.channel, path, error)

    def listener(self, callback: Callback) -> WakeListener:
        """Pokes from other processes, calling `callback` in the running event loop."""
        return WakeListener(self, callback)


class WakeListener:
    def __init__(self, channel: WakeChannel, callback: Callback) -> None:
        self._channel = channel
        self._callback = callback
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if connection.vendor == "postgresql":
            self._task = asyncio.create_task(self._listen_postgres())
            return
        path = self._channel.socket_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for _ in range(_BIND_TRIES):
            path.unlink(missing_ok=True)  # a stale socket of a dead process
            try:
                sock.bind(str(path))
                break
            except OSError:
                # Another loop started at the same instant bound it between our unlink and
                # bind: take it over, as a later start would.
                continue
        else:
            sock.close()
            logger.warning(
                "Could not listen on %s; %s wakes by polling only", path, self._channel.channel
            )
            return
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)

    def _drain(self) -> None:
        assert self._sock is not None
        try:
            while self._sock.recv(64):
                pass
        except BlockingIOError:
            pass
        self._callback()

    async def _listen_postgres(self) -> None:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **params, autocommit=True
                ) as listen_connection:
                    await listen_connection.execute(f"LISTEN {self._channel.channel}")
                    self._callback()  # anything queued while we were not listening
                    async for _ in listen_connection.notifies():
                        self._callback()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database restarted: listen again shortly
                logger.warning(
                    "Lost the PostgreSQL LISTEN connection of %s (%s); reconnecting",
                    self._channel.channel,
                    error,
                )
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._channel.socket_path().unlink(missing_ok=True)
