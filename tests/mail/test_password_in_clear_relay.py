"""The password over plain text, end to end against the real Postfix relay's `plain_port`: no
TLS offered, AUTH accepted in clear, as a careless relay runs (issue 7, finding 6).

Delivery, Check connection and `postroom doctor` keep the password back unless the company
ticked "Allow my password over an unencrypted connection"; with it ticked, mail arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt
from postroom.mail.advice import ALLOW_PLAINTEXT_AUTH
from postroom.mail.classify import Classification, PauseScope
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope
from postroom.mail.diagnostics import StepStatus, check_connection
from postroom.mail.pool import ConnectionPool
from postroom.mail.replies import Stage
from tests.support.relay import PostfixRelay

pytestmark = pytest.mark.relay

TIMEOUTS = Timeouts(connect=10, command=20, data=20)  # bounds a broken fixture only
RECIPIENT = "someone@example.net"


def plain_config(relay: PostfixRelay, **changes: Any) -> SmtpServerConfig:
    """Secure Connection Required = N on the relay's port without TLS, with the login."""
    config = SmtpServerConfig(
        host=relay.host,
        port=relay.plain_port,
        tls=TlsPolicy.STARTTLS_OPPORTUNISTIC,
        login=relay.user,
        password=relay.password,
        timeouts=TIMEOUTS,
    )
    return dataclasses.replace(config, **changes)


def an_envelope(relay: PostfixRelay) -> Envelope:
    data = (
        f"From: {relay.allowed_senders[0]}\r\nTo: {RECIPIENT}\r\nSubject: In clear?\r\n"
        "Message-ID: <in-clear-relay@postroom.test>\r\n\r\nHello.\r\n"
    ).encode()
    return Envelope(relay.allowed_senders[0], [RECIPIENT], data)


def deliver(config: SmtpServerConfig, envelope: Envelope) -> DeliveryOutcome:
    async def run() -> DeliveryOutcome:
        pool = ConnectionPool(config, size=1)
        try:
            return await pool.deliver(envelope)
        finally:
            await pool.close()

    return asyncio.run(run())


def test_delivery_keeps_the_password_back_and_nothing_arrives(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox

    outcome = deliver(plain_config(relay), an_envelope(relay))

    assert [r.classification for r in outcome.recipients] == [Classification.CONFIG]
    assert (outcome.pause_scope, outcome.stage) == (PauseScope.SERVER, Stage.AUTH)
    assert f"The server offers no encryption on port {relay.plain_port}" in outcome.pause_reason
    assert relay.messages() == []


def test_delivery_over_plain_text_arrives_when_the_administrator_allowed_it(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox

    outcome = deliver(plain_config(relay, allow_plaintext_auth=True), an_envelope(relay))

    assert outcome.is_success, outcome
    [message] = relay.wait_for(1)
    assert message["Subject"] == "In clear?"


def test_check_connection_fails_at_auth_with_what_to_change(relay: PostfixRelay) -> None:
    report = asyncio.run(
        check_connection(
            plain_config(relay), senders=[relay.allowed_senders[0]], test_recipient=RECIPIENT
        )
    )

    auth = report.step("auth")
    assert (auth.status, auth.code) == (StepStatus.FAIL, "password_in_clear")
    assert "your password would travel in clear" in auth.summary
    assert ALLOW_PLAINTEXT_AUTH in auth.advice
    assert report.step("test_email").status is StepStatus.SKIP
    assert relay.password not in report.transcript()


@pytest.mark.django_db
def test_postroom_doctor_says_the_password_would_travel_in_clear(relay: PostfixRelay) -> None:
    company = company_get()
    company.sender_email = relay.allowed_senders[0]
    company.smtp_host, company.smtp_port = relay.host, relay.plain_port
    company.smtp_secure_required = False
    company.smtp_login = relay.user
    company.smtp_password_encrypted = secret_encrypt(relay.password)
    company.save()
    out = StringIO()

    with pytest.raises(CommandError, match="1 step"):
        call_command("doctor", stdout=out, stderr=StringIO())

    printed = out.getvalue()
    assert "[FAIL] AUTH: The server offers no encryption on port" in printed
    assert f"tick “{ALLOW_PLAINTEXT_AUTH}”" in printed
    assert relay.password not in printed

    company.smtp_allow_plaintext_auth = True
    company.save()
    out = StringIO()
    call_command("doctor", stdout=out, stderr=StringIO())
    assert f"[ OK ] AUTH: Logged in as {relay.user} with PLAIN (unencrypted)." in out.getvalue()
