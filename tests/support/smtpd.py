"""A scripted, fault-injecting SMTP server for tests: a real aiosmtpd on 127.0.0.1.

Each `ScriptedSmtpServer` runs its own asyncio loop in a thread, listens on a free port of
127.0.0.1 and behaves as its `SmtpdScript` says: STARTTLS offered or not (or answered with
454), implicit TLS, AUTH with given users (for XOAUTH2: the access tokens an OAuthServer of
tests/support/oauth_server.py issued to them) or a fixed failure reply (`535 5.7.139 ...`),
refusals at MAIL FROM / RCPT TO / DATA, a server that never greets (timeouts). It records
what it received — commands (never AUTH secrets), login attempts, messages — and whether each
arrived over TLS, so a test can prove nothing was sent in plain text.

    with ScriptedSmtpServer(SmtpdScript(cert=test_ca.issue(), users={"u": "p"})) as server:
        ...  # connect to server.host, server.port
        assert not server.has_mail_before_tls

or, in a test module or conftest that imports the `scripted_smtpd` fixture:

    def test_x(scripted_smtpd):
        server = scripted_smtpd(implicit_tls=True, cert=cert)
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.certs import IssuedCert
from tests.support.oauth_server import OAuthServer
from tests.support.xoauth2 import GMAIL_ERROR_CHALLENGE, read_xoauth2_response

LOOPBACK = "127.0.0.1"
# Commands a server requiring TLS still answers in plain text (RFC 3207 §4: the client may
# still greet, ask for STARTTLS, reset or leave).
_ALLOWED_BEFORE_TLS = frozenset({"EHLO", "HELO", "NOOP", "QUIT", "STARTTLS", "RSET"})
_ENVELOPE_COMMANDS = frozenset({"MAIL", "RCPT", "DATA"})
_SENSITIVE_BEFORE_TLS = frozenset({"AUTH", "MAIL", "RCPT", "DATA"})
_START_TIMEOUT = 5.0  # seconds; a loopback listener is up in milliseconds


@dataclass(frozen=True)
class SmtpdScript:
    """How the server behaves. Replies are full SMTP reply lines ("535 5.7.8 ...")."""

    hostname: str = "mx.postroom.test"
    cert: IssuedCert | None = None  # needed for STARTTLS and implicit TLS
    implicit_tls: bool = False  # TLS from the first byte, like port 465
    offer_starttls: bool = True  # only with a cert and without implicit TLS
    starttls_reply: str | None = None  # e.g. "454 4.7.0 TLS not available due to local problem"
    require_tls_reply: str | None = None  # e.g. "530 5.7.0 Must issue a STARTTLS command first"
    users: Mapping[str, str] = field(default_factory=dict)  # login -> password
    offer_auth: bool = True
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")  # or "CRAM-MD5" (RFC 2195), "XOAUTH2"
    oauth: OAuthServer | None = None  # for XOAUTH2: the provider whose tokens it accepts
    auth_before_tls: bool = False  # advertise and accept AUTH on a plain-text connection
    auth_reply: str | None = None  # every AUTH gets this reply, e.g. "535 5.7.139 ..."
    auth_failure_reply: str = "535 5.7.8 Error: authentication failed: authentication failure"
    require_auth_reply: str | None = None  # MAIL/RCPT/DATA before AUTH, e.g. "530 5.7.0 ..."
    sender_replies: Mapping[str, str] = field(default_factory=dict)  # address -> MAIL reply
    # Others than these and the login's own address get sender_refusal_reply.
    allowed_senders: frozenset[str] | None = None
    sender_refusal_reply: str = (
        "553 5.7.1 <{address}>: Sender address rejected: not owned by user {login}"
    )
    recipient_replies: Mapping[str, str] = field(default_factory=dict)  # address -> RCPT reply
    default_recipient_reply: str | None = None  # e.g. "554 5.7.1 <{address}>: Relay access denied"
    data_reply: str = "250 2.0.0 Ok: queued as {queue_id}"
    greeting_reply: str | None = None  # e.g. "554 5.7.1 No service": sent, then the server hangs up
    silent: bool = False  # accept the connection and never say a word (greeting timeouts)
    smtputf8: bool = True
    extra_extensions: tuple[str, ...] = ("PIPELINING", "ENHANCEDSTATUSCODES")


@dataclass(frozen=True)
class ReceivedCommand:
    session: int
    verb: str
    argument: str  # AUTH keeps only the mechanism name
    is_tls: bool
    is_authenticated: bool


@dataclass(frozen=True)
class AuthAttempt:
    session: int
    mechanism: str
    login: str
    is_success: bool
    is_tls: bool


@dataclass(frozen=True)
class ReceivedMessage:
    session: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    is_tls: bool
    login: str | None
    queue_id: str


def _login(session: Session) -> str | None:
    data = session.auth_data
    return data.login.decode() if isinstance(data, LoginPassword) else None


def _lookup(replies: Mapping[str, str], address: str) -> str | None:
    lowered = {key.lower(): value for key, value in replies.items()}
    return lowered.get(address.lower())


class _Handler:
    """aiosmtpd hooks: scripted replies for MAIL/RCPT/DATA and the EHLO capability list."""

    def __init__(self, server: ScriptedSmtpServer) -> None:
        self._server = server

    async def handle_EHLO(
        self,
        smtp: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the 5-argument hook must do this itself
        script = self._server.script
        kept = [line for line in responses[:-1] if script.offer_auth or "AUTH" not in line]
        extra = [f"250-{extension}" for extension in script.extra_extensions]
        return [*kept, *extra, responses[-1]]

    async def handle_MAIL(
        self,
        smtp: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        script = self._server.script
        login = _login(session) or ""
        reply = _lookup(script.sender_replies, address)
        allowed = script.allowed_senders
        is_own = address.lower() == login.lower()
        if reply is None and allowed is not None and address.lower() not in allowed and not is_own:
            reply = script.sender_refusal_reply.format(address=address, login=login)
        if reply is not None and not reply.startswith("250"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return reply or "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        smtp: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        script = self._server.script
        reply = _lookup(script.recipient_replies, address) or script.default_recipient_reply
        if reply is not None:
            reply = reply.format(address=address)
            if not reply.startswith("25"):
                return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return reply or "250 2.1.5 Ok"

    async def handle_DATA(self, smtp: _ScriptedSMTP, session: Session, envelope: Envelope) -> str:
        queue_id = uuid.uuid4().hex[:10].upper()
        login = _login(session)
        content = envelope.original_content or b""
        self._server._received(
            ReceivedMessage(
                session=smtp.session_number,
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                content=content,
                is_tls=smtp.is_tls,
                login=login,
                queue_id=queue_id,
            )
        )
        return self._server.script.data_reply.format(queue_id=queue_id)

    async def handle_exception(self, error: Exception) -> str:
        self._server.errors.append(error)
        return f"451 4.3.0 Test server error: {type(error).__name__}"


class _ScriptedSMTP(SMTP):
    """One connection. Records every command and applies the script's refusals first."""

    def __init__(self, handler: _Handler, *, server: ScriptedSmtpServer, **kwargs: Any) -> None:
        self._scripted = server
        self.session_number = server._next_session()
        super().__init__(handler, **kwargs)
        self._smtp_methods = {
            verb: self._recorded(verb, method) for verb, method in self._smtp_methods.items()
        }

    @property
    def is_tls(self) -> bool:
        return self._scripted.script.implicit_tls or self._tls_protocol is not None

    def _recorded(
        self, verb: str, method: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        async def run(arg: str) -> None:
            is_authenticated = bool(self.session and self.session.authenticated)
            argument = (arg or "").split(" ")[0] if verb == "AUTH" else (arg or "")
            self._scripted._command(
                ReceivedCommand(self.session_number, verb, argument, self.is_tls, is_authenticated)
            )
            refusal = self._refusal(verb, is_authenticated)
            if refusal is not None:
                await self.push(refusal)
                return
            await method(arg)

        return run

    def _refusal(self, verb: str, is_authenticated: bool) -> str | None:
        script = self._scripted.script
        if script.require_tls_reply and not self.is_tls and verb not in _ALLOWED_BEFORE_TLS:
            return script.require_tls_reply
        if script.require_auth_reply and verb in _ENVELOPE_COMMANDS and not is_authenticated:
            return script.require_auth_reply
        return None

    async def _handle_client(self) -> None:
        script = self._scripted.script
        if script.silent:
            await asyncio.Event().wait()  # until the client gives up and the task is cancelled
            return
        if script.greeting_reply is not None:
            await self.push(script.greeting_reply)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    async def auth_CRAM__MD5(self, _server: SMTP, args: list[str]) -> AuthResult:
        """RFC 2195: the server sends a unique challenge; the client answers with its login
        and the HMAC-MD5 of the challenge keyed by the password, never the password itself.
        (aiosmtpd names the mechanism from the method: "__" becomes "-".)"""
        challenge = f"<{uuid.uuid4().hex}@{self.hostname}>".encode()
        answer = await self.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)  # "*" or bad base64: answered
        assert isinstance(answer, bytes)
        login, _, digest = answer.partition(b" ")
        password = self._scripted.script.users.get(login.decode(errors="replace"), "")
        expected = hmac.new(password.encode(), challenge, "md5").hexdigest().encode()
        # The authenticator compares passwords: hand it the right one only when proven.
        proven = password.encode() if password and hmac.compare_digest(digest, expected) else b""
        return self._authenticate("CRAM-MD5", LoginPassword(login, proven))

    async def auth_XOAUTH2(self, _server: SMTP, args: list[str]) -> AuthResult:
        """Gmail's and Outlook's OAuth 2.0 login (tests/support/xoauth2.py). A refused token
        gets Gmail's 334 with a JSON error first, and the 535 after the client's empty line."""
        credentials = await read_xoauth2_response(self, args)
        if credentials is None:
            return AuthResult(success=False, handled=True)  # "*" or malformed: answered
        login, token = credentials
        # The token stands where PLAIN has the password: checked, kept by no record.
        result = self._authenticate("XOAUTH2", LoginPassword(login.encode(), token.encode()))
        is_refused_token = not result.success and self._scripted.script.auth_reply is None
        if is_refused_token and await self.challenge_auth(GMAIL_ERROR_CHALLENGE) is MISSING:
            return AuthResult(success=False, handled=True)
        return result

    async def smtp_STARTTLS(self, arg: str) -> None:
        reply = self._scripted.script.starttls_reply
        if reply is not None and not arg:
            await self.push(reply)
            return
        await super().smtp_STARTTLS(arg)


def _server_tls_context(cert: IssuedCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    return context


class ScriptedSmtpServer:
    """A real SMTP server on 127.0.0.1:<free port>, in a thread, behaving as scripted."""

    host = LOOPBACK

    def __init__(self, script: SmtpdScript | None = None, **changes: Any) -> None:
        self.script = dataclasses.replace(script or SmtpdScript(), **changes)
        if self.script.implicit_tls and not self.script.cert:
            raise ValueError("implicit TLS needs a cert (test_ca.issue())")
        if "XOAUTH2" in self.script.auth_mechanisms and self.script.oauth is None:
            raise ValueError("XOAUTH2 needs oauth=, the OAuthServer whose tokens it accepts")
        self.port = 0
        self.commands: list[ReceivedCommand] = []
        self.auth_attempts: list[AuthAttempt] = []
        self.messages: list[ReceivedMessage] = []
        self.errors: list[BaseException] = []  # handler exceptions and failed TLS handshakes
        self.sessions = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: list[_ScriptedSMTP] = []

    # Recording, called from the server thread.
    def _next_session(self) -> int:
        with self._lock:
            self.sessions += 1
            return self.sessions

    def _command(self, command: ReceivedCommand) -> None:
        with self._lock:
            self.commands.append(command)

    def _received(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _authenticate(
        self,
        smtp: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        password = auth_data.password.decode() if isinstance(auth_data, LoginPassword) else None
        if self.script.auth_reply is not None:
            is_success, message = False, self.script.auth_reply
        else:
            is_success = password is not None and self._is_proven(mechanism, login, password)
            message = None if is_success else self.script.auth_failure_reply
        with self._lock:
            self.auth_attempts.append(
                AuthAttempt(smtp.session_number, mechanism, login, is_success, smtp.is_tls)
            )
        return AuthResult(success=is_success, handled=False, message=message, auth_data=auth_data)

    def _is_proven(self, mechanism: str, login: str, secret: str) -> bool:
        """The password `users` has for the login; for XOAUTH2, an access token the script's
        OAuth server issued to this login (case aside) and has not expired or revoked."""
        if mechanism != "XOAUTH2":
            return self.script.users.get(login) == secret
        assert self.script.oauth is not None  # __init__ refuses XOAUTH2 without it
        return self.script.oauth.token_may_act_as(secret, login)

    # What tests ask.
    def verbs(self, session: int | None = None) -> list[str]:
        return [c.verb for c in self.commands if session is None or c.session == session]

    @property
    def has_mail_before_tls(self) -> bool:
        """True if AUTH, MAIL, RCPT or DATA ever arrived on a connection not (yet) encrypted."""
        return any(c.verb in _SENSITIVE_BEFORE_TLS and not c.is_tls for c in self.commands)

    @property
    def has_envelope(self) -> bool:
        """True if any MAIL, RCPT or DATA arrived at all."""
        return any(c.verb in _ENVELOPE_COMMANDS for c in self.commands)

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
            time.sleep(0.01)
        return list(self.messages)

    # Life cycle.
    def _factory(self) -> _ScriptedSMTP:
        script = self.script
        starttls_context = None
        if script.cert and script.offer_starttls and not script.implicit_tls:
            starttls_context = _server_tls_context(script.cert)
        mechanisms = {"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}
        smtp = _ScriptedSMTP(
            _Handler(self),
            server=self,
            hostname=script.hostname,
            ident="ESMTP Postroom test server",
            tls_context=starttls_context,
            enable_SMTPUTF8=script.smtputf8,
            # aiosmtpd only counts STARTTLS as TLS; on an implicit TLS port AUTH is safe at once.
            auth_require_tls=not (script.auth_before_tls or script.implicit_tls),
            auth_exclude_mechanism=sorted(mechanisms - set(script.auth_mechanisms)),
            authenticator=self._authenticate,
            loop=self._loop,
        )
        self._connections.append(smtp)
        return smtp

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        # A client that rejects our certificate makes asyncio report a failed handshake;
        # record it for the test instead of printing a traceback.
        loop.set_exception_handler(
            lambda _loop, context: self.errors.append(
                context.get("exception") or RuntimeError(context.get("message", ""))
            )
        )
        implicit = _server_tls_context(self.script.cert) if self.script.implicit_tls else None
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._factory, host=LOOPBACK, port=0, ssl=implicit)
            )
        except OSError as error:
            self.errors.append(error)
            ready.set()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        loop.call_soon(ready.set)
        loop.run_forever()
        self._server.close()
        for connection in self._connections:
            if connection.transport is not None:
                connection.transport.close()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(self._server.wait_closed())
        loop.close()

    def start(self) -> ScriptedSmtpServer:
        assert self._thread is None, "already started"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or not self.port:
            raise RuntimeError(f"scripted SMTP server did not start: {self.errors}")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> ScriptedSmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def scripted_smtpd_servers() -> Iterator[Callable[..., ScriptedSmtpServer]]:
    """Yield `start(script=None, **changes)`; every server started is stopped at the end."""
    servers: list[ScriptedSmtpServer] = []

    def start(script: SmtpdScript | None = None, **changes: Any) -> ScriptedSmtpServer:
        server = ScriptedSmtpServer(script, **changes).start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def scripted_smtpd() -> Iterator[Callable[..., ScriptedSmtpServer]]:
    """`scripted_smtpd(**script_fields)` starts a ScriptedSmtpServer for this test."""
    with scripted_smtpd_servers() as start:
        yield start


@contextmanager
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 where nothing listens: a bound, non-listening socket holds it,
    so connecting gets "connection refused" and no other test can take the port meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        yield holder.getsockname()[1]
