"""Check connection and delivery agree on a server that offers only CRAM-MD5 (issue 9).

They used to be two clients: the check logged in with aiosmtplib's CRAM-MD5 and passed, while
delivery knew only PLAIN and LOGIN and paused the server for every message. Against a real
aiosmtpd on 127.0.0.1 that offers CRAM-MD5 and nothing else, both must now log in the same way
(and refuse a wrong password the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest

from postroom.mail.check_report import CheckReport, StepStatus
from postroom.mail.classify import Classification, PauseScope, explain_failure
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope, SmtpConnection
from postroom.mail.diagnostics import check_connection
from postroom.mail.replies import Stage
from tests.support.certs import CertAuthority, IssuedCert
from tests.support.smtpd import ScriptedSmtpServer

Start = Callable[..., ScriptedSmtpServer]

LOGIN = "mailer@example.com"
PASSWORD = "Cram-Md5-Secret-51c0"
SENDER = LOGIN
FAST = Timeouts(connect=2, command=5, data=5)


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="cram-md5")


def an_envelope() -> Envelope:
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = SENDER
    email["To"] = "bob@example.org"
    email["Subject"] = "Hello"
    email["Message-ID"] = "<cram-md5@postroom.test>"
    email.set_content("Hello.\n")
    return Envelope(SENDER, ["bob@example.org"], email.as_bytes())


def deliver(config: SmtpServerConfig) -> DeliveryOutcome:
    async def run() -> DeliveryOutcome:
        connection = SmtpConnection(config)
        try:
            return await connection.deliver(an_envelope())
        finally:
            await connection.close()

    return asyncio.run(run())


def check(config: SmtpServerConfig) -> CheckReport:
    report = asyncio.run(check_connection(config, senders=[SENDER]))
    assert PASSWORD not in report.transcript()
    return report


def config_for(server: ScriptedSmtpServer, test_ca: CertAuthority, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "tls": TlsPolicy.STARTTLS_REQUIRED,
        "login": LOGIN,
        "password": PASSWORD,
        "ca_pem": test_ca.pem,
        "timeouts": FAST,
        **changes,
    }
    return SmtpServerConfig(host="127.0.0.1", port=server.port, **values)


def cram_md5_only(scripted_smtpd: Start, tls: str, cert: IssuedCert, **changes: Any) -> Any:
    """A server offering AUTH CRAM-MD5 alone: after STARTTLS, or (allowed) in plain text."""
    if tls == "starttls":
        server = scripted_smtpd(
            cert=cert, users={LOGIN: PASSWORD}, auth_mechanisms=("CRAM-MD5",), **changes
        )
        policy, allow_plain = TlsPolicy.STARTTLS_REQUIRED, False
    else:
        server = scripted_smtpd(
            users={LOGIN: PASSWORD},
            auth_mechanisms=("CRAM-MD5",),
            auth_before_tls=True,
            **changes,
        )
        policy, allow_plain = TlsPolicy.STARTTLS_OPPORTUNISTIC, True
    return server, policy, allow_plain


# Before the two clients were one, this failed: the check passed AUTH with CRAM-MD5, and
# delivery paused the server ("the server offers AUTH CRAM-MD5, not PLAIN or LOGIN").
@pytest.mark.parametrize("tls", ["starttls", "plain-text-allowed"])
def test_check_and_delivery_both_log_in_with_cram_md5(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority, tls: str
) -> None:
    server, policy, allow_plain = cram_md5_only(scripted_smtpd, tls, cert)
    config = config_for(server, test_ca, tls=policy, allow_plaintext_auth=allow_plain)

    report = check(config)
    outcome = deliver(config)

    last_ehlo = report.steps_for("ehlo_tls" if tls == "starttls" else "ehlo")[-1]
    assert "AUTH: CRAM-MD5" in last_ehlo.details
    auth = report.step("auth")
    assert auth is not None and auth.status is StepStatus.OK, report.transcript()
    assert auth.summary.startswith(f"Logged in as {LOGIN} with CRAM-MD5")
    assert report.is_ok, report.transcript()
    assert [r.classification for r in outcome.recipients] == [Classification.SUCCESS], outcome
    assert not outcome.should_pause
    # The server saw the same login twice, CRAM-MD5 both times, and never the password.
    assert [(a.mechanism, a.login, a.is_success) for a in server.auth_attempts] == [
        ("CRAM-MD5", LOGIN, True),
        ("CRAM-MD5", LOGIN, True),
    ]
    [message] = server.wait_for_messages(1)
    assert message.login == LOGIN


def test_a_wrong_password_over_cram_md5_gets_the_same_diagnosis_from_both(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(
        cert=cert, users={LOGIN: "the-right-one"}, auth_mechanisms=("CRAM-MD5",)
    )
    config = config_for(server, test_ca)

    report = check(config)
    outcome = deliver(config)

    auth = report.step("auth")
    assert auth is not None and (auth.status, auth.code) == (StepStatus.FAIL, "wrong_password")
    assert "Method: CRAM-MD5" in auth.details
    [recipient] = outcome.recipients
    assert (recipient.classification, recipient.stage) == (Classification.CONFIG, Stage.AUTH)
    assert outcome.pause_scope is PauseScope.SERVER
    # What the Outbox will say of the paused message is what Check connection said.
    explained = explain_failure(
        stage=recipient.stage.value,
        classification=recipient.classification.value,
        code=recipient.code,
        enhanced=recipient.enhanced,
        text=recipient.text,
        host=config.host,
        login=config.login,
    )
    assert (explained.code, explained.summary, explained.advice) == (
        auth.code,
        auth.summary,
        auth.advice,
    )
    assert [(a.mechanism, a.is_success) for a in server.auth_attempts] == [
        ("CRAM-MD5", False),
        ("CRAM-MD5", False),
    ]
    assert not server.has_envelope


def test_forcing_a_method_the_server_lacks_stops_both_with_one_diagnosis(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD}, auth_mechanisms=("CRAM-MD5",))
    config = config_for(server, test_ca, auth_method="PLAIN")

    report = check(config)
    outcome = deliver(config)

    auth = report.step("auth")
    assert auth is not None and auth.code == "auth_method_not_offered"
    assert auth.summary == (
        "Authentication method PLAIN is chosen, but the server offers CRAM-MD5."
    )
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.pause_reason == f"{auth.summary} {auth.advice}"
    assert server.auth_attempts == []
