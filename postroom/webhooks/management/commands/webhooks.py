"""`postroom webhooks`: run only the webhook dispatcher. Stops gracefully on SIGTERM or SIGINT.

`postroom worker` (and `postroom run`) already run the dispatcher beside the outbox worker;
this command is for hosts that should post webhooks without sending mail.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand

from postroom.webhooks.dispatcher import run_webhook_dispatcher


class Command(BaseCommand):
    help = "Post webhook events to the registered endpoints (without sending mail)."

    def handle(self, *args: Any, **options: Any) -> None:
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await run_webhook_dispatcher(stop=stop)

        self.stdout.write("Webhook dispatcher started.")
        asyncio.run(main())
        self.stdout.write("Webhook dispatcher stopped.")
