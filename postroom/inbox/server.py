"""The capture server: a real SMTP server on loopback that keeps every message it receives.

`postroom run` starts it. In sandbox mode, or while no SMTP server is configured, the outbox
worker delivers here over real SMTP instead of to the company relay, so everything up to the
last byte on the wire is exercised and nothing leaves the machine. The Inbox page shows
what arrived.

aiosmtpd's `Controller` runs the server on its own event loop in its own thread. The
database work happens on one more thread of ours: Django's ORM is synchronous and must not
block (or run in) the event loop, and one thread serialises the writes, which is what
SQLite wants anyway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import close_old_connections, connections

from postroom.core.errors import ConfigurationError
from postroom.inbox import services

logger = logging.getLogger(__name__)

# Twice the outbox's own default cap on a message (POSTROOM_MAX_MESSAGE_BYTES, 25 MiB, as
# Gmail and Microsoft 365 by default), so the sandbox never refuses what the outbox accepted;
# bounded because aiosmtpd holds a whole message in memory before handing it over and we
# store it in one database row. Raised to the outbox's cap if that is set higher.
DEFAULT_DATA_SIZE_LIMIT = 50 * 1024 * 1024
# The name the server greets with. Not the machine's name: socket.getfqdn() can wait on DNS,
# and this says plainly where the mail went.
SERVER_HOSTNAME = "capture.postroom.localhost"
# aiosmtpd's own default; a loopback listener is up in milliseconds.
READY_TIMEOUT_SECONDS = 5.0


class CaptureHandler:
    """aiosmtpd handler: accept any sender and recipient, store each message, say its id."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # With decode_data=False, `original_content` is the DATA exactly as received, after
        # only the dot-unstuffing of RFC 5321 §4.5.2: CRLFs, 8-bit and UTF-8 bytes untouched.
        raw = envelope.original_content or b""
        # aiosmtpd keeps the null sender (bounces, MAIL FROM:<>) as "<>".
        mail_from = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        peer = _peer_text(session.peer)
        loop = asyncio.get_running_loop()
        try:
            message_id = await loop.run_in_executor(
                self._executor,
                _store,
                raw,
                mail_from,
                list(envelope.rcpt_tos),
                peer,
            )
        except Exception:
            logger.exception("The capture inbox could not store a message from %s.", peer)
            # 4xx: the sender keeps the message and tries again (RFC 5321 §4.2.1), so a
            # locked or full database loses nothing.
            return "451 4.3.0 Could not store the message; try again later"
        return f"250 OK: captured as #{message_id}"


def _store(raw: bytes, mail_from: str, rcpt_tos: list[str], peer: str) -> int:
    # This thread lives as long as the server, like a request thread: drop connections the
    # database closed or that outlived CONN_MAX_AGE before and after each use.
    close_old_connections()
    try:
        message = services.captured_message_create(
            raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, peer=peer
        )
        return message.pk
    finally:
        close_old_connections()


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Controller(Controller):
    """aiosmtpd's Controller, able to listen on port 0 (any free port, for tests), and quick
    to report a failed bind.

    The stock one connects to `self.port` to check the server answers, which fails for 0;
    this one first reads the port the listening socket got. And when binding fails the stock
    one waits out its whole ready timeout before saying why; this one says at once.
    """

    def _run(self, ready_event: threading.Event) -> None:
        try:
            super()._run(ready_event)
        finally:
            ready_event.set()  # after a failed bind too: start() then raises the error

    def _trigger_server(self) -> None:
        if self._thread_exception is not None:
            raise self._thread_exception
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class CaptureServer:
    """The capture inbox's SMTP server. `port` 0 picks a free port; `port` says which after
    `start()`. Only loopback addresses unless `allow_remote`: the server takes mail from
    anyone without authentication, so it must not face a network."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8025,
        *,
        allow_remote: bool = False,
        data_size_limit: int | None = None,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ConfigurationError(
                f"The capture inbox accepts mail from anyone without a password, so it only "
                f"listens on a loopback address; {host!r} is not one. Set POSTROOM_CAPTURE_HOST "
                f"to 127.0.0.1.",
                field="POSTROOM_CAPTURE_HOST",
            )
        self.host = host
        self.port = port
        self._requested_port = port
        self.data_size_limit = data_size_limit or max(
            DEFAULT_DATA_SIZE_LIMIT, settings.POSTROOM_MAX_MESSAGE_BYTES
        )
        self._executor: ThreadPoolExecutor | None = None
        self._controller: _Controller | None = None

    @property
    def is_running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen; return once the server answers. Raises ConfigurationError if it cannot."""
        if self._controller is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postroom-capture")
        controller = _Controller(
            CaptureHandler(self._executor),
            hostname=self.host,
            port=self._requested_port,
            server_hostname=SERVER_HOSTNAME,
            ready_timeout=READY_TIMEOUT_SECONDS,
            # Keep the bytes: no decoding means 8BITMIME is offered and nothing is altered.
            decode_data=False,
            enable_SMTPUTF8=True,
            data_size_limit=self.data_size_limit,
        )
        try:
            controller.start()
        except OSError as error:  # a failed bind, or TimeoutError (a subclass)
            controller.stop(no_assert=True)
            if not controller.loop.is_closed():  # a failed bind ends the thread before its loop
                controller.loop.close()
            self._shutdown_executor()
            raise ConfigurationError(
                f"The sandbox capture cannot listen on {self.host}:{self._requested_port} "
                f"({error.strerror or error}). Another program, perhaps another Postroom, uses "
                "that port: stop it, or set POSTROOM_CAPTURE_PORT to a free port (a second "
                "Postroom on one machine needs its own POSTROOM_HTTP_PORT, "
                "POSTROOM_CAPTURE_PORT and POSTROOM_SMTPD_PORT).",
                field="POSTROOM_CAPTURE_PORT",
            ) from None
        self._controller = controller
        self.port = controller.port
        logger.info("Capture inbox listening on %s:%s", self.host, self.port)

    def stop(self) -> None:
        """Stop listening. A message being stored is stored first, though its sender may not
        hear the reply (and then, not knowing, sends it again)."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None
        self._shutdown_executor()

    def _shutdown_executor(self) -> None:
        if self._executor is None:
            return
        # The database connection belongs to the executor's thread: close it there.
        self._executor.submit(connections.close_all).result()
        self._executor.shutdown(wait=True)
        self._executor = None

    def __enter__(self) -> CaptureServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
