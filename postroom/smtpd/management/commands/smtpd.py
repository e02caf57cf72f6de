"""`postroom smtpd`: the SMTP listener on its own (docs/smtp-listener.md). Stops on SIGTERM
or SIGINT: sessions in the middle of a message get nothing, so their clients send again; a
message already answered with 250 is in the outbox.

One listener process does the SMTP protocol, TLS and the database writes on one core (Python's
GIL). `--processes N` (POSTROOM_SMTPD_PROCESSES) starts N-1 more `postroom smtpd` processes on
the same ports (SO_REUSEPORT): the kernel spreads new connections among them, each commits its
own groups, and stopping this one stops them all.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.core.errors import ConfigurationError
from postroom.smtpd.server import SmtpListener

CHILD_STOP_SECONDS = 30


class Command(BaseCommand):
    help = "Accept mail from applications over SMTP into the outbox (SMTP credentials)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.POSTROOM_SMTPD_HOST)
        parser.add_argument("--port", type=int, default=settings.POSTROOM_SMTPD_PORT)
        parser.add_argument("--tls-port", type=int, default=settings.POSTROOM_SMTPD_TLS_PORT)
        parser.add_argument("--plain-port", type=int, default=settings.POSTROOM_SMTPD_PLAIN_PORT)
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.POSTROOM_SMTPD_PROCESSES,
            help="listener processes on the same ports (one per core helps)",
        )
        # Set on the processes `--processes` starts: they share the first one's ports.
        parser.add_argument("--reuse-port", action="store_true", help="share the ports")

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        tls_port: int,
        plain_port: int,
        processes: int,
        reuse_port: bool,
        **options: Any,
    ) -> None:
        if processes < 1:
            raise CommandError("--processes (POSTROOM_SMTPD_PROCESSES) must be 1 or more.")
        if processes > 1 and port == 0:
            raise CommandError(
                "Several listener processes share fixed ports: set --port "
                "(POSTROOM_SMTPD_PORT), not 0."
            )
        listener = SmtpListener(
            host,
            port,
            tls_port=tls_port or None,
            plain_port=plain_port or None,
            reuse_port=reuse_port or processes > 1,
        )
        try:
            listener.start()  # first: it makes the self-signed certificate the others read
        except ConfigurationError as error:
            raise CommandError(error.message) from None
        children = [
            subprocess.Popen(  # noqa: S603 - this program, with the options it was given
                [sys.executable, "-m", "postroom", "smtpd", "--host", host]
                + ["--port", str(port), "--tls-port", str(tls_port)]
                + ["--plain-port", str(plain_port), "--processes", "1", "--reuse-port"],
                stdout=subprocess.DEVNULL,
            )
            for _ in range(processes - 1)
        ]
        count = f" ({processes} processes)" if processes > 1 else ""
        self.stdout.write(f"SMTP listener on {host}: {listener.describe()}{count}")
        self.stdout.flush()
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            if any(child.poll() is not None for child in children):
                self.stderr.write("A listener process ended; stopping the others.")
                break
        _stop(children)
        listener.stop()
        self.stdout.write("SMTP listener stopped.")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
