"""The connection check and the test email against the real Postfix relay.

What the scripted servers prove one fault at a time, here against Postfix and Cyrus SASL as
they run in production: the test email arrives in the Maildir over STARTTLS + AUTH and over
implicit TLS, and a wrong password, a sender the login does not own, a missing STARTTLS and
an unauthenticated relay attempt each get their diagnosis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.diagnostics import CheckReport, StepStatus, check_connection
from tests.support.relay import PostfixRelay

pytestmark = pytest.mark.relay

RECIPIENT = "someone@example.net"
# Postfix answers on loopback in milliseconds; these only bound a broken fixture.
TIMEOUTS = Timeouts(connect=10, command=20, data=20)


def config_for(relay: PostfixRelay, port: int, tls: TlsPolicy, **changes: Any) -> SmtpServerConfig:
    config = SmtpServerConfig(
        host=relay.host,
        port=port,
        tls=tls,
        login=relay.user,
        password=relay.password,
        ca_pem=relay.ca_pem,
        timeouts=TIMEOUTS,
    )
    return dataclasses.replace(config, **changes)


def check(relay: PostfixRelay, config: SmtpServerConfig, **kwargs: Any) -> CheckReport:
    kwargs.setdefault("senders", [relay.allowed_senders[0]])
    report = asyncio.run(check_connection(config, **kwargs))
    text = report.transcript() + json.dumps(report.as_dict())
    assert relay.password not in text
    return report


def failed_step(report: CheckReport) -> Any:
    steps = [step for step in report.steps if step.status is StepStatus.FAIL]
    assert steps, report.transcript()
    return steps[0]


def test_a_test_email_arrives_over_starttls_and_auth(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    config = config_for(relay, relay.starttls_port, TlsPolicy.STARTTLS_REQUIRED)
    report = check(relay, config, test_recipient=RECIPIENT)

    assert report.is_ok, report.transcript()
    assert report.step("starttls").status is StepStatus.OK
    assert "AUTH: " in " ".join(report.step("ehlo_tls").details)
    assert report.step("auth").summary.startswith(f"Logged in as {relay.user} with PLAIN")
    [delivered] = relay.wait_for(1)
    assert delivered["Subject"] == "Postroom test email"
    assert delivered["X-Original-To"] == RECIPIENT
    assert delivered["Return-Path"] == f"<{relay.allowed_senders[0]}>"
    assert "using TLS" in delivered["Received"]
    test_email = report.step("test_email")
    queue_line = next(line for line in test_email.details if line.startswith("Queue id: "))
    assert queue_line.removeprefix("Queue id: ") in test_email.summary


def test_a_test_email_arrives_over_implicit_tls(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    config = config_for(relay, relay.smtps_port, TlsPolicy.IMPLICIT, host=relay.hostname)
    report = check(relay, config, test_recipient=RECIPIENT)

    assert report.is_ok, report.transcript()
    assert report.step("tls").summary.startswith("Encrypted with TLSv1.")
    assert "issued for localhost" in report.step("certificate").summary
    [delivered] = relay.wait_for(1)
    assert delivered["Subject"] == "Postroom test email"
    assert delivered["X-Original-To"] == RECIPIENT


def test_a_wrong_password_gets_the_535_diagnosis(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    config = config_for(
        relay, relay.starttls_port, TlsPolicy.STARTTLS_REQUIRED, password="not-the-relay-password"
    )
    report = check(relay, config, test_recipient=RECIPIENT)
    step = failed_step(report)
    assert (step.key, step.code) == ("auth", "wrong_password")
    assert "535 5.7.8" in step.summary
    assert "not-the-relay-password" not in report.transcript()
    assert report.step("test_email").status is StepStatus.SKIP
    assert relay.messages() == []


def test_a_sender_the_login_does_not_own_is_not_allowed(relay: PostfixRelay) -> None:
    config = config_for(relay, relay.sender_check_port, TlsPolicy.STARTTLS_REQUIRED)
    report = check(relay, config, senders=[relay.allowed_senders[0], "intruder@example.com"])
    owned, foreign = report.steps_for("mail_from")
    assert owned.status is StepStatus.OK
    assert (foreign.status, foreign.code) == (StepStatus.FAIL, "sender_not_allowed")
    assert "553 5.7.1" in foreign.summary and "not owned by user" in foreign.summary
    assert f"the login '{relay.user}' send as intruder@example.com" in foreign.summary


def test_required_tls_never_continues_on_a_port_without_starttls(relay: PostfixRelay) -> None:
    config = config_for(relay, relay.plain_port, TlsPolicy.STARTTLS_REQUIRED)
    report = check(relay, config, test_recipient=RECIPIENT)
    step = failed_step(report)
    assert (step.key, step.code) == ("starttls", "starttls_not_offered")
    assert [s.status for s in report.steps if s.key in ("auth", "mail_from", "test_email")] == [
        StepStatus.SKIP,
        StepStatus.SKIP,
    ]
    assert report.step("auth") is None  # never attempted


def test_mail_before_starttls_gets_the_530_diagnosis(relay: PostfixRelay) -> None:
    config = config_for(relay, relay.starttls_port, TlsPolicy.NONE, login="", password="")
    report = check(relay, config)
    step = failed_step(report)
    assert (step.key, step.code) == ("mail_from", "encryption_required")
    assert "530 5.7.0 Must issue a STARTTLS command first" in step.summary


def test_sending_without_login_is_relay_denied(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    config = config_for(
        relay, relay.plain_port, TlsPolicy.STARTTLS_OPPORTUNISTIC, login="", password=""
    )
    report = check(relay, config, test_recipient=RECIPIENT)
    assert report.step("starttls").code == "starttls_not_offered_plaintext"
    step = failed_step(report)
    assert (step.key, step.code) == ("test_email", "relay_denied")
    assert "554 5.7.1" in step.summary and "Relay access denied" in step.summary
    assert relay.messages() == []
