"""The SMTP listener: applications send mail into the outbox over SMTP (`postroom smtpd`, and
inside `postroom run`).

aiosmtpd speaks the protocol; this module decides. On the submission port STARTTLS comes
first (aiosmtpd refuses everything else before it) and AUTH only over TLS; an implicit-TLS
port is TLS from the first byte. An optional plain-text port (off by default) serves devices
that cannot speak TLS: it offers no AUTH, so only the networks a credential lists may use it.
A client logs in with an SMTP credential (postroom.smtpd.models), or sends without AUTH from
a network a credential lists. MAIL FROM and the message's From must be addresses the
credential may send as; recipients are checked as addresses and counted against its limit;
its messages per minute are counted here.

`250` comes only once the message is committed to the outbox: `store.py` writes what several
sessions finished at about the same moment in one transaction (group commit) and answers
each after the commit. When the outbox holds more than POSTROOM_SMTPD_MAX_QUEUED messages or
the data directory's disk has less than POSTROOM_SMTPD_MIN_FREE_MB free, MAIL FROM gets a 452
saying so, and the client tries again later (RFC 5321 §4.5.4.1).

The event loop never touches the ORM: credentials and the back-pressure state are read on
the store's thread every REFRESH_SECONDS and kept as plain data.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from django.conf import settings
from django.db import close_old_connections

from postroom.core.errors import ConfigurationError, ValidationError
from postroom.core.event_loops import event_loop_new
from postroom.mail.addresses import normalize_address
from postroom.outbox.models import ACTIVE_MESSAGE_STATUSES, Message
from postroom.smtpd import services
from postroom.smtpd.certs import listener_certificate
from postroom.smtpd.ingest import Received, Refusal, check_received
from postroom.smtpd.services import Credential
from postroom.smtpd.store import IngestStore

logger = logging.getLogger(__name__)

# How soon a new, changed or removed credential and the back-pressure state take effect.
REFRESH_SECONDS = 2.0
HOSTNAME = "postroom.smtpd"  # what the listener greets with and writes in Received:
# The kinds of port (SmtpListener.ports' keys).
STARTTLS, IMPLICIT_TLS, PLAIN = "starttls", "implicit_tls", "plain"
# A finished session that never says QUIT is dropped after this (aiosmtpd's timeout).
SESSION_TIMEOUT_SECONDS = 300


@dataclass
class ListenerState:
    """What the event loop knows, refreshed from the database every REFRESH_SECONDS."""

    credentials: dict[str, Credential] = field(default_factory=dict)
    busy_reply: str | None = None  # set: MAIL FROM gets this 452
    used: set[int] = field(default_factory=set)  # credentials used since the last refresh
    # Messages per credential in the current minute: (minute, counts).
    minute: int = 0
    sent: Counter[int] = field(default_factory=Counter)

    def count_one(self, credential: Credential) -> bool:
        """Count a message against the credential's rate; False when over it."""
        minute = int(time.time() // 60)
        if minute != self.minute:
            self.minute, self.sent = minute, Counter()
        if self.sent[credential.id] >= credential.rate_limit_per_minute:
            return False
        self.sent[credential.id] += 1
        self.used.add(credential.id)
        return True


def _refresh(used: set[int]) -> tuple[dict[str, Credential], str | None]:
    close_old_connections()
    try:
        if used:
            services.credentials_used(used)
        credentials = services.credentials_snapshot()
        queued = Message.objects.filter(status__in=ACTIVE_MESSAGE_STATUSES).count()
    finally:
        close_old_connections()
    busy = None
    if queued >= settings.POSTROOM_SMTPD_MAX_QUEUED:
        busy = (
            f"452 4.3.1 Postroom's outbox holds {queued:,} messages, its limit "
            "(POSTROOM_SMTPD_MAX_QUEUED): try again later"
        )
    free_mb = shutil.disk_usage(settings.DATA_DIR).free // (1024 * 1024)
    if free_mb < settings.POSTROOM_SMTPD_MIN_FREE_MB:
        busy = f"452 4.3.1 Insufficient system storage ({free_mb} MB free): try again later"
    return credentials, busy


class ListenerHandler:
    def __init__(self, state: ListenerState, store: IngestStore) -> None:
        self.state = state
        self.store = store

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = data.login.decode("utf-8", "replace").strip().lower()
        credential = self.state.credentials.get(username)
        password = data.password.decode("utf-8", "replace")
        if credential is None or not credential.password_matches(password):
            logger.warning("SMTP login refused for %r from %s", username[:64], _ip(session))
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=credential.username)

    def _credential(self, session: Session) -> Credential | None:
        if session.authenticated and isinstance(session.auth_data, str):
            return self.state.credentials.get(session.auth_data)
        ip = _ip(session)
        return next((c for c in self.state.credentials.values() if c.admits(ip)), None)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        credential = self._credential(session)
        if credential is None:
            return "530 5.7.0 Authentication required: log in with an SMTP credential"
        if self.state.busy_reply:
            return self.state.busy_reply
        if not address or not credential.may_send_as(address):
            return f"550 5.7.1 <{address}> is not an address this SMTP credential may send as"
        if not self.state.count_one(credential):
            return (
                f"450 4.7.1 This credential's limit of {credential.rate_limit_per_minute} "
                "messages a minute is reached: try again in a minute"
            )
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        credential = self._credential(session)
        assert credential is not None  # MAIL FROM passed
        if len(envelope.rcpt_tos) >= credential.max_recipients:
            return f"452 4.5.3 Too many recipients: at most {credential.max_recipients} a message"
        try:
            normalize_address(address, label="Recipient", field="to")
        except ValidationError as error:
            return f"553 5.1.3 {error.message}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        credential = self._credential(session)
        if credential is None:
            return "451 4.7.0 The SMTP credential was removed meanwhile"
        received = Received(
            credential=credential,
            client_ip=_ip(session),
            helo=session.host_name or "",
            envelope_from=str(envelope.mail_from),
            recipients=tuple(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            is_tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
            is_authenticated=bool(session.authenticated),
        )
        try:
            check_received(received)
        except Refusal as refusal:
            return refusal.reply
        return await self.store.put(received)


def _ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


class SmtpListener:
    """The listener on its own event loop in a thread: start(), stop(). A port 0 picks a free
    one; `ports` says which were taken (by mode: starttls, implicit_tls, plain). `tls_port`
    and `plain_port` None: no such port. With `reuse_port`, several processes listen on the
    same ports (SO_REUSEPORT) and the kernel spreads the connections among them."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls_port: int | None = None,
        plain_port: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.host = host
        self._reuse_port = reuse_port
        wanted = {STARTTLS: port, IMPLICIT_TLS: tls_port, PLAIN: plain_port}
        self._wanted = [(p, mode) for mode, p in wanted.items() if p is not None]
        self.ports: dict[str, int] = {}
        self._loop = event_loop_new()
        self._thread: threading.Thread | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postroom-smtpd")
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._state = ListenerState()

    def start(self) -> None:
        certificate = listener_certificate(create=True)
        assert certificate is not None
        context = certificate.server_context()
        state = self._state
        store = IngestStore(self._executor, hostname=HOSTNAME)
        handler = ListenerHandler(state, store)
        self._thread = threading.Thread(target=self._loop.run_forever, name="postroom-smtpd")
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._start(handler, state, store, context), self._loop
        )
        try:
            future.result(timeout=30)
        except OSError as error:
            self.stop()
            raise ConfigurationError(
                f"The SMTP listener cannot listen on {self.host} ({error.strerror or error}). "
                "Another program, perhaps another Postroom, uses the port: stop it, or set "
                "POSTROOM_SMTPD_PORT (and POSTROOM_SMTPD_TLS_PORT, POSTROOM_SMTPD_PLAIN_PORT) "
                "to free ones, or POSTROOM_SMTPD_PORT to 0 to turn the listener off. A second "
                "Postroom on one machine needs its own POSTROOM_HTTP_PORT, "
                "POSTROOM_CAPTURE_PORT and POSTROOM_SMTPD_PORT."
            ) from None

    async def _start(
        self,
        handler: ListenerHandler,
        state: ListenerState,
        store: IngestStore,
        context: ssl.SSLContext,
    ) -> None:
        await self._refresh(state)
        self._tasks = [
            asyncio.create_task(self._refresh_forever(state)),
            asyncio.create_task(store.run()),
        ]
        for port, mode in self._wanted:
            server = await self._loop.create_server(
                lambda mode=mode: _protocol(handler, context, mode=mode),
                host=self.host,
                port=port,
                ssl=context if mode == IMPLICIT_TLS else None,
                reuse_port=self._reuse_port,
            )
            self._servers.append(server)
            self.ports[mode] = server.sockets[0].getsockname()[1]

    async def _refresh(self, state: ListenerState) -> None:
        used, state.used = state.used, set()
        loop = asyncio.get_running_loop()
        state.credentials, state.busy_reply = await loop.run_in_executor(
            self._executor, _refresh, used
        )

    async def _refresh_forever(self, state: ListenerState) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self._refresh(state)
            except Exception:
                logger.exception("The SMTP listener could not read its credentials; retrying")

    def refresh_now(self) -> None:
        """Read the credentials and the back-pressure state now (tests, and after a change
        made in this process)."""
        asyncio.run_coroutine_threadsafe(self._refresh(self._state), self._loop).result(30)

    def describe(self) -> str:
        """The ports in words, for the command's first line."""
        words = {
            STARTTLS: "STARTTLS required",
            IMPLICIT_TLS: "implicit TLS",
            PLAIN: "plain text, listed networks only",
        }
        return ", ".join(f"port {port} ({words[mode]})" for mode, port in self.ports.items())

    def stop(self) -> None:
        if self._thread is None:
            return

        async def close() -> None:
            for server in self._servers:
                server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None
        self._executor.shutdown(wait=True)


def _protocol(handler: ListenerHandler, context: ssl.SSLContext, *, mode: str) -> SMTP:
    return SMTP(
        handler,
        hostname=HOSTNAME,
        ident="Postroom",
        decode_data=False,  # the bytes as received: nothing re-encoded
        enable_SMTPUTF8=True,
        data_size_limit=settings.POSTROOM_MAX_MESSAGE_BYTES,  # advertised as SIZE, enforced
        tls_context=context if mode == STARTTLS else None,
        require_starttls=mode == STARTTLS,
        # On the implicit-TLS port the whole connection is TLS already; on the plain one AUTH
        # is never offered.
        auth_require_tls=mode != IMPLICIT_TLS,
        auth_required=False,  # checked at MAIL FROM: a listed network may send without
        authenticator=handler.authenticate,
        timeout=SESSION_TIMEOUT_SECONDS,
    )
