"""The delivery transport against the real Postfix relay (STARTTLS, SMTPS, SASL, PIPELINING).

What the scripted servers prove one fault at a time, here against Postfix as it runs in
production: per-recipient replies in one pipelined transaction, many messages on one session,
and the settings problems that pause a server.
"""

from __future__ import annotations

import asyncio
import dataclasses
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest

from postroom.mail.classify import Classification, PauseScope
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope
from postroom.mail.pool import ConnectionPool
from postroom.mail.replies import Stage
from tests.support.relay import PostfixRelay

pytestmark = pytest.mark.relay

S, T, P, C = (
    Classification.SUCCESS,
    Classification.TEMPORARY,
    Classification.PERMANENT,
    Classification.CONFIG,
)
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


def message(relay: PostfixRelay, n: int = 0) -> bytes:
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = relay.allowed_senders[0]
    email["To"] = "someone@example.net"
    email["Subject"] = f"Relay test {n}"
    email["Date"] = "Fri, 27 Nov 2026 12:00:00 +0000"
    email["Message-ID"] = f"<relay-{n}@postroom.test>"
    email.set_content(f"Message {n}.\n.a line with a dot\n")
    return email.as_bytes()


def send(config: SmtpServerConfig, *envelopes: Envelope) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        pool = ConnectionPool(config, size=2)
        try:
            return list(await asyncio.gather(*(pool.deliver(e) for e in envelopes)))
        finally:
            await pool.close()

    return asyncio.run(run())


def fates(outcome: DeliveryOutcome) -> list[Classification]:
    return [recipient.classification for recipient in outcome.recipients]


@pytest.mark.parametrize("tls", [TlsPolicy.STARTTLS_REQUIRED, TlsPolicy.IMPLICIT])
def test_each_recipient_gets_its_own_fate(relay_mailbox: PostfixRelay, tls: TlsPolicy) -> None:
    relay = relay_mailbox
    port = relay.starttls_port if tls is TlsPolicy.STARTTLS_REQUIRED else relay.smtps_port
    data = message(relay)
    recipients = ("one@example.net", "tempfail@example.net", "reject@example.net", "two@x.org")
    [outcome] = send(
        config_for(relay, port, tls), Envelope(relay.allowed_senders[0], recipients, data)
    )
    assert fates(outcome) == [S, T, P, S]
    assert outcome.recipients[1].reply_text.startswith("451 4.7.1")
    assert outcome.recipients[2].reply_text.startswith("550 5.1.1")
    delivered = relay.wait_for(2)
    assert sorted(m["X-Original-To"] for m in delivered) == ["one@example.net", "two@x.org"]
    # The Maildir keeps LF line ends and Postfix prepends its trace headers; the rest is ours.
    expected = data.replace(b"\r\n", b"\n")
    assert all(raw.endswith(expected) for raw in relay.raw_messages())


def test_many_messages_go_through_few_sessions(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    config = config_for(relay, relay.starttls_port, TlsPolicy.STARTTLS_REQUIRED)
    envelopes = [
        Envelope(relay.allowed_senders[0], [f"r{n}@example.net"], message(relay, n))
        for n in range(30)
    ]
    outcomes = send(config, *envelopes)
    assert all(o.is_success for o in outcomes)
    assert len(relay.wait_for(30)) == 30


def test_a_wrong_password_pauses_the_server(relay: PostfixRelay) -> None:
    config = config_for(
        relay, relay.starttls_port, TlsPolicy.STARTTLS_REQUIRED, password="not-the-password"
    )
    [outcome] = send(config, Envelope(relay.allowed_senders[0], ["a@example.net"], b"x\r\n"))
    assert fates(outcome) == [C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.stage is Stage.AUTH
    assert outcome.recipients[0].code == 535


def test_a_sender_the_login_does_not_own_pauses_that_sender(relay: PostfixRelay) -> None:
    config = config_for(relay, relay.sender_check_port, TlsPolicy.STARTTLS_REQUIRED)
    envelope = Envelope("someone-else@example.com", ["a@example.net"], message(relay))
    [outcome] = send(config, envelope)
    assert fates(outcome) == [C]
    assert outcome.pause_scope is PauseScope.SENDER
    assert outcome.recipients[0].stage is Stage.MAIL


def test_relaying_without_a_login_pauses_the_server(relay: PostfixRelay) -> None:
    config = config_for(
        relay, relay.starttls_port, TlsPolicy.STARTTLS_REQUIRED, login="", password=""
    )
    [outcome] = send(config, Envelope(relay.allowed_senders[0], ["a@example.net"], b"x\r\n"))
    assert fates(outcome) == [C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.recipients[0].stage is Stage.RCPT


def test_no_starttls_when_required_sends_nothing(relay: PostfixRelay) -> None:
    config = config_for(relay, relay.plain_port, TlsPolicy.STARTTLS_REQUIRED)
    [outcome] = send(config, Envelope(relay.allowed_senders[0], ["a@example.net"], b"x\r\n"))
    assert fates(outcome) == [C]
    assert outcome.stage is Stage.STARTTLS
