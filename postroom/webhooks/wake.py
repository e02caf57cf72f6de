"""Poke the webhook dispatcher of this process (a resend, a test ping, a queued message).

Only in-process (a postroom.queue.wake registry): the dispatcher also looks for work at
least every `IDLE_WAKE_SECONDS` (dispatcher.py), so an event from another process reaches
its endpoints within that time without a cross-process channel of its own.
"""

from __future__ import annotations

from postroom.queue.wake import WakeRegistry

DISPATCHERS = WakeRegistry()


def notify_dispatchers() -> None:
    """Call every listener; each must be thread-safe and must not raise."""
    DISPATCHERS.notify()
