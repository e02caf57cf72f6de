"""`postroom run`: everything a local install needs, in one command.

Migrates the database, refuses to start when the stored secrets cannot be decrypted,
creates the first administrator (printing a one-time password), then runs four things in
one process: the sandbox capture (an SMTP server on loopback), the SMTP listener for
applications (unless POSTROOM_SMTPD_PORT is 0), the outbox worker (each on its own thread and
event loop) and the web server (this thread).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.accounts.services import user_ensure_first_admin
from postroom.company.services import company_verify_secrets
from postroom.core.errors import ConfigurationError, SecretKeyError
from postroom.core.event_loops import event_loop_new
from postroom.inbox.server import CaptureServer
from postroom.outbox.worker import WorkerOptions, default_worker_name
from postroom.runtime.background import run_background
from postroom.smtpd.server import SmtpListener


class Command(BaseCommand):
    help = "Start Postroom: migrate, create the first administrator, serve pages, send mail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.POSTROOM_HTTP_HOST)
        parser.add_argument("--port", type=int, default=settings.POSTROOM_HTTP_PORT)
        parser.add_argument("--threads", type=int, default=8, help="web server threads")
        parser.add_argument("--no-worker", action="store_true", help="do not send mail")

    def handle(
        self, *args: Any, host: str, port: int, threads: int, no_worker: bool, **options: Any
    ) -> None:
        from waitress import serve

        from postroom.wsgi import application

        call_command("migrate", interactive=False, verbosity=0)
        try:
            company_verify_secrets()
        except SecretKeyError as error:
            raise CommandError(error.message) from None

        _http_port_check(host, port)
        capture = CaptureServer(settings.POSTROOM_CAPTURE_HOST, settings.POSTROOM_CAPTURE_PORT)
        try:
            capture.start()
        except ConfigurationError as error:
            raise CommandError(error.message) from None
        listener = None
        if settings.POSTROOM_SMTPD_PORT:
            listener = SmtpListener(
                settings.POSTROOM_SMTPD_HOST,
                settings.POSTROOM_SMTPD_PORT,
                tls_port=settings.POSTROOM_SMTPD_TLS_PORT or None,
                plain_port=settings.POSTROOM_SMTPD_PLAIN_PORT or None,
            )
            try:
                listener.start()
            except ConfigurationError as error:
                capture.stop()
                raise CommandError(error.message) from None
        worker = None if no_worker else _WorkerThread()
        if worker:
            worker.start()

        url = f"http://{host}:{port}/"
        self._say_started(url, has_worker=worker is not None, listener=listener)
        self._say_how_to_log_in(url)
        try:
            serve(
                application,
                host=host,
                port=port,
                threads=threads,
                ident="Postroom",
                # Waitress refuses a body of this size or more (its default is 1 GB) before
                # reading it; one more byte than the limit, so the limit itself passes.
                max_request_body_size=settings.POSTROOM_MAX_REQUEST_BYTES + 1,
            )
        finally:
            if worker:
                worker.stop()
            if listener:
                listener.stop()
            capture.stop()

    def _say_started(self, url: str, *, has_worker: bool, listener: SmtpListener | None) -> None:
        self.stdout.write(f"Postroom is running on {url}")
        self.stdout.write(f"  data directory: {settings.DATA_DIR}")
        self.stdout.write(
            f"  sandbox capture (SMTP): {settings.POSTROOM_CAPTURE_HOST}:"
            f"{settings.POSTROOM_CAPTURE_PORT}"
        )
        self.stdout.write(
            "  SMTP listener for applications: "
            + (f"{listener.host}, {listener.describe()}" if listener else "off")
        )
        self.stdout.write(f"  outbox worker: {'on' if has_worker else 'off'}")
        self.stdout.write(
            f"  largest request body: {settings.POSTROOM_MAX_REQUEST_BYTES:,} bytes "
            "(POSTROOM_MAX_REQUEST_BYTES)"
        )

    def _say_how_to_log_in(self, url: str) -> None:
        """On the first run, create the first administrator and print its one-time password."""
        first_admin = user_ensure_first_admin()
        if first_admin is None:
            self.stdout.write(f"Log in at {url}login/ (`postroom createadmin` adds an admin).")
        else:
            user, password = first_admin
            self.stdout.write(
                self.style.WARNING(
                    "\nFirst run: an administrator was created.\n"
                    f"  Log in at {url}login/ as '{user.username}' with password: {password}\n"
                    "  This password is shown only once: Postroom asks you to choose your own "
                    "when you log in.\n"
                )
            )
        self.stdout.write("Press Ctrl+C to stop.")


def _http_port_check(host: str, port: int) -> None:
    """Say which setting to change when the web port is taken, before anything else starts
    (waitress would only print a traceback, after the worker and the capture started)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise CommandError(
            f"Postroom cannot listen on {host}:{port} ({error.strerror or error}). Another "
            "program, perhaps another Postroom, uses that port: stop it, or set "
            "POSTROOM_HTTP_PORT (or --port) to a free port. A second Postroom on one machine "
            "needs its own POSTROOM_HTTP_PORT, POSTROOM_CAPTURE_PORT and POSTROOM_SMTPD_PORT."
        ) from None


class _WorkerThread(threading.Thread):
    """The outbox worker on its own event loop, so the web server's threads never block it."""

    def __init__(self) -> None:
        super().__init__(name="postroom-worker", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()

    def run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            self._ready.set()
            options = WorkerOptions(
                name=default_worker_name(), batch_size=settings.POSTROOM_WORKER_BATCH
            )
            await run_background(options, stop=self._stop_event)

        with asyncio.Runner(loop_factory=event_loop_new) as runner:
            runner.run(main())

    def stop(self) -> None:
        self._ready.wait(timeout=5)
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=30)
