"""`postroom run`: everything a local install needs, in one command.

Migrates the database, refuses to start when the stored secrets cannot be decrypted,
creates the first administrator (printing a one-time password), then runs the sandbox
capture (an SMTP server on loopback) and the SMTP listener for applications (unless
POSTROOM_SMTPD_PORT is 0), each on its own thread and event loop, the web server (this
thread), and `postroom worker` as a child process: the worker's CPU then runs on another
core than the web's, instead of sharing this process's one interpreter with it (on SQLite
the two take turns writing: postroom/core/sqlite).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from postroom.accounts.services import user_ensure_first_admin
from postroom.company.services import company_verify_secrets
from postroom.core.errors import ConfigurationError, SecretKeyError
from postroom.inbox.server import CaptureServer
from postroom.smtpd.server import SmtpListener

logger = logging.getLogger(__name__)

# How long after the worker process ended unasked (killed, out of memory) another starts: soon
# enough that mail hardly waits, slow enough that a worker failing at start fills the log
# with a line every few seconds, not a torrent.
WORKER_RESTART_SECONDS = 3


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
        worker = None if no_worker else _WorkerProcess()
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


class _WorkerProcess:
    """`postroom worker --with-parent`, its standard input a pipe this process holds: when
    this process ends, however it ends (even killed), the pipe closes and the worker stops as
    on SIGTERM, finishing what it has in flight. A worker that ends unasked is started again
    (WORKER_RESTART_SECONDS later), as systemd restarts `postroom-worker.service`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # between a restart and stop()
        self._is_stopping = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, name="postroom-worker-watch", daemon=True
        )

    def start(self) -> None:
        self._process = _worker_start()
        self._watcher.start()

    def _watch(self) -> None:
        process = self._process
        assert process is not None
        while True:
            returncode = process.wait()
            if self._is_stopping.is_set():
                return
            logger.error(
                "The outbox worker (pid %d) ended with exit code %d; starting another in %d s.",
                process.pid,
                returncode,
                WORKER_RESTART_SECONDS,
            )
            if self._is_stopping.wait(WORKER_RESTART_SECONDS):
                return
            with self._lock:
                if self._is_stopping.is_set():
                    return
                process = self._process = _worker_start()

    def stop(self) -> None:
        with self._lock:
            self._is_stopping.set()
            process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._watcher.join()


def _worker_start() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "postroom", "worker", "--with-parent"], stdin=subprocess.PIPE
    )
