"""`postroom smtpd`: the SMTP listener on its own (docs/smtp-listener.md). Stops on SIGTERM
or SIGINT: sessions in the middle of a message get nothing, so their clients send again; a
message already answered with 250 is in the outbox."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.core.errors import ConfigurationError
from postroom.smtpd.server import SmtpListener


class Command(BaseCommand):
    help = "Accept mail from applications over SMTP into the outbox (SMTP credentials)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.POSTROOM_SMTPD_HOST)
        parser.add_argument("--port", type=int, default=settings.POSTROOM_SMTPD_PORT)
        parser.add_argument("--tls-port", type=int, default=settings.POSTROOM_SMTPD_TLS_PORT)
        parser.add_argument("--plain-port", type=int, default=settings.POSTROOM_SMTPD_PLAIN_PORT)

    def handle(
        self, *args: Any, host: str, port: int, tls_port: int, plain_port: int, **options: Any
    ) -> None:
        listener = SmtpListener(
            host, port, tls_port=tls_port or None, plain_port=plain_port or None
        )
        try:
            listener.start()
        except ConfigurationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"SMTP listener on {host}: {listener.describe()}")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass
        listener.stop()
        self.stdout.write("SMTP listener stopped.")
