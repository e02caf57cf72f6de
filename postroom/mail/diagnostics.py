"""Check the connection to an SMTP server step by step, and optionally send a test email.

`check_connection` talks to the server with the client the outbox uses (aiosmtplib) and
records each step — name resolution, TCP, TLS, greeting, EHLO, STARTTLS, certificate, AUTH,
MAIL FROM for every sender — with what the server said and, when a step fails, what to change
(postroom.mail.advice). A failed step stops the steps that depend on it: when TLS is required,
nothing after a failed or missing STARTTLS is sent, so neither the password nor an address
crosses the network in plain text; without TLS, the password is sent only when the
administrator allowed it (`SmtpServerConfig.may_send_password`, as for delivery). The
password never appears in a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import time
from email.message import EmailMessage
from typing import Any

from aiosmtplib import (
    SMTP,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPHeloError,
    SMTPReadTimeoutError,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from postroom.mail import advice
from postroom.mail.advice import Diagnosis, reply_text
from postroom.mail.check_report import CheckReport, CheckStep, StepStatus, server_text_excerpt
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.testmail import build_test_message, message_bytes, queue_id_from_reply
from postroom.mail.tls import (
    CustomCaError,
    TlsSessionInfo,
    client_tls_context,
    fetch_certificate_unverified,
    probe_implicit_tls,
    probe_plain_greeting,
    tls_session_info,
)

__all__ = ["CheckReport", "CheckStep", "StepStatus", "check_connection", "send_test_email"]

# A probe only tells which protocol a port speaks: a TLS handshake or a greeting line arrives
# within milliseconds from any reachable server, so it need not wait the full connect timeout.
_PROBE_TIMEOUT = 10.0
# The check is over once QUIT is sent; a server slow to say goodbye must not hold the user.
_QUIT_TIMEOUT = 5.0
# Warn while there is still time to renew: Let's Encrypt renews 30 days ahead, so a
# certificate this close to its end has missed renewals.
_CERT_WARN_DAYS = 14
_AUTH_PREFERENCE = ("PLAIN", "LOGIN", "CRAM-MD5")  # one round trip first; CRAM-MD5 last resort
STEP_NAMES = {
    "tls_settings": "Custom CA certificate",
    "dns": "Name resolution",
    "tcp": "TCP connect",
    "tls": "TLS handshake",
    "certificate": "TLS certificate",
    "greeting": "Greeting",
    "ehlo": "EHLO",
    "starttls": "STARTTLS",
    "ehlo_tls": "EHLO after STARTTLS",
    "auth": "AUTH",
    "mail_from": "MAIL FROM",
    "test_email": "Test email",
}


class _Stop(Exception):
    """A step failed so that the steps after it cannot (or must not) run."""


def _unique(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for address in (a.strip() for a in addresses):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            kept.append(address)
    return kept


class _ConnectionCheck:
    """One run of the check: the client, the TLS context and the steps recorded so far."""

    def __init__(self, config: SmtpServerConfig) -> None:
        self.config = config
        self.timeouts: Timeouts = config.timeouts
        self.steps: list[CheckStep] = []
        self.client: SMTP | None = None
        self.sock: socket.socket | None = None
        self.tls_context: ssl.SSLContext | None = None
        self.offered_starttls = False

    # -- recording ---------------------------------------------------------------------------

    def add(
        self,
        key: str,
        status: StepStatus,
        summary: str = "",
        *,
        diagnosis: Diagnosis | None = None,
        details: list[str] | None = None,
        started: float | None = None,
        name: str = "",
    ) -> None:
        self.steps.append(
            CheckStep(
                key=key,
                name=name or STEP_NAMES[key],
                status=status,
                summary=summary or (diagnosis.summary if diagnosis else ""),
                details=details or [],
                advice=diagnosis.advice if diagnosis else "",
                code=diagnosis.code if diagnosis else "",
                duration_ms=None
                if started is None
                else round((time.perf_counter() - started) * 1000),
            )
        )

    def fail(self, key: str, diagnosis: Diagnosis, **step: Any) -> _Stop:
        """Record a failed step and return the _Stop for the caller to raise."""
        self.add(key, StepStatus.FAIL, diagnosis=diagnosis, **step)
        return _Stop(diagnosis.code)

    def lost(self, key: str, error: BaseException, *, phase: str, **step: Any) -> _Stop:
        """The connection dropped or a reply never came."""
        if isinstance(error, TimeoutError):
            diagnosis = advice.diagnose_command_timeout(phase=phase, timeout=self.timeouts.command)
        else:
            diagnosis = advice.diagnose_disconnected(phase=phase)
        return self.fail(key, diagnosis, **step)

    def refused(self, phase: str, error: SMTPResponseException, address: str = "") -> Diagnosis:
        return advice.diagnose_reply(
            phase=phase,
            code=error.code,
            message=error.message,
            host=self.config.host,
            login=self.config.login,
            address=address,
        )

    def skip_rest(self, *, senders: list[str], test_recipient: str | None) -> None:
        """Show the MAIL FROM checks and test email that a failed step kept from running."""
        done = {step.name for step in self.steps}
        for sender in senders:
            if f"MAIL FROM {sender}" not in done:
                self.add(
                    "mail_from",
                    StepStatus.SKIP,
                    "Not checked: an earlier step failed.",
                    name=f"MAIL FROM {sender}",
                )
        if test_recipient and not any(step.key == "test_email" for step in self.steps):
            self.add(
                "test_email",
                StepStatus.SKIP,
                "Not sent: an earlier step failed.",
                name=f"Test email to {test_recipient}",
            )

    @property
    def is_encrypted(self) -> bool:
        client = self.client
        return bool(client and client.is_connected and client.get_transport_info("sslcontext"))

    @property
    def sends_password_in_clear(self) -> bool:
        """A login is set and may go out unencrypted: what the plain-text warnings say."""
        return self.config.has_auth and self.config.may_send_password(is_encrypted=False)

    # -- before SMTP: settings, name, TCP ----------------------------------------------------

    def build_tls_context(self) -> None:
        if self.config.tls is TlsPolicy.NONE:
            return
        try:
            self.tls_context = client_tls_context(ca_pem=self.config.ca_pem)
        except CustomCaError as error:
            diagnosis = advice.diagnose_custom_ca(message=error.message)
            raise self.fail("tls_settings", diagnosis) from None

    async def resolve(self) -> list[tuple[int, Any]]:
        host, port = self.config.host, self.config.port
        started = time.perf_counter()
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                self.timeouts.connect,
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
        port, timeout = self.config.port, self.timeouts.connect
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

    # -- TLS from the first byte, and the greeting -------------------------------------------

    async def open(self, sock: socket.socket) -> None:
        """Hand the connected socket to aiosmtplib: TLS handshake when implicit, greeting."""
        config = self.config
        is_implicit = config.tls is TlsPolicy.IMPLICIT
        try:
            self.client = SMTP(
                hostname=config.host,  # for SNI and the certificate's name; the socket is ours
                sock=sock,
                use_tls=is_implicit,
                start_tls=False,  # STARTTLS is a step of its own, see starttls()
                tls_context=self.tls_context,
                timeout=self.timeouts.connect,
                local_hostname=config.helo_name or None,
            )
        except ValueError as error:
            sock.close()
            raise self.fail("greeting", advice.diagnose_helo_name(problem=str(error))) from None
        started = time.perf_counter()
        try:
            greeting = await self.client.connect()
        except SMTPConnectError as error:
            raise await self._open_failed(error, started) from None
        except SMTPResponseException as error:
            # A first line that is no SMTP reply (an SSH or database banner): aiosmtplib
            # raises it unwrapped when handed our socket.
            raise self.fail("greeting", self.refused("GREETING", error), started=started) from None
        if is_implicit:
            # One call did the handshake and read the greeting: the time goes to the handshake.
            self._tls_established("tls", started)
        self.add(
            "greeting",
            StepStatus.OK,
            reply_text(*greeting),
            started=None if is_implicit else started,
        )

    async def _open_failed(self, error: SMTPConnectError, started: float | None) -> _Stop:
        config, cause = self.config, error.__cause__
        is_implicit = config.tls is TlsPolicy.IMPLICIT
        is_timeout = isinstance(error, SMTPConnectTimeoutError)
        greeting_timed_out = is_timeout and isinstance(cause, SMTPReadTimeoutError)
        if is_implicit and (greeting_timed_out or isinstance(error, SMTPConnectResponseError)):
            # The handshake worked: the client was waiting for, or got, the greeting.
            self.add("tls", StepStatus.OK, "TLS handshake completed.", started=started)
            started = None
        if isinstance(error, SMTPConnectResponseError):
            return self.fail("greeting", self.refused("GREETING", error), started=started)
        if greeting_timed_out or (is_timeout and not is_implicit):
            speaks_tls = not is_implicit and await probe_implicit_tls(
                host=config.host, port=config.port, timeout=self._probe_timeout
            )
            diagnosis = advice.diagnose_greeting_timeout(
                port=config.port, timeout=self.timeouts.connect, speaks_implicit_tls=speaks_tls
            )
            return self.fail("greeting", diagnosis, started=started)
        if is_timeout:
            diagnosis = advice.diagnose_tls_timeout(port=config.port, timeout=self.timeouts.connect)
            return self.fail("tls", diagnosis, started=started)
        if isinstance(cause, ssl.SSLError):
            return await self._tls_failed("tls", cause, started)
        during_tls = is_implicit and not isinstance(cause, SMTPServerDisconnected)
        return self.fail(
            "tls" if during_tls else "greeting",
            advice.diagnose_disconnected(
                phase="the TLS handshake" if during_tls else "the greeting"
            ),
            started=started,
            details=[str(cause or error)],
        )

    @property
    def _probe_timeout(self) -> float:
        return min(self.timeouts.connect, _PROBE_TIMEOUT)

    async def _tls_failed(self, key: str, error: ssl.SSLError, started: float | None) -> _Stop:
        config = self.config
        details = [str(error)]
        if isinstance(error, ssl.SSLCertVerificationError):
            shown = await fetch_certificate_unverified(
                host=config.host,
                port=config.port,
                is_implicit=config.tls is TlsPolicy.IMPLICIT,
                timeout=self._probe_timeout,
                helo_name=config.helo_name,
            )
            if shown:
                details += ["The server shows this certificate:", *shown.describe()]
            diagnosis = advice.diagnose_certificate(
                host=config.host, error=error, certificate=shown
            )
        elif advice.is_plain_text_tls_error(error):
            greeting = await probe_plain_greeting(
                host=config.host, port=config.port, timeout=self._probe_timeout
            )
            diagnosis = advice.diagnose_tls_on_plain_port(port=config.port, plain_greeting=greeting)
        else:
            diagnosis = advice.diagnose_tls_failure(port=config.port, error=error)
        return self.fail(key, diagnosis, started=started, details=details)

    def _tls_established(self, key: str, started: float | None) -> None:
        assert self.client is not None
        info = tls_session_info(self.client.get_transport_info("ssl_object"))
        self.add(
            key,
            StepStatus.OK,
            f"Encrypted with {info.protocol} ({info.cipher}).",
            details=[f"Protocol: {info.protocol}", f"Cipher: {info.cipher}"],
            started=started,
        )
        self._certificate_step(info)

    def _certificate_step(self, info: TlsSessionInfo) -> None:
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
            expiring = advice.diagnose_certificate_expiring(days_left=days_left)
            self.add("certificate", StepStatus.WARN, summary, diagnosis=expiring, details=details)
        else:
            self.add("certificate", StepStatus.OK, summary, details=details)

    # -- EHLO and STARTTLS -------------------------------------------------------------------

    async def ehlo(self, key: str = "ehlo") -> None:
        assert self.client is not None
        client, timeout = self.client, self.timeouts.command
        started = time.perf_counter()
        try:
            response = await client.ehlo(timeout=timeout)
        except SMTPHeloError as error:
            # RFC 5321 §4.1.1.1: a server that does not know EHLO answers with an error; HELO
            # still works then, without any extension.
            try:
                await client.helo(timeout=timeout)
            except (SMTPException, OSError):
                raise self.fail(key, self.refused("EHLO", error), started=started) from None
            no_esmtp = advice.diagnose_no_esmtp(code=error.code, message=error.message)
            self.add(key, StepStatus.WARN, diagnosis=no_esmtp, started=started)
            return
        except (SMTPException, OSError) as error:
            raise self.lost(key, error, phase="EHLO", started=started) from None
        summary, details = self._capabilities(response)
        self.add(key, StepStatus.OK, summary, details=details, started=started)

    def _capabilities(self, response: SMTPResponse) -> tuple[str, list[str]]:
        assert self.client is not None
        extensions = self.client.esmtp_extensions
        words = response.message.split()
        server_name = server_text_excerpt(words[0]) if words else "The server"
        size = extensions.get("size", "")
        offered = []
        if "size" in extensions:
            limit = int(size) if size.isdigit() else 0
            offered.append(f"SIZE {limit / 1_048_576:.0f} MB" if limit else "SIZE (no limit given)")
        offered += [
            k.upper() for k in ("pipelining", "starttls", "smtputf8", "8bitmime") if k in extensions
        ]
        auth = [method.upper() for method in self.client.server_auth_methods]
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

    async def starttls(self) -> None:
        assert self.client is not None
        client, config = self.client, self.config
        self.offered_starttls = client.supports_extension("starttls")
        if config.tls is TlsPolicy.IMPLICIT:
            return
        if config.tls is TlsPolicy.NONE:
            if config.has_auth or self.offered_starttls:
                tls_off = advice.diagnose_tls_off(
                    has_login=self.sends_password_in_clear, offers_starttls=self.offered_starttls
                )
                self.add("starttls", StepStatus.WARN, diagnosis=tls_off)
            else:
                self.add("starttls", StepStatus.SKIP, "TLS is turned off (Advanced → TLS mode).")
            return
        is_required = config.tls is TlsPolicy.STARTTLS_REQUIRED
        if not self.offered_starttls:
            missing = advice.diagnose_starttls_not_offered(
                port=config.port, is_required=is_required, has_login=self.sends_password_in_clear
            )
            if is_required:
                raise self.fail("starttls", missing)
            self.add("starttls", StepStatus.WARN, diagnosis=missing)
            return
        started = time.perf_counter()
        try:
            await client.starttls(
                server_hostname=config.host,
                tls_context=self.tls_context,
                timeout=self.timeouts.command,
            )
        except SMTPResponseException as error:
            refusal = advice.diagnose_starttls_refused(code=error.code, message=error.message)
            raise self.fail("starttls", refusal, started=started) from None
        except ssl.SSLError as error:
            raise await self._tls_failed("starttls", error, started) from None
        except (SMTPException, OSError) as error:
            raise self.lost("starttls", error, phase="STARTTLS", started=started) from None
        self._tls_established("starttls", started)
        # RFC 3207 §4.2: forget what the server said before TLS and ask again.
        await self.ehlo("ehlo_tls")

    # -- AUTH --------------------------------------------------------------------------------

    async def authenticate(self) -> None:
        assert self.client is not None
        client, config = self.client, self.config
        if not config.has_auth:
            no_login = "No login set: the server must accept mail from this machine without one."
            self.add("auth", StepStatus.SKIP, no_login)
            return
        if not client.supports_extension("auth"):
            raise self.fail(
                "auth",
                advice.diagnose_auth_not_offered(
                    is_encrypted=self.is_encrypted,
                    offers_starttls=self.offered_starttls,
                    port=config.port,
                ),
            )
        offered = [method.upper() for method in client.server_auth_methods]
        wanted = "auto" if config.auth_method == "auto" else config.auth_method.upper()
        choices = _AUTH_PREFERENCE if wanted == "auto" else (wanted,)
        mechanism = next((m for m in choices if m in offered), None)
        if mechanism is None:
            raise self.fail("auth", advice.diagnose_auth_mechanism(wanted=wanted, offered=offered))
        if not config.may_send_password(is_encrypted=self.is_encrypted):
            in_clear = advice.diagnose_password_in_clear(
                port=config.port,
                is_tls_off=config.tls is TlsPolicy.NONE,
                offers_starttls=self.offered_starttls,
            )
            raise self.fail("auth", in_clear)
        log_in = {
            "PLAIN": client.auth_plain,
            "LOGIN": client.auth_login,
            "CRAM-MD5": client.auth_crammd5,
        }[mechanism]
        started = time.perf_counter()
        try:
            response = await log_in(config.login, config.password, timeout=self.timeouts.command)
        except SMTPResponseException as error:
            raise self.fail(
                "auth",
                self.refused("AUTH", error),
                started=started,
                details=[f"Method: {mechanism}"],
            ) from None
        except (SMTPException, OSError) as error:
            raise self.lost("auth", error, phase="AUTH", started=started) from None
        how = "encrypted" if self.is_encrypted else "unencrypted"
        summary = f"Logged in as {config.login} with {mechanism} ({how})."
        self.add("auth", StepStatus.OK, summary, details=[reply_text(*response)], started=started)

    # -- MAIL FROM and the test email --------------------------------------------------------

    def _envelope(self, *addresses: str) -> tuple[list[str], str] | Diagnosis:
        """MAIL/RCPT options and encoding: RFC 6531 SMTPUTF8 for non-ASCII addresses."""
        assert self.client is not None
        if all(address.isascii() for address in addresses):
            return [], "ascii"
        if self.client.supports_extension("smtputf8"):
            return ["SMTPUTF8"], "utf-8"
        odd = next(address for address in addresses if not address.isascii())
        return advice.diagnose_smtputf8_missing(address=odd)

    async def check_senders(self, senders: list[str]) -> None:
        assert self.client is not None
        client, timeout = self.client, self.timeouts.command
        if not senders:
            self.add("mail_from", StepStatus.WARN, diagnosis=advice.diagnose_no_senders())
            return
        for sender in senders:
            name = f"MAIL FROM {sender}"
            started = time.perf_counter()
            envelope = self._envelope(sender)
            if isinstance(envelope, Diagnosis):
                self.add("mail_from", StepStatus.FAIL, diagnosis=envelope, name=name)
                continue
            options, encoding = envelope
            try:
                response = await client.mail(
                    sender, options=options, encoding=encoding, timeout=timeout
                )
            except SMTPSenderRefused as error:
                refusal = self.refused("MAIL", error, address=sender)
                self.add(
                    "mail_from", StepStatus.FAIL, diagnosis=refusal, started=started, name=name
                )
            except (SMTPException, OSError) as error:
                raise self.lost(
                    "mail_from", error, phase="MAIL FROM", started=started, name=name
                ) from None
            else:
                summary = f"Accepted: {reply_text(*response)}"
                self.add("mail_from", StepStatus.OK, summary, started=started, name=name)
            if not client.is_connected:  # aiosmtplib hangs up after a 421 reply
                raise _Stop("disconnected")
            try:
                await client.rset(timeout=timeout)
            except (SMTPException, OSError) as error:
                raise self.lost("mail_from", error, phase="RSET", name="RSET") from None

    async def send_test(
        self, *, sender: str | None, recipient: str, message: bytes | EmailMessage | None
    ) -> None:
        assert self.client is not None
        client, config, name = self.client, self.config, f"Test email to {recipient}"
        if not sender:
            raise self.fail("test_email", advice.diagnose_no_test_sender(), name=name)
        envelope = self._envelope(sender, recipient)
        if isinstance(envelope, Diagnosis):
            raise self.fail("test_email", envelope, name=name)
        options, encoding = envelope
        if message is None:
            message = build_test_message(
                sender=sender, recipient=recipient, server=f"{config.host}:{config.port}"
            )
        details = (
            [f"Message-ID: {message['Message-ID']}"] if isinstance(message, EmailMessage) else []
        )
        started = time.perf_counter()
        phase, address = "MAIL", sender
        try:
            response = await client.mail(
                sender, options=options, encoding=encoding, timeout=self.timeouts.command
            )
            details.append(f"MAIL FROM:<{sender}> → {reply_text(*response)}")
            phase, address = "RCPT", recipient
            response = await client.rcpt(
                recipient, encoding=encoding, timeout=self.timeouts.command
            )
            details.append(f"RCPT TO:<{recipient}> → {reply_text(*response)}")
            phase = "DATA"
            response = await client.data(message_bytes(message), timeout=self.timeouts.data)
        except SMTPResponseException as error:
            details.append(f"{phase} → {reply_text(error.code, error.message)}")
            refusal = self.refused(phase, error, address=address)
            raise self.fail(
                "test_email", refusal, started=started, details=details, name=name
            ) from None
        except (SMTPException, OSError) as error:
            raise self.lost(
                "test_email", error, phase=phase, started=started, details=details, name=name
            ) from None
        said = reply_text(*response)
        details.append(f"DATA → {said}")
        queue_id = queue_id_from_reply(response.message)
        if queue_id:
            details.append(f"Queue id: {queue_id}")
        summary = f"The server accepted the test email for {recipient}: {said}"
        self.add("test_email", StepStatus.OK, summary, details=details, started=started, name=name)

    async def close(self) -> None:
        if self.client is None:
            if self.sock is not None:
                self.sock.close()
            return
        if self.client.is_connected:
            # The check is over; a server that hangs up rudely changes nothing.
            with contextlib.suppress(SMTPException, OSError):
                await self.client.quit(timeout=min(self.timeouts.command, _QUIT_TIMEOUT))
        self.client.close()


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
        await check.ehlo()
        await check.starttls()
        await check.authenticate()
        await check.check_senders(senders)
        if test_recipient:
            sender = senders[0] if senders else None
            await check.send_test(sender=sender, recipient=test_recipient, message=test_message)
    except _Stop:
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
