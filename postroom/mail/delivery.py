"""Deliver pre-rendered messages over one SMTP connection, and say what became of each recipient.

`SmtpConnection` opens a connection as the settings say (TLS policy, EHLO, AUTH), then runs
one mail transaction per `deliver(envelope)`, as many times as wanted, with PIPELINING
(RFC 2920) when the server offers it. It never raises for what a server answers or for a
broken connection: every recipient gets exactly one `RecipientOutcome` per attempt, and the
`DeliveryOutcome` says whether the server wants a pause (bad settings) or a slower pace.

It knows nothing of the outbox: the caller records outcomes and decides about retries.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
import time

from aiosmtplib.auth import auth_login_encode, auth_plain_encode
from aiosmtplib.errors import SMTPException, SMTPResponseException
from aiosmtplib.esmtp import parse_esmtp_extensions
from aiosmtplib.typing import SMTPStatus

from postroom.core.errors import PostroomError
from postroom.mail.advice import diagnose_password_in_clear
from postroom.mail.classify import (
    PAUSE_SERVER,
    PERMANENT,
    Failure,
    Reply,
    Stage,
    Verdict,
    classify_missing_reply,
    classify_reply,
    is_out_of_step,
)
from postroom.mail.config import SmtpServerConfig, TlsPolicy
from postroom.mail.outcome import (
    DeliveryOutcome,
    DeliveryRecord,
    Envelope,
    PreparedEnvelope,
    RecipientOutcome,
    TransactionRecord,
)
from postroom.mail.protocol import ReplyQueueProtocol
from postroom.mail.tls import client_tls_context

__all__ = ["DeliveryOutcome", "Envelope", "RecipientOutcome", "SmtpConnection", "SmtpSessionError"]

# RFC 5321 §4.1.1.1: EHLO names a host (or an address literal, when it has no usable name).
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")
_CONNECTION_ERRORS = (SMTPException, OSError, TimeoutError)


class SmtpSessionError(PostroomError):
    """Opening the session failed (connect, greeting, EHLO, STARTTLS or AUTH)."""

    code = "smtp_session"

    def __init__(self, stage: Stage, verdict: Verdict, reply: Reply) -> None:
        super().__init__(f"{stage.value}: {reply}")
        self.stage = stage
        self.verdict = verdict
        self.reply = reply


class _NoReplyError(Exception):
    """The session broke inside a transaction: no reply, garbage, or a 421 that ends it."""

    def __init__(self, failure: Failure, text: str, *, farewell: Reply | None = None) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text
        self.farewell = farewell  # the 421, when the server said why it leaves


@functools.cache
def _local_fqdn() -> str:
    return socket.getfqdn()


def _describe_failure(stage: Stage, error: BaseException, timeout: float) -> tuple[Failure, str]:
    """Turn an exception met while waiting for a reply into a `Failure` and plain words."""
    what = _STAGE_WORDS[stage]
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


_STAGE_WORDS = {
    Stage.CONNECT: "while connecting",
    Stage.GREETING: "to the greeting",
    Stage.EHLO: "to EHLO",
    Stage.STARTTLS: "to STARTTLS",
    Stage.AUTH: "to AUTH",
    Stage.ENVELOPE: "before MAIL FROM",
    Stage.MAIL: "to MAIL FROM",
    Stage.RCPT: "to RCPT TO",
    Stage.DATA: "to DATA",
    Stage.END_OF_DATA: "after the end of the message",
}


class SmtpConnection:
    """One SMTP session, reused for many messages. Not safe for concurrent `deliver` calls."""

    def __init__(
        self,
        config: SmtpServerConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._tls_context = tls_context
        self._protocol: ReplyQueueProtocol | None = None
        self.extensions: dict[str, str] = {}  # EHLO keywords (lower case) -> parameters
        self.is_tls = False
        self.transaction_count = 0  # MAIL transactions started on this session
        self.opened_at = 0.0
        self.last_used_at = 0.0
        self._is_retired = False  # the server said 421 or the session is out of step
        self._needs_rset = False

    def __repr__(self) -> str:
        state = "open" if self.is_usable else "closed"
        return f"<SmtpConnection {self.server} {state}>"

    @property
    def server(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def is_usable(self) -> bool:
        """True if the session is open and may take another message (no I/O: cheap)."""
        protocol = self._protocol
        return protocol is not None and protocol.is_usable and not self._is_retired

    @property
    def offers_pipelining(self) -> bool:
        return "pipelining" in self.extensions

    # Opening -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, greet, secure and log in as the settings say. Raise SmtpSessionError."""
        if self.is_usable:
            return
        self.abort()
        self._is_retired = False
        self._needs_rset = False
        self.transaction_count = 0
        try:
            await self._connect()
            await self._hello()
            await self._secure()
            await self._authenticate()
        except SmtpSessionError as error:
            if error.reply.code is not None and error.reply.code != SMTPStatus.domain_unavailable:
                await self.close()  # the server answered: leave politely (RFC 5321 §4.1.1.10)
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

    async def _connect(self) -> None:
        config, loop = self.config, asyncio.get_running_loop()
        is_implicit = config.tls is TlsPolicy.IMPLICIT
        protocol = ReplyQueueProtocol(loop=loop)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    host=config.host,
                    port=config.port,
                    ssl=self._tls() if is_implicit else None,
                    server_hostname=config.host if is_implicit else None,
                    ssl_handshake_timeout=config.timeouts.connect if is_implicit else None,
                ),
                timeout=config.timeouts.connect,
            )
        except (OSError, TimeoutError) as error:
            raise self._session_error(Stage.CONNECT, error, config.timeouts.connect) from None
        self._protocol = protocol
        self.is_tls = is_implicit
        # RFC 5321 §4.5.3.2.1: the greeting may take up to 5 minutes: the command timeout.
        greeting = await self._read(Stage.GREETING)
        if greeting.code != SMTPStatus.ready:
            raise SmtpSessionError(
                Stage.GREETING, self._verdict(Stage.GREETING, greeting), greeting
            )

    async def _hello(self) -> None:
        host_name = self.config.helo_name or await asyncio.to_thread(_local_fqdn)
        name = host_name.encode("ascii") if _HOSTNAME.match(host_name) else self._address_literal()
        reply = await self._command(Stage.EHLO, b"EHLO " + name + b"\r\n")
        if reply.code == SMTPStatus.completed:
            self.extensions, _ = parse_esmtp_extensions(f"{reply.code} {reply.text}")
            return
        if reply.code is not None and 500 <= reply.code < 600:
            # RFC 5321 §3.2: a server that does not know EHLO gets HELO (no extensions).
            reply = await self._command(Stage.EHLO, b"HELO " + name + b"\r\n")
            if reply.code == SMTPStatus.completed:
                self.extensions = {}
                return
        raise SmtpSessionError(Stage.EHLO, self._verdict(Stage.EHLO, reply), reply)

    def _address_literal(self) -> bytes:
        # RFC 5321 §4.1.4: without a usable host name, greet with our address in brackets.
        assert self._protocol is not None and self._protocol.transport is not None
        address = self._protocol.transport.get_extra_info("sockname")[0]
        return f"[{address}]".encode("ascii")

    async def _secure(self) -> None:
        policy = self.config.tls
        if policy in (TlsPolicy.IMPLICIT, TlsPolicy.NONE):
            return
        is_required = policy is TlsPolicy.STARTTLS_REQUIRED
        if "starttls" not in self.extensions:
            if not is_required:
                return
            raise SmtpSessionError(
                Stage.STARTTLS,
                PAUSE_SERVER,
                Reply.missing(
                    "the server does not offer STARTTLS and the settings require encryption; "
                    "nothing was sent"
                ),
            )
        reply = await self._command(Stage.STARTTLS, b"STARTTLS\r\n")
        if reply.code == SMTPStatus.domain_unavailable:
            raise SmtpSessionError(Stage.STARTTLS, self._verdict(Stage.STARTTLS, reply), reply)
        if reply.code != SMTPStatus.ready:
            if not is_required:
                return  # RFC 3207 §4: the client decides; opportunistic goes on in plain text
            # Even a "454 try later" is for a person to look at when encryption is required:
            # it repeats for every message, and plain text is not an option.
            raise SmtpSessionError(Stage.STARTTLS, PAUSE_SERVER, reply)
        await self._start_tls()
        self.extensions = {}  # RFC 3207 §4.2: forget what was said in plain text
        await self._hello()

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
                    ssl_handshake_timeout=timeout.connect,
                ),
                timeout=timeout.connect,
            )
        except _CONNECTION_ERRORS as error:
            raise self._session_error(Stage.STARTTLS, error, timeout.connect) from None
        if transport is None:
            raise self._session_error(
                Stage.STARTTLS, ConnectionResetError("closed during TLS"), timeout.connect
            )
        protocol.transport = transport
        self.is_tls = True

    async def _authenticate(self) -> None:
        config = self.config
        if not config.has_auth:
            return
        offered = set(self.extensions.get("auth", "").upper().split())
        if "auth" not in self.extensions:
            why = "the server does not offer AUTH" + ("" if self.is_tls else " without TLS")
            raise SmtpSessionError(Stage.AUTH, PAUSE_SERVER, Reply.missing(why))
        method = config.auth_method.upper()
        if method == "AUTO":
            method = next((m for m in ("PLAIN", "LOGIN") if m in offered), "")
        if method not in offered or method not in ("PLAIN", "LOGIN"):
            wanted = method or "PLAIN or LOGIN"
            why = f"the server offers AUTH {' '.join(sorted(offered)) or '(nothing)'}, not {wanted}"
            raise SmtpSessionError(Stage.AUTH, PAUSE_SERVER, Reply.missing(why))
        if not config.may_send_password(is_encrypted=self.is_tls):
            # Like a missing STARTTLS when encryption is required: a setting to fix, the same
            # for every message, so the server pauses with the reason shown on the Outbox.
            raise SmtpSessionError(Stage.AUTH, PAUSE_SERVER, Reply.missing(self._in_clear()))
        # The password only ever travels inside these commands: never in a text or a log.
        if method == "PLAIN":
            credentials = auth_plain_encode(config.login, config.password)
            reply = await self._command(Stage.AUTH, b"AUTH PLAIN " + credentials + b"\r\n")
            if reply.code == SMTPStatus.auth_continue:  # a server that ignores initial responses
                reply = await self._command(Stage.AUTH, credentials + b"\r\n")
        else:
            user, password = auth_login_encode(config.login, config.password)
            reply = await self._command(Stage.AUTH, b"AUTH LOGIN " + user + b"\r\n")
            if reply.code == SMTPStatus.auth_continue:
                reply = await self._command(Stage.AUTH, password + b"\r\n")
        if reply.code != SMTPStatus.auth_successful:
            raise SmtpSessionError(Stage.AUTH, self._verdict(Stage.AUTH, reply), reply)

    def _in_clear(self) -> str:
        diagnosis = diagnose_password_in_clear(
            port=self.config.port,
            is_tls_off=self.config.tls is TlsPolicy.NONE,
            offers_starttls="starttls" in self.extensions,
        )
        return f"{diagnosis.summary} {diagnosis.advice}"

    # Talking ----------------------------------------------------------------------------------

    def _session_error(
        self, stage: Stage, error: BaseException, timeout: float
    ) -> SmtpSessionError:
        failure, text = _describe_failure(stage, error, timeout)
        verdict = classify_missing_reply(failure, is_final_dot_sent=False)
        return SmtpSessionError(stage, verdict, Reply.missing(text))

    def _verdict(self, stage: Stage, reply: Reply) -> Verdict:
        if reply.code == SMTPStatus.domain_unavailable:
            self._is_retired = True  # RFC 5321 §3.8: 421 means the server closes the channel
        return classify_reply(stage, reply)

    async def _read(self, stage: Stage, timeout: float | None = None) -> Reply:
        """Read one owed reply; raise SmtpSessionError if none comes (opening only)."""
        assert self._protocol is not None
        timeout = self.config.timeouts.command if timeout is None else timeout
        try:
            response = await self._protocol.read_reply(timeout)
        except _CONNECTION_ERRORS as error:
            raise self._session_error(stage, error, timeout) from None
        return Reply.parse(response.code, response.message)

    async def _command(self, stage: Stage, line: bytes) -> Reply:
        assert self._protocol is not None
        try:
            self._protocol.send(line, replies=1)
        except _CONNECTION_ERRORS as error:
            raise self._session_error(stage, error, self.config.timeouts.command) from None
        return await self._read(stage)

    # Closing ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Say QUIT (RFC 5321 §4.1.1.10) and close; never raises."""
        protocol = self._protocol
        if protocol is not None and protocol.is_usable:
            try:
                protocol.send(b"QUIT\r\n", replies=1)
                await protocol.read_reply(self.config.timeouts.command)
            except _CONNECTION_ERRORS:
                pass  # the server hung up first: nothing left to say
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without QUIT."""
        if self._protocol is not None:
            self._protocol.abort()
        self._protocol = None
        self.extensions = {}
        self.is_tls = False

    # Delivering --------------------------------------------------------------------------------

    async def deliver(self, envelope: Envelope) -> DeliveryOutcome:
        """Send `envelope`, opening the session first if needed; return every recipient's fate.

        Recipients refused with "452 too many recipients" go in a next transaction on the same
        session (RFC 5321 §4.5.3.1.10), until all are done or no progress is made. A reused
        session found dead before the server answered anything of this message is reopened
        once: nothing can have been accepted on it.
        """
        prepared = PreparedEnvelope(envelope)
        record = DeliveryRecord(prepared)
        try:
            await self._deliver(prepared, record)
        except BaseException:
            # Cancelled in the middle of a conversation: replies may still be owed, so the
            # session can never be trusted to pair a reply with its command again.
            self.abort()
            raise
        self.last_used_at = time.monotonic()
        return record.outcome(self.server)

    async def _deliver(self, prepared: PreparedEnvelope, record: DeliveryRecord) -> None:
        may_reopen = self.is_usable
        while record.pending:
            if not self.is_usable:
                try:
                    await self.open()
                except SmtpSessionError as error:
                    record.decide_pending(error.stage, error.verdict, error.reply)
                    return
            refusal = self._envelope_refusal(prepared)
            if refusal is not None:
                record.decide_pending(Stage.ENVELOPE, PERMANENT, refusal)
                return
            transaction = await self._transaction(prepared, record.pending)
            if may_reopen and not transaction.has_reply:
                may_reopen = False
                continue  # the idle session had died; the loop opens a fresh one
            may_reopen = False
            record.add(transaction)  # leaves the "452 too many" recipients pending

    def _envelope_refusal(self, prepared: PreparedEnvelope) -> Reply | None:
        """Refuse, before MAIL FROM, what the server told us in EHLO it cannot take."""
        if prepared.needs_smtputf8 and "smtputf8" not in self.extensions:
            return Reply.missing(
                "the message needs SMTPUTF8 (a non-ASCII address or header) and the server "
                "does not offer it"
            )
        limit = _size_limit(self.extensions)
        if limit and prepared.size > limit:
            return Reply.missing(
                f"the message is {prepared.size} bytes; the server accepts at most {limit}"
            )
        return None

    def _mail_command(self, prepared: PreparedEnvelope) -> bytes:
        parameters = []
        if "size" in self.extensions:
            parameters.append(b" SIZE=%d" % prepared.size)  # RFC 1870 §6
        if prepared.is_8bit and "8bitmime" in self.extensions:
            parameters.append(b" BODY=8BITMIME")  # RFC 6152 §2
        if prepared.needs_smtputf8:
            parameters.append(b" SMTPUTF8")  # RFC 6531 §3.4
        sender = prepared.address_bytes(prepared.envelope.sender)
        return b"MAIL FROM:<" + sender + b">" + b"".join(parameters) + b"\r\n"

    async def _transaction(
        self, prepared: PreparedEnvelope, indexes: list[int]
    ) -> TransactionRecord:
        """Run RSET (if needed), MAIL, RCPT for `indexes`, DATA and the message, once.

        With PIPELINING (RFC 2920 §3.1) RSET, MAIL, every RCPT and DATA go in one write and
        their replies are read in order; without it each command waits for its reply, and
        DATA is not sent when no recipient was accepted (RFC 5321 §3.3).
        """
        result = TransactionRecord(prepared.envelope, list(indexes))
        recipients = prepared.envelope.recipients
        rset = [b"RSET\r\n"] if self._needs_rset else []
        mail = self._mail_command(prepared)
        rcpt = [b"RCPT TO:<" + prepared.address_bytes(recipients[i]) + b">\r\n" for i in indexes]
        pipelined = self.offers_pipelining
        self._needs_rset = True  # until the server answers the final "."
        self.transaction_count += 1
        try:
            if pipelined:
                group = [*rset, mail, *rcpt, b"DATA\r\n"]
                self._send(b"".join(group), replies=len(group))
            for line in rset:
                reply = await self._exchange(Stage.MAIL, line, pipelined, result)
                if reply.code != SMTPStatus.completed:
                    raise _NoReplyError(Failure.GARBAGE, f"RSET refused: {reply}")
            reply = await self._exchange(Stage.MAIL, mail, pipelined, result)
            if reply.code != SMTPStatus.completed:
                result.decide_all(Stage.MAIL, reply)
                if pipelined:  # the replies to RCPT and DATA still come (503s)
                    await self._skip_replies(Stage.RCPT, len(rcpt), result)
                    await self._skip_replies(Stage.DATA, 1, result)
                else:
                    self._needs_rset = False  # RFC 5321 §4.1.1.2: no transaction was started
                return result
            result.stage = Stage.RCPT
            for index, line in zip(indexes, rcpt, strict=True):
                reply = await self._exchange(Stage.RCPT, line, pipelined, result)
                result.recipient_reply(index, reply)
            if not result.accepted:
                if pipelined:  # DATA went with the group: the server refuses it
                    await self._skip_replies(Stage.DATA, 1, result)
                return result  # RSET starts the next transaction
            result.stage = Stage.DATA
            reply = await self._exchange(Stage.DATA, b"DATA\r\n", pipelined, result)
        except _NoReplyError as error:
            self._retire()
            result.fail_undecided(error.failure, error.text, farewell=error.farewell)
            return result
        if reply.code != SMTPStatus.start_input:
            result.decide_accepted(Stage.DATA, reply)
            return result
        result.stage = Stage.END_OF_DATA
        await self._send_message(prepared, result)
        return result

    async def _skip_replies(self, stage: Stage, count: int, result: TransactionRecord) -> None:
        """Read replies owed to pipelined commands that no longer matter."""
        for _ in range(count):
            reply = await self._exchange(stage, b"", True, result)
            if reply.code == SMTPStatus.start_input:
                # The server waits for a message no recipient was accepted for: nothing can
                # be sent safely, so the session is dropped.
                raise _NoReplyError(Failure.GARBAGE, f"{reply} with no recipient accepted")

    async def _send_message(self, prepared: PreparedEnvelope, result: TransactionRecord) -> None:
        protocol = self._protocol
        assert protocol is not None
        # One turn of the event loop lets a hang-up that came with the 354 be seen: a server
        # that closed before our final "." cannot have the message (temporary, not uncertain).
        await asyncio.sleep(0)
        is_written = False
        try:
            protocol.send(prepared.wire_data, replies=1)
            is_written = True
            response = await protocol.read_reply(self.config.timeouts.data)
        except _CONNECTION_ERRORS as error:
            # The final "." left us only if nothing of the message was still in our buffer.
            is_final_dot_sent = is_written and protocol.unsent_bytes == 0
            self._retire()
            failure, text = _describe_failure(Stage.END_OF_DATA, error, self.config.timeouts.data)
            result.fail_undecided(failure, text, is_final_dot_sent=is_final_dot_sent)
            return
        reply = Reply.parse(response.code, response.message)
        if is_out_of_step(Stage.END_OF_DATA, reply):
            self._retire()
            text = f"a reply that does not fit the end of the message: {reply}"
            result.fail_undecided(Failure.GARBAGE, text, is_final_dot_sent=True)
            return
        if reply.code == SMTPStatus.domain_unavailable:
            self._retire()
        else:
            self._needs_rset = False  # RFC 5321 §4.1.1.4: the reply to "." ends the transaction
        result.decide_accepted(Stage.END_OF_DATA, reply)

    def _send(self, data: bytes, *, replies: int) -> None:
        assert self._protocol is not None
        try:
            self._protocol.send(data, replies=replies)
        except _CONNECTION_ERRORS as error:
            failure, text = _describe_failure(Stage.MAIL, error, 0)
            raise _NoReplyError(failure, text) from None

    async def _exchange(
        self, stage: Stage, line: bytes, pipelined: bool, result: TransactionRecord
    ) -> Reply:
        """Send `line` (unless pipelined: then it is sent already) and read its reply."""
        assert self._protocol is not None
        if not pipelined:
            self._send(line, replies=1)
        timeout = self.config.timeouts.command
        try:
            response = await self._protocol.read_reply(timeout)
        except _CONNECTION_ERRORS as error:
            failure, text = _describe_failure(stage, error, timeout)
            raise _NoReplyError(failure, text) from None
        result.has_reply = True
        reply = Reply.parse(response.code, response.message)
        if reply.code == SMTPStatus.domain_unavailable:
            # RFC 5321 §3.8: 421 closes the channel; the replies still owed will not come.
            raise _NoReplyError(Failure.DISCONNECTED, str(reply), farewell=reply)
        if is_out_of_step(stage, reply):
            raise _NoReplyError(Failure.GARBAGE, f"unexpected reply {_STAGE_WORDS[stage]}: {reply}")
        return reply

    def _retire(self) -> None:
        self._is_retired = True
        if self._protocol is not None:
            self._protocol.abort()


def _size_limit(extensions: dict[str, str]) -> int:
    """The server's SIZE (RFC 1870 §4); 0 means none announced or no fixed limit."""
    value = extensions.get("size", "").strip()
    return int(value) if value.isdigit() else 0
