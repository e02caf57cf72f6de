"""The background work of a Postroom process: the outbox worker and its companions.

`postroom worker` runs this on its own; `postroom run` runs it in a thread beside the web server.
The companions are started here, not by the outbox, so that the outbox knows nothing of what is
fed by its events (webhooks now; campaign and report schedulers next).
"""

from __future__ import annotations

import asyncio

from postroom.outbox.worker import WorkerOptions, run_worker
from postroom.webhooks.dispatcher import run_webhook_dispatcher


async def run_background(options: WorkerOptions, *, stop: asyncio.Event) -> None:
    """Deliver the outbox and the webhook events its state changes write, until `stop` is set."""
    webhooks_stop = asyncio.Event()
    webhooks = asyncio.create_task(run_webhook_dispatcher(stop=webhooks_stop), name="webhooks")
    try:
        await run_worker(options, stop=stop)
    finally:
        webhooks_stop.set()
        # Requests in flight finish (10 s at most each) and are recorded.
        await webhooks
