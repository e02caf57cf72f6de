"""`postroom worker`: deliver the outbox and its webhook events. Stops gracefully on SIGTERM
or SIGINT, and with --with-parent when its standard input closes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.company.services import company_verify_secrets
from postroom.core.errors import SecretKeyError
from postroom.core.event_loops import event_loop_new
from postroom.outbox.worker import WorkerOptions, default_worker_name
from postroom.runtime.background import run_background


class Command(BaseCommand):
    help = "Deliver queued mail. Run one per host on PostgreSQL; one in all on SQLite."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=default_worker_name())
        parser.add_argument(
            "--concurrency",
            type=int,
            default=WorkerOptions.concurrency,
            help="sender tasks; the company's maximum connections caps the sessions",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=settings.POSTROOM_WORKER_BATCH,
            help="messages claimed at once (POSTROOM_WORKER_BATCH)",
        )
        parser.add_argument(
            "--with-parent",
            action="store_true",
            help="stop also when standard input closes (postroom run starts its worker so, on a "
            "pipe it holds: the worker then stops when postroom run ends, even killed)",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        concurrency: int,
        batch: int,
        with_parent: bool,
        **options: Any,
    ) -> None:
        try:
            company_verify_secrets()
        except SecretKeyError as error:
            raise CommandError(error.message) from None
        worker_options = WorkerOptions(name=name, batch_size=batch, concurrency=concurrency)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            if with_parent:
                loop.add_reader(sys.stdin.fileno(), _stop_at_end_of_input, stop)
            await run_background(worker_options, stop=stop)

        self.stdout.write(f"Worker {name} started.")
        with asyncio.Runner(loop_factory=event_loop_new) as runner:
            runner.run(main())
        self.stdout.write(f"Worker {name} stopped.")


def _stop_at_end_of_input(stop: asyncio.Event) -> None:
    if not os.read(sys.stdin.fileno(), 4096):
        asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
        stop.set()
