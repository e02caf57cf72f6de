"""The event loop of Postroom's own servers (the worker, the SMTP listener): uvloop, a pinned
dependency except on Windows, where it does not exist and asyncio's own loop runs instead.

uvloop does the sockets and the scheduling in C: on it the listener and its clients together
spent about 3% fewer instructions a message (bench.instructions, docs/performance.md)."""

from __future__ import annotations

import asyncio


def event_loop_new() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
