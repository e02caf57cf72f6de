"""Wake the worker when a message is queued, so a person's email leaves within a second.

Polling would trade latency for load; instead an enqueue pokes the worker
(postroom.queue.wake): in the same process (the worker's jobs) through a registered callback;
on PostgreSQL with NOTIFY on the `postroom_outbox` channel, which every worker on every host
LISTENs to; on SQLite with a datagram to the worker's socket in the data directory (SQLite
means one host, one worker process). The worker still wakes on its own at the next due time,
so a lost poke only costs latency.
"""

from __future__ import annotations

from postroom.queue.wake import WakeChannel

OUTBOX = WakeChannel(channel="postroom_outbox", socket_name="worker.wake")


def notify_workers() -> None:
    """Poke every worker. Never raises: a missed poke delays mail, it does not lose it."""
    OUTBOX.notify()
