"""Why a step of the connection check failed, in plain words: from what the session raised.

The session (postroom.mail.session) says at which stage it stopped, and with what: a reply
(the reply table explains it), a decision of its own (it carries its `Diagnosis`), or no reply
at all (an exception). For the last, a little more is found out here before explaining: the
certificate a server shows when it failed verification, and whether a silent or garbled port
speaks the other kind of TLS. These probes send no AUTH and no envelope.
"""

from __future__ import annotations

import dataclasses
import ssl

from aiosmtplib.errors import SMTPResponseException

from postroom.mail import advice, tls_advice
from postroom.mail.advice import Diagnosis
from postroom.mail.check_report import reply_text, server_text_excerpt
from postroom.mail.classify import Failure, diagnose_reply
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.replies import Reply, Stage
from postroom.mail.session import SmtpSession, SmtpSessionError
from postroom.mail.tls import (
    CertificateInfo,
    client_tls_context,
    probe_implicit_tls,
    probe_plain_greeting,
)

# A probe only tells which protocol a port speaks: a TLS handshake or a greeting line arrives
# within milliseconds from any reachable server, so it need not wait the full connect timeout.
PROBE_TIMEOUT = 10.0


def reply_excerpt(reply: Reply) -> str:
    """A reply as a step shows it: "250 2.1.0 Ok", one line, an excerpt."""
    return reply_text(reply.code, f"{reply.enhanced} {reply.text}".strip())


def refusal_diagnosis(
    config: SmtpServerConfig, stage: Stage, reply: Reply, *, address: str = ""
) -> Diagnosis:
    """What a refusal means: the reply table's advice, naming this server and login."""
    return diagnose_reply(
        stage,
        reply,
        host=config.host,
        login=config.login,
        address=address,
        is_oauth=config.is_oauth,
    )


def no_reply_diagnosis(stage: Stage, failure: Failure | None, *, timeout: float) -> Diagnosis:
    """The connection dropped, or the reply did not come in time."""
    if failure is Failure.TIMEOUT:
        return advice.diagnose_command_timeout(phase=stage.command, timeout=timeout)
    return advice.diagnose_disconnected(phase=stage.command)


async def session_failure(
    config: SmtpServerConfig, error: SmtpSessionError
) -> tuple[Diagnosis, list[str]]:
    """Explain why opening the session failed, with the details a step shows."""
    if error.diagnosis is not None:
        return error.diagnosis, []
    if error.reply.code is not None:
        return refusal_diagnosis(config, error.stage, error.reply), []
    cause, stage = error.cause, error.stage
    is_implicit = config.tls is TlsPolicy.IMPLICIT
    probe = min(config.timeouts.connect, PROBE_TIMEOUT)
    if isinstance(cause, ssl.SSLError):
        return await _tls_failure(config, cause, probe_timeout=probe)
    if error.failure is Failure.TIMEOUT and stage is Stage.GREETING:
        speaks_tls = not is_implicit and await probe_implicit_tls(
            host=config.host, port=config.port, timeout=probe
        )
        timeout = config.timeouts.connect
        return tls_advice.diagnose_greeting_timeout(
            port=config.port, timeout=timeout, speaks_implicit_tls=speaks_tls
        ), []
    if error.failure is Failure.TIMEOUT and stage is Stage.CONNECT:
        return tls_advice.diagnose_tls_timeout(
            port=config.port, timeout=config.timeouts.connect
        ), []
    if error.failure is Failure.GARBAGE:
        # Another service answers there: show the start of what it said, never all of it.
        said = cause.message if isinstance(cause, SMTPResponseException) else str(cause)
        return advice.diagnose_not_smtp(
            phase=stage.command, port=config.port, said=server_text_excerpt(said)
        ), []
    if stage is Stage.CONNECT and is_implicit:
        return advice.diagnose_disconnected(phase="the TLS handshake"), [str(cause)]
    timeout = error.timeout if error.timeout is not None else config.timeouts.command
    details = [str(cause)] if cause is not None and error.failure is not Failure.TIMEOUT else []
    return no_reply_diagnosis(stage, error.failure, timeout=timeout), details


async def _tls_failure(
    config: SmtpServerConfig, error: ssl.SSLError, *, probe_timeout: float
) -> tuple[Diagnosis, list[str]]:
    details = [str(error)]
    if isinstance(error, ssl.SSLCertVerificationError):
        shown = await fetch_certificate_unverified(config, timeout=probe_timeout)
        if shown:
            details += ["The server shows this certificate:", *shown.describe()]
        diagnosis = tls_advice.diagnose_certificate(
            host=config.host, error=error, certificate=shown
        )
    elif tls_advice.is_plain_text_tls_error(error):
        greeting = await probe_plain_greeting(
            host=config.host, port=config.port, timeout=probe_timeout
        )
        diagnosis = tls_advice.diagnose_tls_on_plain_port(port=config.port, plain_greeting=greeting)
    else:
        diagnosis = tls_advice.diagnose_tls_failure(port=config.port, error=error)
    return diagnosis, details


async def fetch_certificate_unverified(
    config: SmtpServerConfig, *, timeout: float
) -> CertificateInfo | None:
    """Open the session again without verification, only to read the certificate shown.

    Used after verification failed, to explain why. The same session as always, with a
    non-verifying context and no login: it greets and upgrades, and sends no AUTH and no
    envelope. None when the server cannot be reached this way either.
    """
    looking = dataclasses.replace(
        config,
        login="",
        password="",
        timeouts=Timeouts(connect=timeout, command=timeout, data=timeout),
        # Encryption is what there is to look at: only a server without TLS lacks it.
        tls=TlsPolicy.IMPLICIT if config.tls is TlsPolicy.IMPLICIT else TlsPolicy.STARTTLS_REQUIRED,
    )
    session = SmtpSession(looking, tls_context=client_tls_context(verify=False))
    try:
        await session.open()
        info = session.tls_info()
    except SmtpSessionError:
        return None
    finally:
        await session.close()
    return info.certificate if info else None
