"""Poke the webhook dispatcher of this process (a resend, a test ping, a queued message).

Only in-process: the dispatcher also looks for work at least every `IDLE_WAKE_SECONDS`
(dispatcher.py), so an event from another process reaches its endpoints within that time
without a cross-process channel of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def add_listener(callback: Callable[[], None]) -> None:
    with _lock:
        _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    with _lock:
        if callback in _listeners:
            _listeners.remove(callback)


def notify_dispatchers() -> None:
    """Call every listener; each must be thread-safe and must not raise."""
    with _lock:
        listeners = list(_listeners)
    for callback in listeners:
        callback()
