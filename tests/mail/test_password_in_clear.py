"""The SMTP password never crosses the network unencrypted unless an administrator allowed it
(issue 7, finding 6): delivery and Check connection, against aiosmtpd servers on 127.0.0.1
that offer AUTH over plain text and no STARTTLS, as a careless relay does.

Secure Connection Required = N keeps working for relays that need no login.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest

from postroom.mail import advice
from postroom.mail.classify import Classification, PauseScope
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope, SmtpConnection
from postroom.mail.diagnostics import CheckReport, StepStatus, check_connection
from postroom.mail.replies import Stage
from tests.support.certs import CertAuthority, IssuedCert
from tests.support.smtpd import ScriptedSmtpServer

Start = Callable[..., ScriptedSmtpServer]

LOGIN = "mailer@example.com"
PASSWORD = "Plain-Text-Secret-9f3a"
SENDER = "mailer@example.com"
FAST = Timeouts(connect=2, command=2, data=2)
IN_CLEAR = "your password would travel in clear"


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="in-clear")


def config_for(server: ScriptedSmtpServer, tls: TlsPolicy, **changes: Any) -> SmtpServerConfig:
    values: dict[str, Any] = {"login": LOGIN, "password": PASSWORD, "timeouts": FAST, **changes}
    return SmtpServerConfig(host="127.0.0.1", port=server.port, tls=tls, **values)


def plain_relay(scripted_smtpd: Start, **changes: Any) -> ScriptedSmtpServer:
    """No STARTTLS, AUTH offered and accepted over plain text."""
    return scripted_smtpd(users={LOGIN: PASSWORD}, auth_before_tls=True, **changes)


def an_envelope() -> Envelope:
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = SENDER
    email["To"] = "bob@example.org"
    email["Subject"] = "Hello"
    email["Message-ID"] = "<in-clear@postroom.test>"
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


# --- Delivery -------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [TlsPolicy.STARTTLS_OPPORTUNISTIC, TlsPolicy.NONE])
def test_delivery_keeps_the_password_back_and_pauses_the_server_saying_why(
    scripted_smtpd: Start, tls: TlsPolicy
) -> None:
    server = plain_relay(scripted_smtpd)

    outcome = deliver(config_for(server, tls))

    assert [r.classification for r in outcome.recipients] == [Classification.CONFIG]
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.stage is Stage.AUTH
    assert IN_CLEAR in outcome.pause_reason
    assert advice.ALLOW_PLAINTEXT_AUTH in outcome.pause_reason
    assert server.auth_attempts == []  # the server never saw the password
    assert "AUTH" not in server.verbs()
    assert not server.has_envelope


def test_delivery_logs_in_over_plain_text_when_the_administrator_allowed_it(
    scripted_smtpd: Start,
) -> None:
    server = plain_relay(scripted_smtpd)

    outcome = deliver(
        config_for(server, TlsPolicy.STARTTLS_OPPORTUNISTIC, allow_plaintext_auth=True)
    )

    assert outcome.is_success, outcome
    [message] = server.wait_for_messages(1)
    assert message.login == LOGIN and not message.is_tls


def test_secure_n_still_delivers_to_a_relay_without_login(scripted_smtpd: Start) -> None:
    server = scripted_smtpd()  # no STARTTLS, no login needed

    outcome = deliver(config_for(server, TlsPolicy.STARTTLS_OPPORTUNISTIC, login="", password=""))

    assert outcome.is_success, outcome
    assert len(server.wait_for_messages(1)) == 1


def test_secure_n_logs_in_after_starttls_without_being_allowed_plain_text(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})

    outcome = deliver(config_for(server, TlsPolicy.STARTTLS_OPPORTUNISTIC, ca_pem=test_ca.pem))

    assert outcome.is_success, outcome
    [message] = server.wait_for_messages(1)
    assert message.login == LOGIN and message.is_tls


# --- Check connection -----------------------------------------------------------------------


def test_the_check_refuses_to_log_in_over_plain_text_and_says_what_to_change(
    scripted_smtpd: Start,
) -> None:
    server = plain_relay(scripted_smtpd)

    report = check(config_for(server, TlsPolicy.STARTTLS_OPPORTUNISTIC))

    assert not report.is_ok
    starttls = report.step("starttls")
    assert (starttls.status, starttls.code) == (StepStatus.WARN, "starttls_not_offered_plaintext")
    assert "password" not in starttls.summary  # it is not sent, so it does not travel
    auth = report.step("auth")
    assert (auth.status, auth.code) == (StepStatus.FAIL, "password_in_clear")
    assert f"The server offers no encryption on port {server.port}" in auth.summary
    assert IN_CLEAR in auth.summary
    assert "SMTP Secure Connection Required (Y)" in auth.advice
    assert f"tick “{advice.ALLOW_PLAINTEXT_AUTH}”" in auth.advice
    assert "if the relay is on a trusted network" in auth.advice
    assert report.steps_for("mail_from")[0].status is StepStatus.SKIP
    assert server.auth_attempts == [] and "AUTH" not in server.verbs()


def test_the_check_with_tls_off_points_at_the_starttls_the_server_offers(
    scripted_smtpd: Start, cert: IssuedCert
) -> None:
    server = plain_relay(scripted_smtpd, cert=cert)

    report = check(config_for(server, TlsPolicy.NONE))

    auth = report.step("auth")
    assert (auth.status, auth.code) == (StepStatus.FAIL, "password_in_clear")
    assert auth.summary.startswith("TLS is turned off")
    assert "The server offers STARTTLS" in auth.advice
    assert report.step("starttls").summary == "TLS is turned off: mail travels unencrypted."
    assert server.auth_attempts == []


def test_the_check_logs_in_over_plain_text_when_allowed_and_warns(
    scripted_smtpd: Start,
) -> None:
    server = plain_relay(scripted_smtpd)

    report = check(config_for(server, TlsPolicy.STARTTLS_OPPORTUNISTIC, allow_plaintext_auth=True))

    assert report.is_ok, report.transcript()
    assert "mail and the password would travel unencrypted" in report.step("starttls").summary
    assert report.step("auth").summary == f"Logged in as {LOGIN} with PLAIN (unencrypted)."
    assert [attempt.login for attempt in server.auth_attempts] == [LOGIN]


def test_the_password_in_clear_advice_names_both_ways_out() -> None:
    diagnosis = advice.diagnose_password_in_clear(port=25, is_tls_off=False, offers_starttls=False)
    assert diagnosis.code == "password_in_clear"
    assert diagnosis.summary == (
        "The server offers no encryption on port 25: your password would travel in clear, "
        "readable by anyone on the network path, so Postroom did not send it."
    )
    assert "587 with STARTTLS or 465 with implicit TLS" in diagnosis.advice
    assert diagnosis.advice.endswith(
        f"Only if the relay is on a trusted network, tick “{advice.ALLOW_PLAINTEXT_AUTH}” instead."
    )
