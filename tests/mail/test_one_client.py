"""Check connection and delivery decide alike, because they are one client (issue 9).

Each test puts the same server before both and asserts they agree, on the cases where the two
clients used to disagree: a STARTTLS refused while encryption is optional, a server that never
greets, an EHLO whose first line is very long. (CRAM-MD5: tests/mail/test_cram_md5.py.)
Real servers on 127.0.0.1: scripted aiosmtpd, and the fault server for what aiosmtpd cannot do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

from postroom.mail.check_report import CheckReport, StepStatus
from postroom.mail.classify import Classification
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope, SmtpConnection
from postroom.mail.diagnostics import check_connection
from postroom.mail.replies import Stage
from tests.support.certs import CertAuthority
from tests.support.faultsmtp import HANG, FaultScript, fault_smtp
from tests.support.smtpd import ScriptedSmtpServer

Start = Callable[..., ScriptedSmtpServer]

SENDER = "info@example.com"


def an_envelope() -> Envelope:
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = SENDER
    email["To"] = "bob@example.org"
    email["Subject"] = "Hello"
    email["Message-ID"] = "<one-client@postroom.test>"
    email.set_content("Hello.\n")
    return Envelope(SENDER, ["bob@example.org"], email.as_bytes())


def both(config: SmtpServerConfig) -> tuple[CheckReport, DeliveryOutcome]:
    async def run() -> tuple[CheckReport, DeliveryOutcome]:
        report = await check_connection(config, senders=[SENDER])
        connection = SmtpConnection(config)
        try:
            return report, await connection.deliver(an_envelope())
        finally:
            await connection.close()

    return asyncio.run(run())


def config_for(server: Any, **changes: Any) -> SmtpServerConfig:
    values: dict[str, Any] = {"timeouts": Timeouts(connect=1, command=5, data=5), **changes}
    return SmtpServerConfig(host="127.0.0.1", port=server.port, **values)


def test_a_refused_starttls_with_encryption_optional_goes_on_in_plain_text_in_both(
    scripted_smtpd: Start, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(
        cert=test_ca.issue(stem="starttls-454"),
        starttls_reply="454 4.7.0 TLS not available due to local problem",
    )
    config = config_for(server, tls=TlsPolicy.STARTTLS_OPPORTUNISTIC, ca_pem=test_ca.pem)

    report, outcome = both(config)

    starttls = report.step("starttls")
    assert starttls is not None
    assert (starttls.status, starttls.code) == (StepStatus.WARN, "starttls_refused_plaintext")
    assert "454 4.7.0 TLS not available" in starttls.summary
    assert report.is_ok, report.transcript()
    assert [r.classification for r in outcome.recipients] == [Classification.SUCCESS]
    [message] = server.wait_for_messages(1)
    assert not message.is_tls  # what the warning said: mail travels unencrypted
    assert server.verbs().count("STARTTLS") == 2  # each tried it once


def test_a_server_that_never_greets_is_given_up_on_after_the_connect_timeout_by_both() -> None:
    with fault_smtp(FaultScript(greeting=HANG)) as server:
        report, outcome = both(config_for(server, tls=TlsPolicy.NONE))

    greeting = report.step("greeting")
    assert greeting is not None and greeting.status is StepStatus.FAIL
    assert "within 1 s" in greeting.summary  # the connect timeout, not the 5 s command one
    [recipient] = outcome.recipients
    assert (recipient.classification, recipient.stage) == (Classification.TEMPORARY, Stage.GREETING)
    assert recipient.text == "no reply to the greeting within 1 s"


def test_a_long_first_ehlo_line_hides_no_extension_from_either() -> None:
    long_name = "mx." + "very-long-label." * 60 + "example"  # far over 512 characters
    script = FaultScript(ehlo=[f"250-{long_name}", "250-PIPELINING", "250 SIZE 1000000"])
    with fault_smtp(script) as server:
        report, outcome = both(config_for(server, tls=TlsPolicy.NONE))

    ehlo = report.step("ehlo")
    assert ehlo is not None and "PIPELINING: yes" in ehlo.details
    assert "SIZE: 1000000 bytes" in ehlo.details
    assert outcome.is_success
    delivery = [c for c in server.commands if c.session == server.sessions]
    [mail] = [c for c in delivery if c.verb == "MAIL"]
    assert mail.line.endswith(f"SIZE={len(an_envelope().data)}")
    # Pipelined: MAIL, RCPT and DATA arrived in one read.
    assert len({c.read for c in delivery if c.verb in ("MAIL", "RCPT", "DATA")}) == 1
