"""Check the connection to an SMTP server step by step, and optionally send a test email.

`check_connection` is a delivery session that records its steps: it opens `SmtpConnection`,
the client the outbox delivers with, with the same stages and decisions (TLS policy, EHLO and
its HELO fallback, the AUTH mechanism, when the password may go out, timeouts), and notes each
stage as it completes — name resolution, TCP, TLS, greeting, EHLO, STARTTLS, certificate,
AUTH. Then MAIL FROM for every sender, reset at once (nothing is sent), and, when asked, the
test email as a real delivery. A failed step says in plain words what to change and stops the
steps that depend on it: with TLS required nothing after a failed or missing STARTTLS is
sent, and the password goes out unencrypted only when the administrator allowed it — as for
delivery, since it is the same code. The password never appears in a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
from email.message import EmailMessage
from typing import Any

from postroom.mail import advice, tls_advice
from postroom.mail.advice import Diagnosis
from postroom.mail.check_failures import (
    no_reply_diagnosis,
    refusal_diagnosis,
    reply_excerpt,
    session_failure,
)
from postroom.mail.check_report import (
    CheckReport,
    CheckStep,
    StepStatus,
    reply_text,
    server_text_excerpt,
)
from postroom.mail.check_steps import CheckStopped, StepRecorder
from postroom.mail.config import SmtpServerConfig, TlsPolicy
from postroom.mail.delivery import Envelope, SmtpConnection
from postroom.mail.outcome import RecipientOutcome
from postroom.mail.replies import Reply, ReplyCode, Stage
from postroom.mail.session import SmtpSessionError, StartTls
from postroom.mail.testmail import build_test_message, message_bytes, queue_id_from_reply
from postroom.mail.tls import CustomCaError, client_tls_context

__all__ = ["CheckReport", "CheckStep", "StepStatus", "check_connection", "send_test_email"]

# Warn while there is still time to renew: Let's Encrypt renews 30 days ahead, so a
# certificate this close to its end has missed renewals.
_CERT_WARN_DAYS = 14


def _unique(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for address in (a.strip() for a in addresses):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            kept.append(address)
    return kept


class _ConnectionCheck(StepRecorder):
    """One run of the check: the delivery session and the steps recorded so far."""

    def __init__(self, config: SmtpServerConfig) -> None:
        super().__init__()
        self.config = config
        self.connection = SmtpConnection(config)
        self.sock: socket.socket | None = None
        self._stage_started = 0.0

    def lost(self, key: str, error: SmtpSessionError, **step: Any) -> CheckStopped:
        """No reply came to a probe: the connection dropped or timed out."""
        timeout = error.timeout or self.config.timeouts.command
        return self.fail(
            key, no_reply_diagnosis(error.stage, error.failure, timeout=timeout), **step
        )

    @property
    def sends_password_in_clear(self) -> bool:
        """A login is set and may go out unencrypted: what the plain-text warnings say."""
        return self.config.has_auth and self.config.may_send_password(is_encrypted=False)

    # -- before SMTP: settings, name, TCP ----------------------------------------------------

    def build_tls_context(self) -> None:
        if self.config.tls is TlsPolicy.NONE:
            return
        try:
            context = client_tls_context(ca_pem=self.config.ca_pem)
        except CustomCaError as error:
            diagnosis = tls_advice.diagnose_custom_ca(message=error.message)
            raise self.fail("tls_settings", diagnosis) from None
        self.connection = SmtpConnection(self.config, tls_context=context)

    async def resolve(self) -> list[tuple[int, Any]]:
        host, port, timeout = self.config.host, self.config.port, self.config.timeouts.connect
        started = time.perf_counter()
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                timeout,
            )
        except (OSError, UnicodeError) as error:
            failure = error if isinstance(error, socket.gaierror) else None
            if isinstance(error, TimeoutError):
                failure = socket.gaierror(socket.EAI_AGAIN, "timed out")
            failure = failure or socket.gaierror(socket.EAI_NONAME, str(error))
            diagnosis = advice.diagnose_dns_failure(host=host, error=failure)
            raise self.fail("dns", diagnosis, started=started, details=[str(error)]) from None
        addresses: list[tuple[int, Any]] = []
        for family, _type, _proto, _name, sockaddr in infos:
            if (family, sockaddr) not in addresses:
                addresses.append((family, sockaddr))
        shown = ", ".join(sockaddr[0] for _family, sockaddr in addresses)
        summary = f"{host} is an IP address." if shown == host else f"{host} → {shown}"
        self.add("dns", StepStatus.OK, summary, started=started)
        return addresses

    async def connect_tcp(self, addresses: list[tuple[int, Any]]) -> socket.socket:
        port, timeout = self.config.port, self.config.timeouts.connect
        started = time.perf_counter()
        failures: list[OSError] = []
        details: list[str] = []
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(
                    asyncio.get_running_loop().sock_connect(sock, sockaddr), timeout
                )
            except OSError as error:
                sock.close()
                failures.append(error)
                reason = "timed out" if isinstance(error, TimeoutError) else error.strerror
                details.append(f"{sockaddr[0]} port {port}: {reason or error}")
                continue
            summary = f"Connected to {sockaddr[0]} port {port}."
            self.add("tcp", StepStatus.OK, summary, details=details, started=started)
            return sock
        diagnosis = advice.diagnose_connect_failure(
            host=self.config.host, port=port, error=failures[0], timeout=timeout
        )
        raise self.fail("tcp", diagnosis, started=started, details=details)

    # -- the session: TLS, greeting, EHLO, STARTTLS, AUTH, as delivery opens it --------------

    async def open(self, sock: socket.socket) -> None:
        """Open the delivery session on our socket, recording each stage as it completes."""
        self._stage_started = time.perf_counter()
        try:
            await self.connection.open(sock=sock, on_stage=self._stage_done)
        except SmtpSessionError as error:
            diagnosis, details = await session_failure(self.config, error)
            if error.stage is Stage.AUTH and self.connection.auth_mechanism:
                details = [f"Method: {self.connection.auth_mechanism}", *details]
            key = self._step_key(error.stage)
            started = None if error.diagnosis else self._stage_started
            raise self.fail(key, diagnosis, started=started, details=details) from None

    def _step_key(self, stage: Stage) -> str:
        if stage is Stage.CONNECT:
            return "tls" if self.config.tls is TlsPolicy.IMPLICIT else "greeting"
        if stage is Stage.EHLO and self.connection.starttls is StartTls.UPGRADED:
            return "ehlo_tls"
        return stage.value

    def _stage_done(self, stage: Stage) -> None:
        started, self._stage_started = self._stage_started, time.perf_counter()
        connection = self.connection
        if stage is Stage.CONNECT:
            if self.config.tls is TlsPolicy.IMPLICIT:
                self._tls_established("tls", started)
        elif stage is Stage.GREETING:
            assert connection.greeting is not None
            self.add("greeting", StepStatus.OK, reply_text(*connection.greeting), started=started)
        elif stage is Stage.EHLO:
            self._ehlo_done(self._step_key(stage), started)
        elif stage is Stage.STARTTLS:
            self._starttls_done(started)
        elif stage is Stage.AUTH:
            self._auth_done(started)

    def _tls_established(self, key: str, started: float | None) -> None:
        info = self.connection.tls_info()
        assert info is not None
        self.add(
            key,
            StepStatus.OK,
            f"Encrypted with {info.protocol} ({info.cipher}).",
            details=[f"Protocol: {info.protocol}", f"Cipher: {info.cipher}"],
            started=started,
        )
        cert = info.certificate
        if cert is None:
            self.add("certificate", StepStatus.WARN, "The server sent no certificate to show.")
            return
        trust = "the system store plus the custom CA" if self.config.ca_pem else "the system store"
        details = [*cert.describe(), f"Verified against {trust}; host name matches."]
        summary = (
            f"Valid and trusted: issued for {cert.names_text} by "
            f"{cert.issuer_common_name or cert.issuer}, until {cert.not_after:%Y-%m-%d}."
        )
        days_left = cert.days_left()
        if days_left < _CERT_WARN_DAYS:
            expiring = tls_advice.diagnose_certificate_expiring(days_left=days_left)
            self.add("certificate", StepStatus.WARN, summary, diagnosis=expiring, details=details)
        else:
            self.add("certificate", StepStatus.OK, summary, details=details)

    def _ehlo_done(self, key: str, started: float) -> None:
        connection = self.connection
        refusal = connection.ehlo_refusal
        if refusal is not None:  # RFC 5321 §4.1.1.1: HELO did, without any extension
            assert refusal.code is not None
            message = f"{refusal.enhanced} {refusal.text}".strip()
            no_esmtp = advice.diagnose_no_esmtp(code=refusal.code, message=message)
            self.add(key, StepStatus.WARN, diagnosis=no_esmtp, started=started)
            return
        summary, details = self._capabilities()
        helo_name = self.config.helo_name
        if helo_name and connection.greeted_as != helo_name:
            problem = (
                f"{helo_name!r} is not a host name, so Postroom greeted as {connection.greeted_as}"
            )
            unusable = advice.diagnose_helo_name(problem=problem)
            self.add(
                key, StepStatus.WARN, summary, diagnosis=unusable, details=details, started=started
            )
            return
        self.add(key, StepStatus.OK, summary, details=details, started=started)

    def _capabilities(self) -> tuple[str, list[str]]:
        connection = self.connection
        extensions = connection.extensions
        assert connection.ehlo_response is not None
        words = connection.ehlo_response.message.split()
        server_name = server_text_excerpt(words[0]) if words else "The server"
        size = extensions.get("size", "")
        offered = []
        if "size" in extensions:
            limit = int(size) if size.isdigit() else 0
            offered.append(f"SIZE {limit / 1_048_576:.0f} MB" if limit else "SIZE (no limit given)")
        offered += [
            k.upper() for k in ("pipelining", "starttls", "smtputf8", "8bitmime") if k in extensions
        ]
        auth = connection.auth_methods
        if auth:
            offered.append("AUTH " + " ".join(auth))

        def has(keyword: str, yes: str = "yes", no: str = "no") -> str:
            return yes if keyword in extensions else no

        details = [
            f"SIZE: {size + ' bytes' if size else 'not announced'}",
            f"PIPELINING: {has('pipelining')}",
            f"STARTTLS: {has('starttls', 'offered', 'not offered')}",
            f"AUTH: {' '.join(auth) if auth else 'not offered'}",
            f"SMTPUTF8: {has('smtputf8')}",
            f"8BITMIME: {has('8bitmime')}",
        ]
        return f"{server_name} offers {', '.join(offered) or 'no extensions'}.", details

    def _starttls_done(self, started: float) -> None:
        connection, has_login = self.connection, self.sends_password_in_clear
        state = connection.starttls
        if state is StartTls.UPGRADED:
            self._tls_established("starttls", started)
        elif state is StartTls.TURNED_OFF:
            if self.config.has_auth or connection.offers_starttls:
                tls_off = advice.diagnose_tls_off(
                    has_login=has_login, offers_starttls=connection.offers_starttls
                )
                self.add("starttls", StepStatus.WARN, diagnosis=tls_off)
            else:
                self.add("starttls", StepStatus.SKIP, "TLS is turned off (Advanced → TLS mode).")
        elif state is StartTls.NOT_OFFERED:
            missing = advice.diagnose_starttls_not_offered(
                port=self.config.port, is_required=False, has_login=has_login
            )
            self.add("starttls", StepStatus.WARN, diagnosis=missing)
        elif state is StartTls.REFUSED:
            assert connection.starttls_refusal is not None
            said = reply_excerpt(connection.starttls_refusal)
            refused = advice.diagnose_starttls_refused_plaintext(said=said, has_login=has_login)
            self.add("starttls", StepStatus.WARN, diagnosis=refused, started=started)

    def _auth_done(self, started: float) -> None:
        connection, config = self.connection, self.config
        if not config.has_auth:
            no_login = "No login set: the server must accept mail from this machine without one."
            self.add("auth", StepStatus.SKIP, no_login)
            return
        assert connection.auth_response is not None
        how = "encrypted" if connection.is_tls else "unencrypted"
        summary = f"Logged in as {config.login} with {connection.auth_mechanism} ({how})."
        details = [reply_text(*connection.auth_response)]
        self.add("auth", StepStatus.OK, summary, details=details, started=started)

    # -- MAIL FROM and the test email --------------------------------------------------------

    def _not_sendable(self, text: str, addresses: tuple[str, ...]) -> Diagnosis:
        """The session refused before MAIL FROM (postroom.mail.delivery's envelope checks)."""
        odd = next((address for address in addresses if not address.isascii()), None)
        if odd is not None and "smtputf8" not in self.connection.extensions:
            return advice.diagnose_smtputf8_missing(address=odd)
        return Diagnosis(
            "not_sendable",
            text[:1].upper() + text[1:] + ".",
            "Change the message or its addresses to what the server accepts.",
        )

    async def check_senders(self, senders: list[str]) -> None:
        if not senders:
            self.add("mail_from", StepStatus.WARN, diagnosis=advice.diagnose_no_senders())
            return
        for sender in senders:
            name = f"MAIL FROM {sender}"
            started = time.perf_counter()
            try:
                reply = await self.connection.mail_from_probe(sender)
            except SmtpSessionError as error:
                raise self.lost("mail_from", error, started=started, name=name) from None
            if reply.code is None:
                refusal = self._not_sendable(reply.text, (sender,))
                self.add("mail_from", StepStatus.FAIL, diagnosis=refusal, name=name)
                continue
            if reply.code == ReplyCode.COMPLETED:
                summary = f"Accepted: {reply_excerpt(reply)}"
                self.add("mail_from", StepStatus.OK, summary, started=started, name=name)
            else:
                refusal = refusal_diagnosis(self.config, Stage.MAIL, reply, address=sender)
                self.add(
                    "mail_from", StepStatus.FAIL, diagnosis=refusal, started=started, name=name
                )
            if not self.connection.is_usable:  # a 421: the server closes the channel
                raise CheckStopped("disconnected")
            try:
                await self.connection.reset()
            except SmtpSessionError as error:
                raise self.lost("mail_from", error, name="RSET") from None

    async def send_test(
        self, *, sender: str | None, recipient: str, message: bytes | EmailMessage | None
    ) -> None:
        """Deliver the test email with the delivery's own transaction, and show its replies."""
        config, name = self.config, f"Test email to {recipient}"
        if not sender:
            raise self.fail("test_email", advice.diagnose_no_test_sender(), name=name)
        if message is None:
            message = build_test_message(
                sender=sender, recipient=recipient, server=f"{config.host}:{config.port}"
            )
        details = (
            [f"Message-ID: {message['Message-ID']}"] if isinstance(message, EmailMessage) else []
        )
        started = time.perf_counter()
        transcript: list[tuple[Stage, Reply]] = []
        self.connection.transcript = transcript
        try:
            outcome = await self.connection.deliver(
                Envelope(sender, [recipient], message_bytes(message))
            )
        finally:
            self.connection.transcript = None
        details += [
            _transcript_line(stage, reply, sender, recipient) for stage, reply in transcript
        ]
        [result] = outcome.recipients
        if not result.is_success:
            diagnosis = self._test_refused(result, sender=sender)
            raise self.fail("test_email", diagnosis, started=started, details=details, name=name)
        said = reply_excerpt(Reply(result.code, result.enhanced, result.text))
        queue_id = queue_id_from_reply(result.text)
        if queue_id:
            details.append(f"Queue id: {queue_id}")
        summary = f"The server accepted the test email for {recipient}: {said}"
        self.add("test_email", StepStatus.OK, summary, details=details, started=started, name=name)

    def _test_refused(self, result: RecipientOutcome, *, sender: str) -> Diagnosis:
        stage = result.stage
        if result.code is not None:
            reply = Reply(result.code, result.enhanced, result.text)
            address = sender if stage is Stage.MAIL else result.address
            return refusal_diagnosis(self.config, stage, reply, address=address)
        if result.failure is not None:
            timeouts = self.config.timeouts
            waited = timeouts.data if stage is Stage.END_OF_DATA else timeouts.command
            return no_reply_diagnosis(stage, result.failure, timeout=waited)
        return self._not_sendable(result.text, (sender, result.address))

    async def close(self) -> None:
        # The check is over; a server that hangs up rudely changes nothing.
        with contextlib.suppress(OSError):
            await self.connection.close()
        if self.sock is not None:
            self.sock.close()


def _transcript_line(stage: Stage, reply: Reply, sender: str, recipient: str) -> str:
    said = reply_excerpt(reply)
    if stage is Stage.MAIL:
        return f"MAIL FROM:<{sender}> → {said}"
    if stage is Stage.RCPT:
        return f"RCPT TO:<{recipient}> → {said}"
    if stage is Stage.END_OF_DATA:
        return f"End of data → {said}"
    return f"{stage.command} → {said}"


async def check_connection(
    config: SmtpServerConfig,
    *,
    senders: list[str],
    test_recipient: str | None = None,
    test_message: bytes | EmailMessage | None = None,
) -> CheckReport:
    """Connect to the server as configured and report every step.

    `senders` (the company address first, then the users') are each tried with MAIL FROM and
    reset, nothing sent. With `test_recipient`, a test email from the first sender follows.
    """
    senders = _unique(senders)
    check = _ConnectionCheck(config)
    checked_at = dt.datetime.now(dt.UTC)
    try:
        check.build_tls_context()
        addresses = await check.resolve()
        check.sock = await check.connect_tcp(addresses)
        await check.open(check.sock)
        await check.check_senders(senders)
        if test_recipient:
            sender = senders[0] if senders else None
            await check.send_test(sender=sender, recipient=test_recipient, message=test_message)
    except CheckStopped:
        check.skip_rest(senders=senders, test_recipient=test_recipient)
    finally:
        await check.close()
    report = CheckReport(
        host=config.host,
        port=config.port,
        tls=config.tls,
        steps=check.steps,
        checked_at=checked_at,
        test_recipient=test_recipient,
    )
    return report.redact(config.password)


async def send_test_email(
    config: SmtpServerConfig,
    *,
    sender: str,
    recipient: str,
    message: bytes | EmailMessage | None = None,
) -> CheckReport:
    """Check the connection with `sender` only, then send a test email to `recipient`."""
    return await check_connection(
        config, senders=[sender], test_recipient=recipient, test_message=message
    )
