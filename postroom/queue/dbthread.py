"""The one thread on which a queue's event loop runs its ORM calls.

Django's ORM is synchronous and its connections belong to a thread, so a loop that awaited
the ORM directly would stall every connection it serves. Each loop (the outbox worker, the
webhook dispatcher, the job runner) hands its calls to a thread of its own instead: one
thread, so calls run in the order they were made and share one connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")


class DatabaseThread:
    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Await `function(*args, **kwargs)` run on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(_call, function, args, kwargs))

    async def close(self) -> None:
        """Close the thread's connection (in that thread: connections are per thread), then
        end the thread once the calls already made are done."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _close_connection)
        self._executor.shutdown(wait=True)


def _close_connection() -> None:
    # Looked up here, in the database thread: `connection.close` read in the loop's thread
    # would be the loop thread's connection.
    connection.close()


def _call(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    # The connection stays open between calls: opening one per call cost as much as the
    # outbox's recording of the outcomes. A failure closes it, so a broken connection (the
    # database restarted) never poisons the next call, which opens a fresh one.
    try:
        return function(*args, **kwargs)
    except Exception:
        connection.close()
        raise
