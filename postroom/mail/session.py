"""Open an SMTP session as the settings say: connect, greeting, EHLO, STARTTLS, AUTH.

`SmtpSession` is Postroom's one SMTP client. Delivery (`SmtpConnection` in
postroom.mail.delivery, which adds the mail transactions) and the connection check
(postroom.mail.diagnostics) both open their sessions with `open()`: the same stages in the
same order, with the same decisions about the TLS policy, EHLO and its HELO fallback, the AUTH
mechanism and when the password may be sent, and the timeouts. The check passes `on_stage` to
record each step as it completes; delivery does not.

Opening raises only `SmtpSessionError`: the stage that failed, the verdict on it
(postroom.mail.classify) and the server's reply, or, when Postroom stopped by itself (no
STARTTLS where encryption is required, no AUTH it can use, a password that would travel in
clear), the `Diagnosis` that says so — the same words the check shows and the Outbox records.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtplib.errors import SMTPException, SMTPResponseException
from aiosmtplib.esmtp import parse_esmtp_extensions
from aiosmtplib.response import SMTPResponse

from postroom.core.errors import PostroomError
from postroom.mail.advice import (
    Diagnosis,
    diagnose_auth_mechanism,
    diagnose_auth_not_offered,
    diagnose_oauth_token,
    diagnose_password_in_clear,
    diagnose_starttls_not_offered,
)
from postroom.mail.auth import (
    AUTO,
    TokenUnavailableError,
    auth_exchange,
    auth_mechanism_choose,
    xoauth2_exchange,
)
from postroom.mail.classify import (
    PAUSE_SERVER,
    Failure,
    Verdict,
    classify_missing_reply,
    classify_reply,
)
from postroom.mail.config import AccessTokens, SmtpServerConfig, TlsPolicy
from postroom.mail.protocol import ReplyQueueProtocol
from postroom.mail.replies import Reply, ReplyClass, ReplyCode, Stage
from postroom.mail.tls import TlsSessionInfo, client_tls_context, tls_session_info

# RFC 5321 §4.1.1.1: EHLO names a host (or an address literal, when it has no usable name).
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")
CONNECTION_ERRORS = (SMTPException, OSError, TimeoutError)
# Nothing depends on the reply to QUIT: a server slow to say goodbye must not hold a worker
# or the person waiting for Check connection.
_QUIT_TIMEOUT = 5.0
# asyncio's own handshake timer only backs up the connect timeout around it, which fires
# first and so is the one reported.
_HANDSHAKE_MARGIN = 1.0

StageDone = Callable[[Stage], None]


class StartTls(enum.Enum):
    """What became of STARTTLS while the session opened."""

    IMPLICIT = "implicit"  # TLS from the first byte: nothing to upgrade
    TURNED_OFF = "turned_off"  # TLS mode None
    NOT_OFFERED = "not_offered"  # encryption optional and not offered: plain text
    REFUSED = "refused"  # encryption optional and STARTTLS refused: plain text
    UPGRADED = "upgraded"


class SmtpSessionError(PostroomError):
    """Opening the session failed (connect, greeting, EHLO, STARTTLS or AUTH)."""

    code = "smtp_session"

    def __init__(
        self,
        stage: Stage,
        verdict: Verdict,
        reply: Reply,
        *,
        failure: Failure | None = None,
        cause: BaseException | None = None,
        diagnosis: Diagnosis | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(f"{stage.value}: {reply}")
        self.stage = stage
        self.verdict = verdict
        self.reply = reply
        self.failure = failure  # why no reply came, when none came
        self.cause = cause  # the exception behind `failure`
        self.diagnosis = diagnosis  # when Postroom stopped by itself
        self.timeout = timeout  # how long a reply was waited for, when it did not come


@functools.cache
def local_host_name() -> str:
    """The name Postroom greets with when no HELO name is set: the machine's FQDN."""
    return socket.getfqdn()


def describe_failure(stage: Stage, error: BaseException, timeout: float) -> tuple[Failure, str]:
    """Turn an exception met while waiting for a reply into a `Failure` and plain words."""
    what = stage.awaiting
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failure.TLS_CERTIFICATE, f"TLS certificate not accepted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return Failure.TLS_HANDSHAKE, f"TLS handshake failed: {error.reason or error}"
    if isinstance(error, TimeoutError):
        return Failure.TIMEOUT, f"no reply {what} within {timeout:g} s"
    if isinstance(error, SMTPResponseException):
        return Failure.GARBAGE, f"not an SMTP reply {what}: {error.message}"
    if isinstance(error, ConnectionRefusedError):
        return Failure.REFUSED, f"connection refused: {error.strerror or error}"
    if isinstance(error, OSError) and not isinstance(error, ConnectionError):
        return Failure.REFUSED, f"cannot connect: {error.strerror or error}"
    return Failure.DISCONNECTED, f"the server closed the connection {what}"


class SmtpSession:
    """One SMTP session and what the server told while it opened."""

    def __init__(self, config: SmtpServerConfig, *, tls_context: ssl.SSLContext | None = None):
        self.config = config
        self._tls_context = tls_context
        self._protocol: ReplyQueueProtocol | None = None
        self._is_retired = False  # the server said 421 or the session is out of step
        self.opened_at = 0.0
        self.last_used_at = 0.0
        self._forget()

    def _forget(self) -> None:
        """Drop what an earlier session learnt."""
        self.extensions: dict[str, str] = {}  # EHLO keywords (lower case) -> parameters
        self.auth_methods: list[str] = []  # AUTH mechanisms offered (upper case)
        self.is_tls = False
        self.greeting: SMTPResponse | None = None
        self.ehlo_response: SMTPResponse | None = None  # to EHLO (or to HELO)
        self.ehlo_refusal: Reply | None = None  # EHLO refused, HELO accepted: no ESMTP
        self.greeted_as = ""  # the name said in EHLO
        self.offers_starttls = False  # in the EHLO before any TLS
        self.starttls = StartTls.IMPLICIT
        self.starttls_refusal: Reply | None = None
        self.auth_mechanism = ""
        self.auth_response: SMTPResponse | None = None

    def __repr__(self) -> str:
        state = "open" if self.is_usable else "closed"
        return f"<{type(self).__name__} {self.server} {state}>"

    @property
    def server(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def is_usable(self) -> bool:
        """True if the session is open and may take another command (no I/O: cheap)."""
        protocol = self._protocol
        return protocol is not None and protocol.is_usable and not self._is_retired

    def tls_info(self) -> TlsSessionInfo | None:
        """Protocol, cipher and certificate of the session's TLS, once encrypted."""
        transport = self._protocol.transport if self._protocol is not None else None
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        return tls_session_info(ssl_object) if ssl_object is not None else None

    # Opening -----------------------------------------------------------------------------------

    async def open(
        self, *, sock: socket.socket | None = None, on_stage: StageDone | None = None
    ) -> None:
        """Connect, greet, secure and log in as the settings say. Raise SmtpSessionError.

        `sock`: a TCP connection already made to the server (the check makes its own, to
        report name resolution and each address tried); `on_stage(stage)` is called as each
        stage completes, STARTTLS included when there was nothing to upgrade.
        """
        if self.is_usable:
            return
        self.abort()
        self._is_retired = False
        done = on_stage or (lambda stage: None)
        try:
            await self._connect(sock)
            done(Stage.CONNECT)
            await self._greet()
            done(Stage.GREETING)
            await self._hello()
            done(Stage.EHLO)
            await self._secure()
            done(Stage.STARTTLS)
            if self.starttls is StartTls.UPGRADED:
                await self._hello()
                done(Stage.EHLO)
            await self._authenticate()
            done(Stage.AUTH)
        except SmtpSessionError as error:
            if error.failure is None and error.reply.code != ReplyCode.SERVICE_UNAVAILABLE:
                await self.close()  # the server is still listening: leave politely (§4.1.1.10)
            self.abort()
            raise
        except BaseException:
            self.abort()
            raise
        self.opened_at = self.last_used_at = time.monotonic()

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = client_tls_context(ca_pem=self.config.ca_pem)
        return self._tls_context

    async def _connect(self, sock: socket.socket | None) -> None:
        config, loop = self.config, asyncio.get_running_loop()
        is_implicit = config.tls is TlsPolicy.IMPLICIT
        protocol = ReplyQueueProtocol(loop=loop)
        timeout = config.timeouts.connect
        tls: dict[str, Any] = {}
        if is_implicit:
            tls = {
                "ssl": self._tls(),
                "server_hostname": config.host,
                "ssl_handshake_timeout": timeout + _HANDSHAKE_MARGIN,
            }
        if sock is None:
            connecting = loop.create_connection(lambda: protocol, config.host, config.port, **tls)
        else:
            connecting = loop.create_connection(lambda: protocol, sock=sock, **tls)
        try:
            await asyncio.wait_for(connecting, timeout=timeout)
        except (OSError, TimeoutError) as error:
            raise self._failed(Stage.CONNECT, error, timeout) from None
        self._forget()
        self._protocol = protocol
        self.is_tls = is_implicit

    async def _greet(self) -> None:
        # The connect timeout covers the greeting too (docs/smtp-settings.md): a server that
        # takes the connection and stays silent that long is no more usable than one that
        # does not answer at all.
        timeout = self.config.timeouts.connect
        self.greeting = await self._exchange_raw(Stage.GREETING, b"", timeout=timeout)
        reply = Reply.parse(self.greeting.code, self.greeting.message)
        if reply.code != ReplyCode.READY:
            raise SmtpSessionError(Stage.GREETING, self._verdict(Stage.GREETING, reply), reply)

    async def _hello(self) -> None:
        host_name = self.config.helo_name or await asyncio.to_thread(local_host_name)
        name = host_name if _HOSTNAME.match(host_name) else self._address_literal()
        self.greeted_as = name
        response = await self._exchange_raw(Stage.EHLO, f"EHLO {name}\r\n".encode("ascii"))
        reply = Reply.parse(response.code, response.message)
        if reply.code == ReplyCode.COMPLETED:
            self.ehlo_response, self.ehlo_refusal = response, None
            # The raw reply, not `reply`: a reply text is cut at 512 characters, and a long
            # first line must not hide the extensions after it.
            extensions, methods = parse_esmtp_extensions(f"{response.code} {response.message}")
            self.extensions, self.auth_methods = extensions, [m.upper() for m in methods]
            return
        if reply.reply_class is ReplyClass.PERMANENT_NEGATIVE:
            # RFC 5321 §3.2: a server that does not know EHLO gets HELO (no extensions).
            helo = await self._exchange_raw(Stage.EHLO, f"HELO {name}\r\n".encode("ascii"))
            if helo.code == ReplyCode.COMPLETED:
                self.ehlo_response, self.ehlo_refusal = helo, reply
                self.extensions, self.auth_methods = {}, []
                return
            reply = Reply.parse(helo.code, helo.message)
        raise SmtpSessionError(Stage.EHLO, self._verdict(Stage.EHLO, reply), reply)

    def _address_literal(self) -> str:
        # RFC 5321 §4.1.4: without a usable host name, greet with our address in brackets.
        assert self._protocol is not None and self._protocol.transport is not None
        return f"[{self._protocol.transport.get_extra_info('sockname')[0]}]"

    async def _secure(self) -> None:
        policy, config = self.config.tls, self.config
        self.offers_starttls = "starttls" in self.extensions
        if policy is TlsPolicy.IMPLICIT:
            self.starttls = StartTls.IMPLICIT
            return
        if policy is TlsPolicy.NONE:
            self.starttls = StartTls.TURNED_OFF
            return
        is_required = policy is TlsPolicy.STARTTLS_REQUIRED
        if not self.offers_starttls:
            if not is_required:
                self.starttls = StartTls.NOT_OFFERED
                return
            missing = diagnose_starttls_not_offered(
                port=config.port, is_required=True, has_login=config.has_auth
            )
            raise self._stopped(Stage.STARTTLS, missing)
        reply = await self._command(Stage.STARTTLS, b"STARTTLS\r\n")
        if reply.code == ReplyCode.SERVICE_UNAVAILABLE:
            raise SmtpSessionError(Stage.STARTTLS, self._verdict(Stage.STARTTLS, reply), reply)
        if reply.code != ReplyCode.READY:
            if not is_required:  # RFC 3207 §4: the client decides; optional goes on in clear
                self.starttls, self.starttls_refusal = StartTls.REFUSED, reply
                return
            # Even a "454 try later" is for a person to look at when encryption is required:
            # it repeats for every message, and plain text is not an option.
            raise SmtpSessionError(Stage.STARTTLS, PAUSE_SERVER, reply)
        await self._start_tls()
        self.starttls = StartTls.UPGRADED
        self.extensions, self.auth_methods = {}, []  # RFC 3207 §4.2: forget the plain text

    async def _start_tls(self) -> None:
        protocol, loop, timeout = self._protocol, asyncio.get_running_loop(), self.config.timeouts
        assert protocol is not None and protocol.transport is not None
        protocol.ensure_nothing_buffered()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    protocol.transport,  # type: ignore[arg-type]
                    protocol,
                    self._tls(),
                    server_hostname=self.config.host,
                    ssl_handshake_timeout=timeout.connect + _HANDSHAKE_MARGIN,
                ),
                timeout=timeout.connect,
            )
        except CONNECTION_ERRORS as error:
            raise self._failed(Stage.STARTTLS, error, timeout.connect) from None
        if transport is None:
            closed = ConnectionResetError("closed during TLS")
            raise self._failed(Stage.STARTTLS, closed, timeout.connect)
        protocol.transport = transport
        self.is_tls = True

    async def _authenticate(self) -> None:
        config = self.config
        if not config.has_auth:
            return
        if "auth" not in self.extensions:
            raise self._stopped(
                Stage.AUTH,
                diagnose_auth_not_offered(
                    is_encrypted=self.is_tls, offers_starttls=self.offers_starttls, port=config.port
                ),
            )
        mechanism = auth_mechanism_choose(wanted=config.auth_method, offered=self.auth_methods)
        if mechanism is None:
            wanted = config.auth_method.upper()
            diagnosis = diagnose_auth_mechanism(
                wanted="auto" if wanted == AUTO else wanted, offered=self.auth_methods
            )
            raise self._stopped(Stage.AUTH, diagnosis)
        if not config.may_send_password(is_encrypted=self.is_tls):
            # Like a missing STARTTLS when encryption is required: a setting to fix, the same
            # for every message, so the server pauses with the reason shown on the Outbox.
            in_clear = diagnose_password_in_clear(
                port=config.port,
                is_tls_off=config.tls is TlsPolicy.NONE,
                offers_starttls=self.offers_starttls,
            )
            raise self._stopped(Stage.AUTH, in_clear)
        self.auth_mechanism = mechanism
        if config.access_tokens is not None:
            response = await self._log_in_with_token(config.access_tokens)
        else:
            response = await auth_exchange(
                mechanism, login=config.login, password=config.password, command=self._auth_line
            )
        self.auth_response = response
        reply = Reply.parse(response.code, response.message)
        if reply.code != ReplyCode.AUTH_SUCCESSFUL:
            raise SmtpSessionError(Stage.AUTH, self._verdict(Stage.AUTH, reply), reply)

    async def _auth_line(self, line: bytes) -> SMTPResponse:
        return await self._exchange_raw(Stage.AUTH, line)

    async def _log_in_with_token(self, tokens: AccessTokens) -> SMTPResponse:
        """XOAUTH2 with the route's access token; once more with a renewed one when the
        server refuses it (revoked or expired early), as Google and Microsoft advise."""
        response: SMTPResponse | None = None
        for renew in (False, True):
            try:
                token = await tokens.get(renew=renew)
            except TokenUnavailableError as error:
                raise self._stopped(Stage.AUTH, diagnose_oauth_token(error.message)) from None
            response = await xoauth2_exchange(
                login=self.config.login, token=token, command=self._auth_line
            )
            if response.code != ReplyCode.AUTH_FAILED:
                break
        assert response is not None
        return response

    # Talking -------------------------------------------------------------------------------------

    def _stopped(self, stage: Stage, diagnosis: Diagnosis) -> SmtpSessionError:
        """Postroom stops by itself: a setting to fix, the same for every message."""
        reply = Reply.missing(diagnosis.sentence)
        return SmtpSessionError(stage, PAUSE_SERVER, reply, diagnosis=diagnosis)

    def _failed(self, stage: Stage, error: BaseException, timeout: float) -> SmtpSessionError:
        """No usable reply came: `error` says why."""
        failure, text = describe_failure(stage, error, timeout)
        verdict = classify_missing_reply(failure, is_final_dot_sent=False)
        missing = Reply.missing(text)
        return SmtpSessionError(
            stage, verdict, missing, failure=failure, cause=error, timeout=timeout
        )

    def _verdict(self, stage: Stage, reply: Reply) -> Verdict:
        if reply.code == ReplyCode.SERVICE_UNAVAILABLE:
            self._is_retired = True  # RFC 5321 §3.8: 421 means the server closes the channel
        return classify_reply(stage, reply)

    async def _exchange_raw(
        self, stage: Stage, line: bytes, *, timeout: float | None = None
    ) -> SMTPResponse:
        """Write `line` (if any) and read the one reply owed; raise SmtpSessionError if none
        comes."""
        assert self._protocol is not None
        timeout = self.config.timeouts.command if timeout is None else timeout
        try:
            if line:
                self._protocol.send(line, replies=1)
            return await self._protocol.read_reply(timeout)
        except CONNECTION_ERRORS as error:
            raise self._failed(stage, error, timeout) from None

    async def _command(self, stage: Stage, line: bytes) -> Reply:
        response = await self._exchange_raw(stage, line)
        return Reply.parse(response.code, response.message)

    # Closing -------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Say QUIT (RFC 5321 §4.1.1.10) and close; never raises."""
        protocol = self._protocol
        if protocol is not None and protocol.is_usable:
            try:
                protocol.send(b"QUIT\r\n", replies=1)
                await protocol.read_reply(min(self.config.timeouts.command, _QUIT_TIMEOUT))
            except CONNECTION_ERRORS:
                pass  # the server hung up first: nothing left to say
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without QUIT."""
        if self._protocol is not None:
            self._protocol.abort()
        self._protocol = None
        self.is_tls = False

    def _retire(self) -> None:
        """Never use this session again (421, or out of step); drop it."""
        self._is_retired = True
        if self._protocol is not None:
            self._protocol.abort()
